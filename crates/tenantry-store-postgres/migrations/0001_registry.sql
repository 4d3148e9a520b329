-- tenantry PostgreSQL schema v1: tier catalog, tenants, flag values, audit log, with row-level security.
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
    primary key (scope, scope_id, flag_key),
    check ((scope = 'global') = (scope_id = ''))
);
comment on table flag_defaults is 'tenantry:reference';

create table tenant_flags (
    tenant_id  text not null references tenants (tenant_id),
    flag_key   text not null check (flag_key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    value      jsonb not null,
    updated_at timestamptz not null default now(),
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
    reason     text
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
                      using (tenant_id = current_setting('tenantry.tenant_id', true))
                      with check (tenant_id = current_setting('tenantry.tenant_id', true))$p$, target);
    execute format($p$create policy platform_access on %s
                      using (current_setting('tenantry.platform', true) = 'on')
                      with check (current_setting('tenantry.platform', true) = 'on')$p$, target);
end
$$;

select tenantry_isolate_by_tenant('tenants');
select tenantry_isolate_by_tenant('tenant_flags');
select tenantry_isolate_by_tenant('audit_log');
