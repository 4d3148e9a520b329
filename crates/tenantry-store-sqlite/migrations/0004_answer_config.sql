-- Answer configuration (issue 18): every change to a layer is a new numbered version, kept with
-- its author and reason; the current layer is the highest version.

create table rag_config_defaults (
    scope      text not null check (scope in ('platform', 'tier')),
    scope_id   text not null,
    version    integer not null check (version >= 1),
    settings   text not null check (json_valid(settings) and json_type(settings) = 'object'),
    author     text not null,
    reason     text,
    created_at text not null,
    primary key (scope, scope_id, version),
    check ((scope = 'platform') = (scope_id = ''))
) strict;

create table tenant_rag_configs (
    tenant_id  text not null references tenants (tenant_id),
    version    integer not null check (version >= 1),
    settings   text not null check (json_valid(settings) and json_type(settings) = 'object'),
    author     text not null,
    reason     text,
    created_at text not null,
    primary key (tenant_id, version)
) strict;
