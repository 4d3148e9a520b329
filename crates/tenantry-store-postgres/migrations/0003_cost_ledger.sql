-- The cost ledger (issue 17). Usage events are kept raw for idempotency (one row per tenant and
-- key) and summed, in the same transaction, into daily rollups that reports read; a report never
-- scans raw events. Prices, fixed costs, bills and reconciliations are the platform's.

create table usage_events (
    tenant_id text not null,
    idem_key  text not null check (length(idem_key) between 1 and 200),
    meter     text not null,
    model     text not null default '',
    quantity  bigint not null check (quantity >= 0),
    at        timestamptz not null,
    primary key (tenant_id, idem_key)
);
comment on table usage_events is 'tenantry:tenant';
select tenantry_isolate_by_tenant('usage_events');
-- raw events are pruned by age (`serve --usage-retention-days`); rollups stay
create index usage_events_at_idx on usage_events (at);

create table usage_daily (
    tenant_id text not null,
    meter     text not null,
    model     text not null default '',
    day       date not null,
    quantity  bigint not null check (quantity >= 0),
    primary key (tenant_id, meter, model, day)
);
comment on table usage_daily is 'tenantry:tenant';
create index usage_daily_day_idx on usage_daily (day);
select tenantry_isolate_by_tenant('usage_daily');

create table prices (
    meter          text not null,
    model          text not null default '',
    currency       text not null check (currency ~ '^[A-Z]{3}$'),
    effective_from date not null,
    provider       text not null,
    unit_price     text not null check (unit_price ~ '^[0-9]+(\.[0-9]+)?$'),
    created_at     timestamptz not null,
    primary key (meter, model, currency, effective_from)
);
comment on table prices is 'tenantry:platform';
select tenantry_platform_only('prices');

create table fixed_costs (
    name        text primary key,
    provider    text not null,
    amount_minor bigint not null check (amount_minor >= 0),
    currency    text not null check (currency ~ '^[A-Z]{3}$'),
    per_index   boolean not null,
    allocation  text not null,
    from_month  text not null check (from_month ~ '^[0-9]{4}-[0-9]{2}$'),
    until_month text check (until_month ~ '^[0-9]{4}-[0-9]{2}$'),
    updated_at  timestamptz not null
);
comment on table fixed_costs is 'tenantry:platform';
select tenantry_platform_only('fixed_costs');

create table bills (
    provider     text not null,
    month        text not null check (month ~ '^[0-9]{4}-[0-9]{2}$'),
    currency     text not null check (currency ~ '^[A-Z]{3}$'),
    amount_minor bigint not null check (amount_minor >= 0),
    imported_at  timestamptz not null,
    primary key (provider, month)
);
comment on table bills is 'tenantry:platform';
select tenantry_platform_only('bills');

create table reconciliations (
    id       bigserial primary key,
    month    text not null,
    currency text not null,
    verdict  text not null check (verdict in ('pass', 'warn', 'fail')),
    at       timestamptz not null,
    detail   jsonb not null
);
comment on table reconciliations is 'tenantry:platform';
select tenantry_platform_only('reconciliations');
create index reconciliations_month_idx on reconciliations (month, id);

-- What a spent budget does: alert only, or also refuse billable requests.
alter table tenants add column budget_action text not null default 'alert'
    check (budget_action in ('alert', 'block'));

-- One alert per tenant, month and budget threshold (percent), however many replicas notice.
create table budget_alerts (
    tenant_id text not null,
    month     text not null,
    threshold integer not null check (threshold between 1 and 1000),
    fired_at  timestamptz not null,
    primary key (tenant_id, month, threshold)
);
comment on table budget_alerts is 'tenantry:tenant';
select tenantry_isolate_by_tenant('budget_alerts');
