-- The cost ledger (issue 17). Usage events are kept raw for idempotency (one row per tenant and
-- key) and summed, in the same transaction, into daily rollups that reports read; a report never
-- scans raw events. Prices, fixed costs, bills and reconciliations are the platform's.

create table usage_events (
    tenant_id text not null,
    idem_key  text not null check (length(idem_key) between 1 and 200),
    meter     text not null,
    model     text not null default '',
    quantity  integer not null check (quantity >= 0),
    at        text not null,
    primary key (tenant_id, idem_key)
) strict, without rowid;
-- raw events are pruned by age (`serve --usage-retention-days`); rollups stay
create index usage_events_at_idx on usage_events (at);

create table usage_daily (
    tenant_id text not null,
    meter     text not null,
    model     text not null default '',
    day       text not null,
    quantity  integer not null check (quantity >= 0),
    primary key (tenant_id, meter, model, day)
) strict, without rowid;
create index usage_daily_day_idx on usage_daily (day);

create table prices (
    meter          text not null,
    model          text not null default '',
    currency       text not null check (length(currency) = 3),
    effective_from text not null,
    provider       text not null,
    unit_price     text not null,
    created_at     text not null,
    primary key (meter, model, currency, effective_from)
) strict;

create table fixed_costs (
    name         text primary key,
    provider     text not null,
    amount_minor integer not null check (amount_minor >= 0),
    currency     text not null check (length(currency) = 3),
    per_index    integer not null check (per_index in (0, 1)),
    allocation   text not null,
    from_month   text not null,
    until_month  text,
    updated_at   text not null
) strict;

create table bills (
    provider     text not null,
    month        text not null,
    currency     text not null check (length(currency) = 3),
    amount_minor integer not null check (amount_minor >= 0),
    imported_at  text not null,
    primary key (provider, month)
) strict;

create table reconciliations (
    id       integer primary key autoincrement,
    month    text not null,
    currency text not null,
    verdict  text not null check (verdict in ('pass', 'warn', 'fail')),
    at       text not null,
    detail   text not null
) strict;
create index reconciliations_month_idx on reconciliations (month, id);

-- What a spent budget does: alert only, or also refuse billable requests.
alter table tenants add column budget_action text not null default 'alert'
    check (budget_action in ('alert', 'block'));

-- One alert per tenant, month and budget threshold (percent), however many replicas notice.
create table budget_alerts (
    tenant_id text not null,
    month     text not null,
    threshold integer not null check (threshold between 1 and 1000),
    fired_at  text not null,
    primary key (tenant_id, month, threshold)
) strict;
