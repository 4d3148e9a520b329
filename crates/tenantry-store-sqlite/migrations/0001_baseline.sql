-- tenantry embedded schema (SQLite), baseline: tier catalog, tenants, flag values and definitions,
-- users, memberships and API keys, the audit hash chain, and the data plane.
-- CHECK constraints mirror the domain rules so that no writer can store what the core would refuse.
-- Migrations are history: this file, once released, is never edited; a change is a new file (the
-- runner refuses a database whose applied migrations do not match these files' checksums).

create table tiers (
    name                  text primary key
                          check (length(name) between 1 and 32 and name not glob '*[^a-z0-9_-]*'
                                 and substr(name, 1, 1) glob '[a-z0-9]'),
    rank                  integer not null,
    description           text not null default '',
    max_users             integer not null check (max_users between 1 and 1000000000000),
    max_documents         integer not null check (max_documents between 1 and 1000000000000),
    max_queries_per_day   integer not null check (max_queries_per_day between 1 and 1000000000000),
    max_storage_gb        integer not null check (max_storage_gb between 1 and 1000000000000),
    rate_limit_per_minute integer not null check (rate_limit_per_minute between 1 and 1000000000000),
    sla_target            real not null check (sla_target > 0 and sla_target <= 1),
    support_level         text not null check (length(support_level) between 1 and 64),
    isolation             text not null check (isolation in ('shared_namespace', 'dedicated_index')),
    retention_days        integer not null check (retention_days between 0 and 36500)
) strict;

create table tenants (
    tenant_id             text primary key
                          check (length(tenant_id) between 2 and 63 and tenant_id not glob '*[^a-z0-9_-]*'
                                 and substr(tenant_id, 1, 1) glob '[a-z0-9]'),
    name                  text not null check (length(trim(name)) between 1 and 200),
    billing_email         text check (billing_email is null or billing_email like '%_@_%._%'),
    owner                 text,
    tier                  text not null references tiers(name),
    max_users             integer not null check (max_users between 1 and 1000000000000),
    max_documents         integer not null check (max_documents between 1 and 1000000000000),
    max_queries_per_day   integer not null check (max_queries_per_day between 1 and 1000000000000),
    max_storage_gb        integer not null check (max_storage_gb between 1 and 1000000000000),
    rate_limit_per_minute integer not null check (rate_limit_per_minute between 1 and 1000000000000),
    sla_target            real not null check (sla_target > 0 and sla_target <= 1),
    support_level         text not null check (length(support_level) between 1 and 64),
    explicit_limits       text not null default '[]' check (json_valid(explicit_limits) and json_type(explicit_limits) = 'array'),
    cost_center           text check (cost_center is null or length(cost_center) between 1 and 64),
    monthly_budget_minor  integer check (monthly_budget_minor is null or monthly_budget_minor >= 0),
    budget_currency       text check (budget_currency is null or (length(budget_currency) = 3 and budget_currency not glob '*[^A-Z]*')),
    status                text not null check (status in ('active', 'suspended', 'migrating', 'archived', 'deleted')),
    status_reason         text,
    status_changed_at     text not null,
    retention_until       text,
    health_score          real check (health_score is null or health_score between 0 and 100),
    health_updated_at     text,
    compliance_tags       text not null default '[]' check (json_valid(compliance_tags) and json_type(compliance_tags) = 'array'),
    data_region           text not null check (length(data_region) between 1 and 64),
    metadata              text not null default '{}' check (json_valid(metadata) and json_type(metadata) = 'object'),
    version               integer not null check (version >= 1),
    created_at            text not null,
    updated_at            text not null,
    check ((monthly_budget_minor is null) = (budget_currency is null)),
    check ((status in ('archived', 'deleted')) = (retention_until is not null)),
    check ((health_score is null) = (health_updated_at is null))
) strict;

create index tenants_status_idx on tenants (status, tenant_id);
create index tenants_tier_idx on tenants (tier, tenant_id);

-- flag values: global and per-tier defaults, and tenant overrides (the same split as PostgreSQL's,
-- where tenant_flags is under row-level security)
create table flag_defaults (
    scope      text not null check (scope in ('global', 'tier')),
    scope_id   text not null,
    flag_key   text not null check (length(flag_key) between 1 and 128 and flag_key not glob '*[^a-z0-9_.-]*'),
    value      text not null check (json_valid(value)),
    updated_at text not null,
    rollout_percent integer check (rollout_percent is null or rollout_percent between 0 and 100),
    primary key (scope, scope_id, flag_key),
    check ((scope = 'global') = (scope_id = ''))
) strict;

create table tenant_flags (
    tenant_id  text not null references tenants (tenant_id),
    flag_key   text not null check (length(flag_key) between 1 and 128 and flag_key not glob '*[^a-z0-9_.-]*'),
    value      text not null check (json_valid(value)),
    updated_at text not null,
    rollout_percent integer check (rollout_percent is null or rollout_percent between 0 and 100),
    primary key (tenant_id, flag_key)
) strict;

create table audit_log (
    seq        integer primary key autoincrement,
    at         text not null,
    actor_kind text not null check (actor_kind in ('operator', 'platform_admin', 'user', 'system')),
    actor_id   text not null,
    tenant_id  text,
    operation  text not null,
    before     text check (before is null or json_valid(before)),
    after      text check (after is null or json_valid(after)),
    reason     text,
    request_id text,
    prev_hash  text check (prev_hash is null or (length(prev_hash) = 64 and prev_hash not glob '*[^0-9a-f]*')),
    hash       text check (hash is null or (length(hash) = 64 and hash not glob '*[^0-9a-f]*')),
    key_id     text,
    signature  text
) strict;

create index audit_log_tenant_idx on audit_log (tenant_id, seq);

-- append-only: an audit entry, once written, is never changed or removed
create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'audit_log is append-only');
end;

create trigger audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'audit_log is append-only');
end;

-- Users, their memberships in tenants (one role each), and API keys (digests only).

create table users (
    user_id      text primary key check (length(user_id) between 2 and 128 and user_id not glob '*[^a-z0-9_.@-]*'),
    display_name text not null check (length(trim(display_name)) between 1 and 200),
    created_at   text not null
) strict;

create table memberships (
    tenant_id  text not null references tenants (tenant_id),
    user_id    text not null references users (user_id),
    role       text not null check (role in ('admin', 'analyst', 'reviewer', 'viewer')),
    created_at text not null,
    primary key (tenant_id, user_id)
) strict;

create index memberships_user_idx on memberships (user_id, tenant_id);

create table api_keys (
    key_id     text primary key check (length(key_id) between 2 and 64 and key_id not glob '*[^a-z0-9_-]*'),
    digest     text not null unique check (length(digest) = 64 and digest not glob '*[^0-9a-f]*'),
    owner_kind text not null check (owner_kind in ('platform_admin', 'user')),
    owner_id   text not null,
    name       text not null check (length(name) <= 200),
    created_at text not null,
    expires_at text,
    revoked_at text
) strict;

create index api_keys_owner_idx on api_keys (owner_id, created_at);

-- The audit hash chain: each entry carries the previous entry's hash, its own hash over the
-- canonical encoding (tenantry_domain::audit), and the signing key's id and Ed25519 signature.
-- audit_head is the single row that serializes appends (an append updates it first, which takes
-- the write lock) and remembers the last hash.

create table audit_head (
    id   integer primary key check (id = 1),
    seq  integer not null check (seq >= 0),
    hash text not null
) strict;

insert into audit_head (id, seq, hash)
values (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

create table audit_checkpoints (
    id        integer primary key autoincrement,
    seq       integer not null check (seq >= 1),
    head_hash text not null check (length(head_hash) = 64),
    at        text not null,
    key_id    text not null,
    signature text not null
) strict;

create trigger audit_checkpoints_no_update before update on audit_checkpoints
begin
    select raise(abort, 'audit_checkpoints is append-only');
end;

create trigger audit_checkpoints_no_delete before delete on audit_checkpoints
begin
    select raise(abort, 'audit_checkpoints is append-only');
end;

-- Flag definitions (type, description, owner, expiry, version, kill switch).

create table flag_definitions (
    flag_key    text primary key check (length(flag_key) between 1 and 128 and flag_key not glob '*[^a-z0-9_.-]*'),
    kind        text not null check (kind in ('boolean', 'string', 'number', 'object')),
    description text not null default '' check (length(description) <= 1000),
    owner       text check (owner is null or length(owner) between 1 and 200),
    created_at  text not null,
    expires_at  text,
    version     integer not null check (version >= 1),
    updated_at  text not null,
    enabled     integer not null default 1 check (enabled in (0, 1))
) strict;

-- The data plane: physical vector indexes, tenant placements, documents, chunks with their
-- embeddings (little-endian f32 blobs; searched exactly, in Rust), and per-tenant usage counters
-- for exact quota enforcement.

create table vector_indexes (
    index_id    integer primary key autoincrement,
    index_name  text not null unique check (length(index_name) between 2 and 80 and index_name not glob '*[^a-z0-9_-]*'),
    kind        text not null check (kind in ('shared', 'dedicated')),
    capacity    integer not null check (capacity between 1 and 1000000),
    dimensions  integer not null check (dimensions between 1 and 16000),
    created_at  text not null
) strict;

create table tenant_placements (
    tenant_id   text primary key references tenants (tenant_id),
    index_name  text not null references vector_indexes (index_name),
    kind        text not null check (kind in ('namespace', 'dedicated')),
    placed_at   text not null
) strict;
create index tenant_placements_index_idx on tenant_placements (index_name);

create table documents (
    tenant_id        text not null references tenants (tenant_id),
    document_id      text not null check (document_id glob 'd-[0-9a-f]*' and document_id not glob 'd-*[^0-9a-f]*' and length(document_id) between 3 and 64),
    client_id        text check (client_id is null or length(client_id) between 1 and 200),
    title            text not null check (length(title) between 1 and 500),
    metadata         text not null default '{}' check (json_type(metadata) = 'object'),
    bytes            integer not null check (bytes >= 0),
    chunk_count      integer not null check (chunk_count >= 0),
    token_count      integer not null check (token_count >= 0),
    embedding_model  text not null check (length(embedding_model) between 1 and 200),
    object_key       text not null check (object_key = 'tenants/' || tenant_id || '/documents/' || document_id || '.json'),
    created_at       text not null,
    primary key (tenant_id, document_id),
    unique (tenant_id, client_id)
) strict;

create table chunks (
    tenant_id    text not null,
    index_name   text not null references vector_indexes (index_name),
    document_id  text not null,
    chunk_index  integer not null check (chunk_index >= 0),
    content      text not null,
    start_byte   integer not null check (start_byte >= 0),
    end_byte     integer not null check (end_byte >= start_byte),
    metadata     text not null default '{}' check (json_type(metadata) = 'object'),
    embedding    blob not null check (length(embedding) % 4 = 0 and length(embedding) > 0),
    primary key (tenant_id, document_id, chunk_index),
    foreign key (tenant_id, document_id) references documents (tenant_id, document_id) on delete cascade
) strict;
create index chunks_by_index on chunks (tenant_id, index_name);

create table tenant_usage (
    tenant_id  text primary key references tenants (tenant_id),
    documents  integer not null default 0 check (documents >= 0),
    bytes      integer not null default 0 check (bytes >= 0),
    chunks     integer not null default 0 check (chunks >= 0)
) strict;
