-- The change feed: a process that changed the registry (a server, or the CLI) numbers an
-- invalidation here after its commit; servers without a Redis bus follow it, and every server
-- records in `replicas` how far it has applied its bus, so a command can wait until the running
-- servers have applied its change. invalidation_head serializes numbering (an append updates it
-- first, holding its row lock until commit), so feed entries become visible in sequence order.

create table invalidation_head (
    id  int primary key check (id = 1),
    seq bigint not null check (seq >= 0)
);
comment on table invalidation_head is 'tenantry:platform';
insert into invalidation_head (id, seq) values (1, 0);

create table invalidation_feed (
    seq    bigint primary key check (seq >= 1),
    target text not null check (target = 'all' or target like 'tenant %'),
    at     timestamptz not null
);
comment on table invalidation_feed is 'tenantry:platform';

create table replicas (
    replica_id  text primary key check (length(replica_id) between 1 and 100),
    bus         text not null check (length(bus) between 1 and 200),
    applied_seq bigint not null check (applied_seq >= 0),
    started_at  timestamptz not null,
    seen_at     timestamptz not null
);
comment on table replicas is 'tenantry:platform';

-- Invitations: a tenant admin's offer of membership, taken up by the user (a platform
-- administrator adds members directly). No foreign key to users: recording one must answer the
-- same whether or not the user exists.
create table invitations (
    tenant_id  text not null references tenants (tenant_id),
    user_id    text not null check (length(user_id) between 2 and 128),
    role       text not null check (role in ('admin', 'analyst', 'reviewer', 'viewer')),
    invited_by text not null,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    primary key (tenant_id, user_id)
);
comment on table invitations is 'tenantry:tenant';
create index invitations_user_idx on invitations (user_id, tenant_id);
select tenantry_isolate_by_tenant('invitations');

-- Flag ownership. Flag definitions (type, description, owner, expiry, version) in
-- flag_definitions are the platform's: only platform writes create or change them. A key a
-- tenant's admin uses that the platform has not defined lives in that tenant's own namespace
-- (tenant_flag_definitions), so no tenant fixes a key's type for another or sees another's
-- activity in versions. A tenant value carries its own version, and platform_set marks a value the
-- platform set as an entitlement, which the tenant's admins cannot change.
select set_config('tenantry.platform', 'on', true);

alter table tenant_flags add column version bigint not null default 1 check (version >= 1);
alter table tenant_flags add column platform_set boolean not null default false;

create table tenant_flag_definitions (
    tenant_id   text not null references tenants (tenant_id),
    flag_key    text not null check (flag_key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    kind        text not null check (kind in ('boolean', 'string', 'number', 'object')),
    description text not null default '' check (length(description) <= 1000),
    owner       text check (owner is null or length(owner) between 1 and 200),
    created_at  timestamptz not null,
    expires_at  timestamptz,
    version     bigint not null check (version >= 1),
    updated_at  timestamptz not null,
    primary key (tenant_id, flag_key)
);
comment on table tenant_flag_definitions is 'tenantry:tenant';
select tenantry_isolate_by_tenant('tenant_flag_definitions');

-- Existing data: a definition with values only at tenant level (and not switched off) was fixed
-- by whichever tenant used the key first; it moves into the namespace of every tenant using it.
insert into tenant_flag_definitions
    (tenant_id, flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
select tf.tenant_id, d.flag_key, d.kind, d.description, d.owner, d.created_at, d.expires_at, 1, d.updated_at
from flag_definitions d join tenant_flags tf on tf.flag_key = d.flag_key
where d.enabled and not exists (select 1 from flag_defaults f where f.flag_key = d.flag_key);
delete from flag_definitions d
where d.enabled
  and not exists (select 1 from flag_defaults f where f.flag_key = d.flag_key)
  and exists (select 1 from tenant_flags tf where tf.flag_key = d.flag_key);
