-- tenantry embedded schema v1: tier catalog, tenants, flag values, audit log.
-- CHECK constraints mirror the domain rules so that no writer can store what the core would refuse.

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

create table flag_values (
    scope      text not null check (scope in ('global', 'tier', 'tenant')),
    scope_id   text not null,
    flag_key   text not null check (length(flag_key) between 1 and 128 and flag_key not glob '*[^a-z0-9_.-]*'),
    value      text not null check (json_valid(value)),
    updated_at text not null,
    primary key (scope, scope_id, flag_key),
    check ((scope = 'global') = (scope_id = ''))
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
    reason     text
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
