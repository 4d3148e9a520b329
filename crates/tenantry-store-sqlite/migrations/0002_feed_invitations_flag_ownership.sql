-- The change feed: a process that changed the registry (a server, or the CLI) numbers an
-- invalidation here after its commit; servers without a Redis bus follow it, and every server
-- records in `replicas` how far it has applied its bus, so a command can wait until the running
-- servers have applied its change. Writes are serialized by SQLite, so feed entries become
-- visible in sequence order.

create table invalidation_head (
    id  integer primary key check (id = 1),
    seq integer not null check (seq >= 0)
) strict;
insert into invalidation_head (id, seq) values (1, 0);

create table invalidation_feed (
    seq    integer primary key check (seq >= 1),
    target text not null check (target = 'all' or target like 'tenant %'),
    at     text not null
) strict;

create table replicas (
    replica_id  text primary key check (length(replica_id) between 1 and 100),
    bus         text not null check (length(bus) between 1 and 200),
    applied_seq integer not null check (applied_seq >= 0),
    started_at  text not null,
    seen_at     text not null
) strict;

-- Invitations: a tenant admin's offer of membership, taken up by the user (a platform
-- administrator adds members directly). No foreign key to users: recording one must answer the
-- same whether or not the user exists.
create table invitations (
    tenant_id  text not null references tenants (tenant_id),
    user_id    text not null check (length(user_id) between 2 and 128),
    role       text not null check (role in ('admin', 'analyst', 'reviewer', 'viewer')),
    invited_by text not null,
    created_at text not null,
    expires_at text not null,
    primary key (tenant_id, user_id)
) strict;
create index invitations_user_idx on invitations (user_id, tenant_id);

-- Flag ownership. Flag definitions (type, description, owner, expiry, version) in
-- flag_definitions are the platform's: only platform writes create or change them. A key a
-- tenant's admin uses that the platform has not defined lives in that tenant's own namespace
-- (tenant_flag_definitions), so no tenant fixes a key's type for another or sees another's
-- activity in versions. A tenant value carries its own version, and platform_set marks a value the
-- platform set as an entitlement, which the tenant's admins cannot change.
alter table tenant_flags add column version integer not null default 1 check (version >= 1);
alter table tenant_flags add column platform_set integer not null default 0 check (platform_set in (0, 1));

create table tenant_flag_definitions (
    tenant_id   text not null references tenants (tenant_id),
    flag_key    text not null check (length(flag_key) between 1 and 128 and flag_key not glob '*[^a-z0-9_.-]*'),
    kind        text not null check (kind in ('boolean', 'string', 'number', 'object')),
    description text not null default '' check (length(description) <= 1000),
    owner       text check (owner is null or length(owner) between 1 and 200),
    created_at  text not null,
    expires_at  text,
    version     integer not null check (version >= 1),
    updated_at  text not null,
    primary key (tenant_id, flag_key)
) strict;

-- Existing data: a definition with values only at tenant level (and not switched off) was fixed
-- by whichever tenant used the key first; it moves into the namespace of every tenant using it.
insert into tenant_flag_definitions
    (tenant_id, flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
select tf.tenant_id, d.flag_key, d.kind, d.description, d.owner, d.created_at, d.expires_at, 1, d.updated_at
from flag_definitions d join tenant_flags tf on tf.flag_key = d.flag_key
where d.enabled and not exists (select 1 from flag_defaults f where f.flag_key = d.flag_key);
delete from flag_definitions
where enabled
  and not exists (select 1 from flag_defaults f where f.flag_key = flag_definitions.flag_key)
  and exists (select 1 from tenant_flags tf where tf.flag_key = flag_definitions.flag_key);

-- Ingest rate limits (documents and bytes per second), a tier default like every limit. The
-- built-in tiers get their values; a tier an operator added gets gold's; every tenant's resolved
-- value is its tier's (no tenant had set one).
alter table tiers add column ingest_documents_per_second integer not null default 50
    check (ingest_documents_per_second between 1 and 1000000000000);
alter table tiers add column ingest_bytes_per_second integer not null default 16777216
    check (ingest_bytes_per_second between 1 and 1000000000000);
alter table tenants add column ingest_documents_per_second integer not null default 50
    check (ingest_documents_per_second between 1 and 1000000000000);
alter table tenants add column ingest_bytes_per_second integer not null default 16777216
    check (ingest_bytes_per_second between 1 and 1000000000000);
update tiers set ingest_documents_per_second = 5, ingest_bytes_per_second = 1048576 where name = 'bronze';
update tiers set ingest_documents_per_second = 20, ingest_bytes_per_second = 4194304 where name = 'silver';
update tiers set ingest_documents_per_second = 200, ingest_bytes_per_second = 67108864 where name = 'platinum';
update tenants set
    ingest_documents_per_second = (select t.ingest_documents_per_second from tiers t where t.name = tenants.tier),
    ingest_bytes_per_second = (select t.ingest_bytes_per_second from tiers t where t.name = tenants.tier);

-- audit_head moves only with the log, on every path: one step forward with the same hash (the
-- append taking the lock), then to the hash of the entry written at that position. Any other
-- write — a forged head, a rewind, a jump — is refused.
create trigger audit_head_follows_the_log before update on audit_head
when not (new.id = old.id and ((new.seq = old.seq + 1 and new.hash = old.hash)
    or (new.seq = old.seq and exists (select 1 from audit_log where seq = new.seq and hash = new.hash))))
begin
    select raise(abort, 'audit_head only follows the audit log');
end;

-- Objects left behind in object storage (a batch whose rows did not commit, a deleted document)
-- when object storage could not remove them at the time; a periodic sweep removes them.
create table orphan_objects (
    object_key  text primary key check (length(object_key) between 1 and 1024),
    recorded_at text not null
) strict;
