-- Answer configuration (issue 18): every change to a layer is a new numbered version, kept with
-- its author and reason; the current layer is the highest version. Platform and tier layers are
-- the platform's (reference data, like flag_defaults); a tenant's layer is under RLS.

create table rag_config_defaults (
    scope      text not null check (scope in ('platform', 'tier')),
    scope_id   text not null,
    version    bigint not null check (version >= 1),
    settings   jsonb not null check (jsonb_typeof(settings) = 'object'),
    author     text not null,
    reason     text,
    created_at timestamptz not null,
    primary key (scope, scope_id, version),
    check ((scope = 'platform') = (scope_id = ''))
);
comment on table rag_config_defaults is 'tenantry:reference';

create table tenant_rag_configs (
    tenant_id  text not null references tenants (tenant_id),
    version    bigint not null check (version >= 1),
    settings   jsonb not null check (jsonb_typeof(settings) = 'object'),
    author     text not null,
    reason     text,
    created_at timestamptz not null,
    primary key (tenant_id, version)
);
comment on table tenant_rag_configs is 'tenantry:tenant';
select tenantry_isolate_by_tenant('tenant_rag_configs');
