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
                      using (current_setting('tenantry.platform', true) = 'on')
                      with check (current_setting('tenantry.platform', true) = 'on')$p$, target);
end
$$;

select tenantry_platform_only('users');
select tenantry_platform_only('api_keys');
