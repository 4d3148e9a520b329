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
