-- tenantry PostgreSQL schema, baseline: tier catalog, tenants, flag values and definitions, users,
-- memberships and API keys, the audit hash chain, the data plane — all under row-level security.
-- Migrations are history: this file, once released, is never edited; a change is a new file (the
-- runner refuses a database whose applied migrations do not match these files' checksums).
--
-- Table classes (read by the Citus-readiness test through the table comments):
--   tenantry:reference  global catalogs, replicated to every node when distributed (tiers, flag_defaults)
--   tenantry:tenant     tenant-owned rows: tenant_id leads the primary key and every unique/foreign key,
--                       FORCE row level security keyed on the transaction-local tenantry.tenant_id
--   tenantry:platform   platform-wide rows that stay on the coordinator (audit_log), still under RLS

create extension if not exists vector;

create table tiers (
    name                  text primary key check (name ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    rank                  bigint not null,
    description           text not null default '',
    max_users             bigint not null check (max_users between 1 and 1000000000000),
    max_documents         bigint not null check (max_documents between 1 and 1000000000000),
    max_queries_per_day   bigint not null check (max_queries_per_day between 1 and 1000000000000),
    max_storage_gb        bigint not null check (max_storage_gb between 1 and 1000000000000),
    rate_limit_per_minute bigint not null check (rate_limit_per_minute between 1 and 1000000000000),
    sla_target            double precision not null check (sla_target > 0 and sla_target <= 1),
    support_level         text not null check (length(support_level) between 1 and 64),
    isolation             text not null check (isolation in ('shared_namespace', 'dedicated_index')),
    retention_days        bigint not null check (retention_days between 0 and 36500)
);
comment on table tiers is 'tenantry:reference';

create table tenants (
    tenant_id             text primary key check (tenant_id ~ '^[a-z0-9][a-z0-9_-]{1,62}$'),
    name                  text not null check (length(btrim(name)) between 1 and 200),
    billing_email         text check (billing_email is null or billing_email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    owner                 text,
    tier                  text not null references tiers (name),
    max_users             bigint not null check (max_users between 1 and 1000000000000),
    max_documents         bigint not null check (max_documents between 1 and 1000000000000),
    max_queries_per_day   bigint not null check (max_queries_per_day between 1 and 1000000000000),
    max_storage_gb        bigint not null check (max_storage_gb between 1 and 1000000000000),
    rate_limit_per_minute bigint not null check (rate_limit_per_minute between 1 and 1000000000000),
    sla_target            double precision not null check (sla_target > 0 and sla_target <= 1),
    support_level         text not null check (length(support_level) between 1 and 64),
    explicit_limits       jsonb not null default '[]' check (jsonb_typeof(explicit_limits) = 'array'),
    cost_center           text check (cost_center is null or length(cost_center) between 1 and 64),
    monthly_budget_minor  bigint check (monthly_budget_minor is null or monthly_budget_minor >= 0),
    budget_currency       text check (budget_currency is null or budget_currency ~ '^[A-Z]{3}$'),
    status                text not null check (status in ('active', 'suspended', 'migrating', 'archived', 'deleted')),
    status_reason         text,
    status_changed_at     timestamptz not null,
    retention_until       timestamptz,
    health_score          double precision check (health_score is null or health_score between 0 and 100),
    health_updated_at     timestamptz,
    compliance_tags       jsonb not null default '[]' check (jsonb_typeof(compliance_tags) = 'array'),
    data_region           text not null check (length(data_region) between 1 and 64),
    metadata              jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    version               bigint not null check (version >= 1),
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    check ((monthly_budget_minor is null) = (budget_currency is null)),
    check ((status in ('archived', 'deleted')) = (retention_until is not null)),
    check ((health_score is null) = (health_updated_at is null))
);
comment on table tenants is 'tenantry:tenant';
create index tenants_status_idx on tenants (status, tenant_id);
create index tenants_tier_idx on tenants (tier, tenant_id);

-- Keeps updated_at current for writers that do not set it themselves (ad-hoc SQL); the service
-- sets it from its clock, which this leaves alone.
create function tenantry_touch_updated_at() returns trigger language plpgsql as $$
begin
    if new.updated_at is not distinct from old.updated_at then
        new.updated_at := now();
    end if;
    return new;
end
$$;
create trigger tenants_touch_updated_at before update on tenants
    for each row execute function tenantry_touch_updated_at();

create table flag_defaults (
    scope      text not null check (scope in ('global', 'tier')),
    scope_id   text not null,
    flag_key   text not null check (flag_key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    value      jsonb not null,
    updated_at timestamptz not null default now(),
    rollout_percent smallint check (rollout_percent between 0 and 100),
    primary key (scope, scope_id, flag_key),
    check ((scope = 'global') = (scope_id = ''))
);
comment on table flag_defaults is 'tenantry:reference';

create table tenant_flags (
    tenant_id  text not null references tenants (tenant_id),
    flag_key   text not null check (flag_key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    value      jsonb not null,
    updated_at timestamptz not null default now(),
    rollout_percent smallint check (rollout_percent between 0 and 100),
    primary key (tenant_id, flag_key)
);
comment on table tenant_flags is 'tenantry:tenant';

create table audit_log (
    seq        bigserial primary key,
    at         timestamptz not null,
    actor_kind text not null check (actor_kind in ('operator', 'platform_admin', 'user', 'system')),
    actor_id   text not null,
    tenant_id  text,
    operation  text not null,
    before     jsonb,
    after      jsonb,
    reason     text,
    request_id text,
    prev_hash  text check (prev_hash is null or prev_hash ~ '^[0-9a-f]{64}$'),
    hash       text check (hash is null or hash ~ '^[0-9a-f]{64}$'),
    key_id     text,
    signature  text
);
comment on table audit_log is 'tenantry:platform';
create index audit_log_tenant_idx on audit_log (tenant_id, seq);

create function tenantry_audit_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only' using errcode = 'insufficient_privilege';
end
$$;
create trigger audit_log_no_update before update or delete on audit_log
    for each row execute function tenantry_audit_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function tenantry_audit_append_only();

-- Row-level security. Two named paths, both transaction-local (set_config(..., true)):
--   tenantry.tenant_id = '<id>'   a tenant-scoped transaction sees and writes only that tenant's rows
--   tenantry.platform  = 'on'     the platform path (create/list tenants, statistics, flags), set only
--                                 by PgStore::platform_tx for a PlatformScope
-- Without either, every table under these policies reads as empty. Every table with a tenant_id
-- column goes through this one function, so none can end up with a weaker policy set.
create function tenantry_isolate_by_tenant(target regclass) returns void language plpgsql as $$
begin
    execute format('alter table %s enable row level security', target);
    execute format('alter table %s force row level security', target);
    execute format($p$create policy tenant_isolation on %s
                      using (tenant_id = (select current_setting('tenantry.tenant_id', true)))
                      with check (tenant_id = (select current_setting('tenantry.tenant_id', true)))$p$, target);
    execute format($p$create policy platform_access on %s
                      using ((select current_setting('tenantry.platform', true)) = 'on')
                      with check ((select current_setting('tenantry.platform', true)) = 'on')$p$, target);
end
$$;

select tenantry_isolate_by_tenant('tenants');
select tenantry_isolate_by_tenant('tenant_flags');
select tenantry_isolate_by_tenant('audit_log');

-- Users, their memberships in tenants (one role each), and API keys (SHA-256 digests only).

create table users (
    user_id      text primary key check (user_id ~ '^[a-z0-9][a-z0-9_.@-]{1,127}$'),
    display_name text not null check (length(btrim(display_name)) between 1 and 200),
    created_at   timestamptz not null
);
-- A small global directory: replicated to every node when distributed; readable on the platform
-- path only (authentication and administration).
comment on table users is 'tenantry:reference';

create table memberships (
    tenant_id  text not null references tenants (tenant_id),
    user_id    text not null references users (user_id),
    role       text not null check (role in ('admin', 'analyst', 'reviewer', 'viewer')),
    created_at timestamptz not null,
    primary key (tenant_id, user_id)
);
comment on table memberships is 'tenantry:tenant';
create index memberships_user_idx on memberships (user_id, tenant_id);

create table api_keys (
    key_id     text primary key check (key_id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'),
    digest     text not null unique check (digest ~ '^[0-9a-f]{64}$'),
    owner_kind text not null check (owner_kind in ('platform_admin', 'user')),
    owner_id   text not null,
    name       text not null check (length(name) <= 200),
    created_at timestamptz not null,
    expires_at timestamptz,
    revoked_at timestamptz
);
comment on table api_keys is 'tenantry:platform';
create index api_keys_owner_idx on api_keys (owner_id, created_at);

select tenantry_isolate_by_tenant('memberships');

-- Tables without tenant_id that only the platform path may read or write.
create function tenantry_platform_only(target regclass) returns void language plpgsql as $$
begin
    execute format('alter table %s enable row level security', target);
    execute format('alter table %s force row level security', target);
    execute format($p$create policy platform_access on %s
                      using ((select current_setting('tenantry.platform', true)) = 'on')
                      with check ((select current_setting('tenantry.platform', true)) = 'on')$p$, target);
end
$$;

select tenantry_platform_only('users');
select tenantry_platform_only('api_keys');

-- The audit hash chain: each entry carries the previous entry's hash, its own hash over the
-- canonical encoding (tenantry_domain::audit), and the signing key's id and Ed25519 signature.
-- audit_head is the single row that serializes appends (an append updates it first, taking its
-- row lock until commit) and remembers the last hash.

create table audit_head (
    id   int primary key check (id = 1),
    seq  bigint not null check (seq >= 0),
    hash text not null check (hash ~ '^[0-9a-f]{64}$')
);
comment on table audit_head is 'tenantry:platform';
insert into audit_head (id, seq, hash) values (1, 0, repeat('0', 64));

create table audit_checkpoints (
    id        bigserial primary key,
    seq       bigint not null check (seq >= 1),
    head_hash text not null check (head_hash ~ '^[0-9a-f]{64}$'),
    at        timestamptz not null,
    key_id    text not null,
    signature text not null
);
comment on table audit_checkpoints is 'tenantry:platform';
create trigger audit_checkpoints_no_update before update or delete on audit_checkpoints
    for each row execute function tenantry_audit_append_only();
create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
    for each statement execute function tenantry_audit_append_only();
select tenantry_platform_only('audit_checkpoints');

-- Flag definitions (type, description, owner, expiry, version, kill switch).

create table flag_definitions (
    flag_key    text primary key check (flag_key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    kind        text not null check (kind in ('boolean', 'string', 'number', 'object')),
    description text not null default '' check (length(description) <= 1000),
    owner       text check (owner is null or length(owner) between 1 and 200),
    created_at  timestamptz not null,
    expires_at  timestamptz,
    version     bigint not null check (version >= 1),
    updated_at  timestamptz not null,
    enabled     boolean not null default true
);
comment on table flag_definitions is 'tenantry:reference';

-- The data plane: physical vector indexes, tenant placements, documents, chunks with their
-- embeddings (pgvector), and per-tenant usage counters for exact quota enforcement.
--
-- Each physical index is one LIST partition of `chunks` with its own HNSW index (cosine), created
-- by `tenantry_provision_index`. The embedding column is untyped `vector`; each partition's HNSW
-- index is on `embedding::vector(<dimensions>)` and a CHECK pins the dimensions, so one
-- deployment can hold indexes of different models.

create table vector_indexes (
    index_id    bigserial unique,
    index_name  text primary key check (index_name ~ '^[a-z0-9][a-z0-9_-]{1,79}$'),
    kind        text not null check (kind in ('shared', 'dedicated')),
    capacity    bigint not null check (capacity between 1 and 1000000),
    dimensions  integer not null check (dimensions between 1 and 16000),
    partition   text not null unique,
    created_at  timestamptz not null default now()
);
-- The pool is a small global catalog (replicated when distributed); written only by the
-- provisioning function.
comment on table vector_indexes is 'tenantry:reference';

create table tenant_placements (
    tenant_id   text primary key references tenants (tenant_id),
    index_name  text not null references vector_indexes (index_name),
    kind        text not null check (kind in ('namespace', 'dedicated')),
    placed_at   timestamptz not null
);
comment on table tenant_placements is 'tenantry:tenant';
create index tenant_placements_index_idx on tenant_placements (index_name);

create table documents (
    tenant_id        text not null references tenants (tenant_id),
    document_id      text not null check (document_id ~ '^d-[0-9a-f]{1,62}$'),
    client_id        text check (client_id is null or length(client_id) between 1 and 200),
    title            text not null check (length(title) between 1 and 500),
    metadata         jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    bytes            bigint not null check (bytes >= 0),
    chunk_count      bigint not null check (chunk_count >= 0),
    token_count      bigint not null check (token_count >= 0),
    embedding_model  text not null check (length(embedding_model) between 1 and 200),
    object_key       text not null check (object_key = 'tenants/' || tenant_id || '/documents/' || document_id || '.json'),
    created_at       timestamptz not null,
    primary key (tenant_id, document_id),
    unique (tenant_id, client_id)
);
comment on table documents is 'tenantry:tenant';

create table chunks (
    tenant_id    text not null,
    index_name   text not null,
    document_id  text not null,
    chunk_index  integer not null check (chunk_index >= 0),
    content      text not null,
    start_byte   bigint not null check (start_byte >= 0),
    end_byte     bigint not null check (end_byte >= start_byte),
    metadata     jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    embedding    vector not null,
    primary key (tenant_id, index_name, document_id, chunk_index),
    foreign key (tenant_id, document_id) references documents (tenant_id, document_id) on delete cascade
) partition by list (index_name);
comment on table chunks is 'tenantry:tenant';

create table tenant_usage (
    tenant_id  text primary key references tenants (tenant_id),
    documents  bigint not null default 0 check (documents >= 0),
    bytes      bigint not null default 0 check (bytes >= 0),
    chunks     bigint not null default 0 check (chunks >= 0)
);
comment on table tenant_usage is 'tenantry:tenant';

select tenantry_isolate_by_tenant('tenant_placements');
select tenantry_isolate_by_tenant('documents');
select tenantry_isolate_by_tenant('chunks');
select tenantry_isolate_by_tenant('tenant_usage');

-- Writes a partition's search function, `<partition>_search(tenant, query, filter, k, ef_search)`:
-- static SQL naming the partition's index and dimensions, so PL/pgSQL keeps its plans for the
-- session, and one round trip per search. It carries no policy: the caller (the store, through
-- `tenantry_domain::search::plan_search`) chooses the path — `p_ef` 0 for the exact scan of the
-- tenant's rows, else HNSW at that `ef_search` with iterative scans — and the function runs it.
-- When HNSW comes back with fewer than k rows, the exact top k follows the rows already returned;
-- every row carries its exact score, so the caller's top k of the union by score (ties by
-- document and chunk) is the exact answer.
-- SECURITY INVOKER (it runs as the app role, under RLS); it names its tables, type and operator
-- with their schema instead of pinning search_path with a SET clause (saved and restored on
-- every call). It sets the tenant context and the planner settings transaction-locally, so in
-- autocommit they end with the statement; the steering (no sequential or bitmap scan: the
-- tenant's btree range on the exact path, no sort of the whole partition on the HNSW path) is
-- needed because the cached plans are generic and cannot know the tenant's size.
create function tenantry_create_search_function(p_partition text, p_index text, p_dims integer)
returns void language plpgsql set search_path = public, pg_temp as $$
begin
    if p_partition !~ '^chunks_i[0-9]{1,18}$' or p_index !~ '^[a-z0-9][a-z0-9_-]{1,79}$'
       or p_dims not between 1 and 16000 then
        raise exception 'tenantry_create_search_function: invalid partition, index or dimensions' using errcode = '22023';
    end if;
    execute format($f$
create or replace function public.%1$I(p_tenant text, p_query public.vector, p_filter jsonb, p_k integer, p_ef integer)
returns table (document_id text, chunk_index integer, content text, metadata jsonb, title text, score real)
language plpgsql security invoker as $body$
declare
    v_found bigint := 0;
begin
    if p_k not between 1 and 1000 or p_ef not between 0 and 1000 then
        raise exception 'search: invalid k or ef_search' using errcode = '22023';
    end if;
    perform set_config('tenantry.tenant_id', p_tenant, true), set_config('enable_seqscan', 'off', true),
            set_config('enable_bitmapscan', 'off', true);
    if p_ef > 0 then
        perform set_config('hnsw.iterative_scan', 'strict_order', true), set_config('hnsw.ef_search', p_ef::text, true),
                set_config('enable_sort', 'off', true);
        return query
            select k.document_id, k.chunk_index, k.content, k.metadata, doc.title, (1 - k.distance)::real
            from (select c.document_id, c.chunk_index, c.content, c.metadata,
                         c.embedding::public.vector(%3$s) operator(public.<=>) p_query as distance
                  from public.chunks c where c.index_name = %2$L and c.tenant_id = p_tenant and c.metadata @> p_filter
                  order by c.embedding::public.vector(%3$s) operator(public.<=>) p_query limit p_k) k
            join public.documents doc on doc.tenant_id = p_tenant and doc.document_id = k.document_id
            order by k.distance;
        get diagnostics v_found = row_count;
        perform set_config('enable_sort', 'on', true);
    end if;
    if v_found < p_k then
        return query
            select k.document_id, k.chunk_index, k.content, k.metadata, doc.title, (1 - k.distance)::real
            from (select c.document_id, c.chunk_index, c.content, c.metadata,
                         (c.embedding operator(public.<=>) p_query) + 0 as distance
                  from public.chunks c where c.index_name = %2$L and c.tenant_id = p_tenant and c.metadata @> p_filter
                  order by (c.embedding operator(public.<=>) p_query) + 0, c.document_id, c.chunk_index limit p_k) k
            join public.documents doc on doc.tenant_id = p_tenant and doc.document_id = k.document_id
            order by k.distance;
    end if;
    -- lifted again: a caller inside a longer transaction does not keep them
    perform set_config('enable_seqscan', 'on', true), set_config('enable_bitmapscan', 'on', true);
end
$body$
$f$, p_partition || '_search', p_index, p_dims);
end
$$;
revoke all on function tenantry_create_search_function(text, text, integer) from public;

-- Creates a physical index: its pool row and its partition of `chunks` (RLS forced, the same
-- policies as every tenant table, an HNSW index for cosine distance) and the partition's search
-- function. Platform path only. Idempotent for the same name and settings. SECURITY DEFINER,
-- because the application role owns nothing and cannot run DDL itself.
create function tenantry_provision_index(p_name text, p_kind text, p_capacity bigint, p_dimensions integer)
returns void language plpgsql security definer set search_path = public, pg_temp as $$
declare
    v_id bigint;
    v_part text;
begin
    if current_setting('tenantry.platform', true) is distinct from 'on' then
        raise exception 'provisioning an index needs the platform path' using errcode = '42501';
    end if;
    perform pg_advisory_xact_lock(7364, 1);
    if exists (select 1 from vector_indexes where index_name = p_name) then
        if exists (select 1 from vector_indexes where index_name = p_name
                   and (kind, capacity, dimensions) = (p_kind, p_capacity, p_dimensions)) then
            return;
        end if;
        raise exception 'index % exists with other settings', p_name using errcode = '23505';
    end if;
    v_id := nextval(pg_get_serial_sequence('vector_indexes', 'index_id'));
    v_part := 'chunks_i' || v_id;
    insert into vector_indexes (index_id, index_name, kind, capacity, dimensions, partition)
        values (v_id, p_name, p_kind, p_capacity, p_dimensions, v_part);
    execute format('create table %I partition of chunks for values in (%L)', v_part, p_name);
    execute format('alter table %I add check (vector_dims(embedding) = %s)', v_part, p_dimensions);
    execute format('create index %I on %I using hnsw ((embedding::vector(%s)) vector_cosine_ops)',
                   v_part || '_hnsw', v_part, p_dimensions);
    execute format('comment on table %I is %L', v_part, 'tenantry:tenant');
    perform tenantry_isolate_by_tenant(v_part::regclass);
    execute format('grant select, insert, update, delete on %I to %I', v_part, session_user);
    perform tenantry_create_search_function(v_part, p_name, p_dimensions);
end
$$;
revoke all on function tenantry_provision_index(text, text, bigint, integer) from public;
