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
