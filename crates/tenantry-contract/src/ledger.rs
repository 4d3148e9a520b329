//! The cost ledger's contract: usage is recorded once per key under concurrent writers and rolls
//! up exactly; a month is priced exactly to the minor unit against a computation written out in
//! the test; the data plane meters its work; a tenant reads only its own usage and costs; bills
//! reconcile with the seed's thresholds; budget alerts fire once per threshold and month.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::macros::{date, datetime};

use tenantry_app::ports::Store;
use tenantry_app::{ErrorCode, TenantScope};
use tenantry_domain::cost::{Meter, RollupKey, UsageEvent, roll_up};
use tenantry_domain::pricing::{Allocation, Bill, FixedCost, Month, Price, preset};
use tenantry_domain::{Currency, Label, Money, NewTenant, Role, TenantPatch, UserId};

use crate::{Ctx, tid, tier};

fn label(s: &str) -> Label {
    Label::parse(s).unwrap()
}

fn usd(amount: &str) -> Money {
    Money::parse_decimal(amount, Currency::parse("USD").unwrap()).unwrap()
}

async fn tenant(ctx: &Ctx, id: &str, tier_name: &str) {
    ctx.registry.create_tenant(&ctx.admin, NewTenant::minimal(tid(id), id, tier(tier_name))).await.unwrap();
}

/// The scope `user` gets in `tenant` with `role`, through an authenticated key.
async fn member(ctx: &Ctx, tenant: &str, user: &str, role: Role) -> TenantScope {
    let directory = &ctx.app.directory;
    let id = UserId::parse(user).unwrap();
    directory.create_user(&ctx.admin, id.clone(), user).await.unwrap();
    directory.put_member(&ctx.admin.act_in(tid(tenant)), &id, role).await.unwrap();
    let token = directory.create_key(&ctx.admin, tenantry_app::KeyOwner::User(id), "k", None).await.unwrap().token;
    directory.authenticate(&token).await.unwrap().tenant(&tid(tenant)).unwrap()
}

/// A USD price per vector query from `from` on, billed by `vector-db`.
fn vector_query_price(unit_price: &str, from: time::Date) -> Price {
    Price::new(
        Meter::VectorQueries,
        None,
        label("vector-db"),
        Currency::parse("USD").unwrap(),
        unit_price.parse().unwrap(),
        from,
    )
    .unwrap()
}

fn event(tenant: &str, meter: Meter, quantity: u64, at: time::OffsetDateTime, key: &str) -> UsageEvent {
    let model = meter.per_model().then(|| label("m1"));
    UsageEvent::new(tid(tenant), meter, quantity, model, at, key).unwrap()
}

pub async fn usage_counts_each_key_once_under_concurrent_writers(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    // 2,000 events over three days and two tenants; every fifth is sent again by another writer
    let meters = [Meter::ApiCalls, Meter::VectorQueries, Meter::EmbeddingTokens, Meter::ComputeMicros];
    let mut events = Vec::new();
    for i in 0..2_000u64 {
        let t = if i % 3 == 0 { "ledger-b" } else { "ledger-a" };
        let at = datetime!(2026-03-01 23:59:59 UTC) + time::Duration::seconds((i % 3) as i64 * 86_400 / 2);
        events.push(event(t, meters[(i % 4) as usize], i % 97 + 1, at, &format!("op-{i}")));
    }
    let mut sends: Vec<Vec<UsageEvent>> = events.chunks(25).map(<[UsageEvent]>::to_vec).collect();
    let retries: Vec<UsageEvent> = events.iter().step_by(5).cloned().collect();
    sends.extend(retries.chunks(7).map(<[UsageEvent]>::to_vec));
    let mut writers = tokio::task::JoinSet::new();
    for (n, batch) in sends.into_iter().enumerate() {
        let metering = ctx.app.metering.clone();
        writers.spawn(async move {
            if n % 2 == 0 {
                tokio::task::yield_now().await;
            }
            metering.record(batch).await
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap().expect("recorded");
    }
    let expected: BTreeMap<RollupKey, u64> = roll_up(&events);
    let stored: BTreeMap<RollupKey, u64> = store
        .usage_rollups(&ctx.admin, date!(2026 - 03 - 01), date!(2026 - 04 - 01))
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, expected, "rollups equal the events counted once each");
    let a_events = events.iter().filter(|e| e.tenant.as_str() == "ledger-a").count() as u64;
    assert_eq!(store.tenant_usage_events(&ctx.admin.act_in(tid("ledger-a"))).await.unwrap(), a_events);
    // a whole replay adds nothing
    assert_eq!(store.record_usage(&ctx.admin, &events).await.unwrap(), 0);
    let again: BTreeMap<RollupKey, u64> = store
        .usage_rollups(&ctx.admin, date!(2026 - 03 - 01), date!(2026 - 04 - 01))
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(again, expected);
}

/// Three tenants: a and b share an index, c (platinum) has its own. The expected amounts are
/// worked out by hand in the comments.
async fn priced_world(store: Arc<dyn Store>) -> Ctx {
    let ctx = Ctx::new(store.clone()).await;
    tenant(&ctx, "ledger-a", "silver").await;
    tenant(&ctx, "ledger-b", "silver").await;
    tenant(&ctx, "ledger-c", "platinum").await;
    let costs = &ctx.app.costs;
    costs.load_preset(&ctx.admin, "seed-002-usd", date!(2026 - 01 - 01)).await.unwrap();
    costs.load_preset(&ctx.admin, "seed-004-inr", date!(2026 - 01 - 01)).await.unwrap();
    // vector queries cost double from the 16th
    let dearer = vector_query_price("0.00002", date!(2026 - 03 - 16));
    costs.set_price(&ctx.admin, dearer).await.unwrap();
    let fixed = |name: &str, amount: &str, allocation: Allocation, per_index: bool| FixedCost {
        name: label(name),
        provider: label("cloud"),
        amount: usd(amount),
        per_index,
        allocation,
        from: Month::parse("2026-01").unwrap(),
        until: None,
    };
    costs.put_fixed_cost(&ctx.admin, fixed("postgres", "30", Allocation::Proportional, false)).await.unwrap();
    costs.put_fixed_cost(&ctx.admin, fixed("lb", "35", Allocation::Even, false)).await.unwrap();
    costs
        .put_fixed_cost(&ctx.admin, fixed("index", "50", Allocation::ByMeter(Meter::VectorQueries), true))
        .await
        .unwrap();
    let events = [
        event("ledger-a", Meter::VectorQueries, 1_000_000, datetime!(2026-03-10 12:00 UTC), "a1"), // $10.00
        event("ledger-a", Meter::VectorQueries, 2_000_000, datetime!(2026-03-20 12:00 UTC), "a2"), // $40.00
        event("ledger-a", Meter::EmbeddingTokens, 3_333_333, datetime!(2026-03-05 08:00 UTC), "a3"), // $0.3333333 → $0.33
        event("ledger-b", Meter::VectorQueries, 500_000, datetime!(2026-03-31 23:59:59 UTC), "b1"),  // $10.00
        event("ledger-b", Meter::VectorQueries, 7, datetime!(2026-04-01 00:00 UTC), "b2"),           // April
        event("ledger-b", Meter::ApiCalls, 10, datetime!(2026-03-02 00:00 UTC), "b3"), // INR only: unpriced in USD
    ];
    store.record_usage(&ctx.admin, &events).await.unwrap();
    ctx
}

pub async fn a_month_is_priced_exactly_to_the_minor_unit(store: Arc<dyn Store>) {
    let ctx = priced_world(store.clone()).await;
    let patch = TenantPatch { monthly_budget: Some(Some(usd("100"))), ..Default::default() };
    ctx.registry.update_tenant(&ctx.admin.act_in(tid("ledger-a")), patch, None).await.unwrap();
    let march = Month::parse("2026-03").unwrap();
    let report = ctx.app.costs.report(&ctx.admin, march, None).await.unwrap();
    assert_eq!(report.currency, "USD", "the usual currency: the latest effective price is in USD");
    let of = |t: &str| report.tenants.iter().find(|c| c.tenant.as_str() == t).unwrap();
    let fixed = |t: &str, name: &str| of(t).fixed.iter().find(|s| s.name == name).map_or(0, |s| s.amount_minor);
    // variable: a 5,000 + 33; b 1,000; c nothing
    assert_eq!(
        (of("ledger-a").variable_minor, of("ledger-b").variable_minor, of("ledger-c").variable_minor),
        (5_033, 1_000, 0)
    );
    // postgres $30 by variable cost 5,033 : 1,000 : 0 → 2,502.7 / 497.3 / 0 → 2,503 / 497 / 0
    assert_eq!(
        (fixed("ledger-a", "postgres"), fixed("ledger-b", "postgres"), fixed("ledger-c", "postgres")),
        (2_503, 497, 0)
    );
    // lb $35 evenly → 1,167 / 1,167 / 1,166
    assert_eq!((fixed("ledger-a", "lb"), fixed("ledger-b", "lb"), fixed("ledger-c", "lb")), (1_167, 1_167, 1_166));
    // index $50 each: the shared one by March vector queries 3,000,000 : 500,000 → 4,285.7 / 714.3
    // → 4,286 / 714; c's dedicated one all to c; idle indexes are charged but unallocated
    assert_eq!(
        (fixed("ledger-a", "index"), fixed("ledger-b", "index"), fixed("ledger-c", "index")),
        (4_286, 714, 5_000)
    );
    let pool = store.index_pool(&ctx.admin).await.unwrap().len() as i64;
    let index = report.fixed.iter().find(|f| f.name == "index").unwrap();
    assert_eq!((index.amount_minor, index.unallocated_minor), (5_000 * pool, 5_000 * (pool - 2)));
    assert_eq!(of("ledger-a").total_minor, 5_033 + 2_503 + 1_167 + 4_286);
    assert_eq!(of("ledger-b").total_minor, 1_000 + 497 + 1_167 + 714);
    assert_eq!(of("ledger-c").total_minor, 1_166 + 5_000);
    // a's budget $100: $129.89 spent, 29.9% over
    assert_eq!(of("ledger-a").budget_mark, Some("⚠"));
    assert_eq!(of("ledger-a").budget_variance_percent.map(|p| p.to_string()).as_deref(), Some("29.9"));
    assert_eq!(report.unpriced.len(), 1, "b's API calls have an INR price only: {:?}", report.unpriced);
    // in INR, only the API calls are priced: 10 × ₹0.50
    let inr = ctx.app.costs.report(&ctx.admin, march, Some(Currency::parse("INR").unwrap())).await.unwrap();
    assert_eq!(inr.tenants.iter().map(|c| c.variable_minor).sum::<i64>(), 500);
    // April holds b's 7 queries at the later price: $0.00014 → $0.00
    let april = ctx.app.costs.report(&ctx.admin, Month::parse("2026-04").unwrap(), None).await.unwrap();
    assert_eq!(april.tenants.iter().find(|c| c.tenant.as_str() == "ledger-b").unwrap().lines[0].quantity, 7);
}

pub async fn a_tenant_reads_only_its_own_usage_and_costs(store: Arc<dyn Store>) {
    let ctx = priced_world(store.clone()).await;
    let march = Month::parse("2026-03").unwrap();
    let b_rows =
        store.tenant_usage_rollups(&ctx.admin.act_in(tid("ledger-b")), march.first_day(), march.end()).await.unwrap();
    assert!(!b_rows.is_empty() && b_rows.iter().all(|(k, _)| k.tenant.as_str() == "ledger-b"), "{b_rows:?}");
    let reviewer = member(&ctx, "ledger-b", "rev-b", Role::Reviewer).await;
    let own = ctx.app.costs.tenant_report(&reviewer, march, None).await.unwrap();
    assert_eq!(own.cost.tenant.as_str(), "ledger-b");
    assert_eq!(own.cost.total_minor, 1_000 + 497 + 1_167 + 714);
    let body = serde_json::to_string(&own).unwrap();
    assert!(!body.contains("ledger-a") && !body.contains("ledger-c"), "another tenant leaked: {body}");
    let viewer = member(&ctx, "ledger-b", "view-b", Role::Viewer).await;
    let refused = ctx.app.costs.tenant_report(&viewer, march, None).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Forbidden);
    // on the store, b's scope reads b's rows only, whatever a caller asks for
    let admin_b = member(&ctx, "ledger-b", "adm-b", Role::Admin).await;
    let rows = store.tenant_usage_rollups(&admin_b, march.first_day(), march.end()).await.unwrap();
    assert!(rows.iter().all(|(k, _)| k.tenant.as_str() == "ledger-b"));
    assert_eq!(store.tenant_usage_events(&admin_b).await.unwrap(), 3);
}

pub async fn bills_reconcile_with_the_seed_thresholds_and_are_recorded(store: Arc<dyn Store>) {
    let ctx = priced_world(store.clone()).await;
    let march = Month::parse("2026-03").unwrap();
    let report = ctx.app.costs.report(&ctx.admin, march, None).await.unwrap();
    // bills off by a given percentage of the bill: expected / (1 + p)
    let bills = |off_percent: i64, provider_off: &str| -> Vec<Bill> {
        report
            .by_provider
            .iter()
            .map(|(p, expected)| {
                let billed = if p == provider_off { expected * 100 / (100 + off_percent) } else { *expected };
                Bill {
                    provider: label(p),
                    month: march,
                    amount: Money::new(billed, Currency::parse("USD").unwrap()).unwrap(),
                }
            })
            .collect()
    };
    for (percent, verdict) in [(3, "pass"), (7, "warn"), (12, "fail")] {
        ctx.app.costs.import_bills(&ctx.admin, bills(percent, "vector-db")).await.unwrap();
        let (id, result) = ctx.app.costs.reconcile(&ctx.admin, march, None).await.unwrap();
        assert_eq!(result.verdict, verdict, "{percent}%: {result:?}");
        let vector = result.providers.iter().find(|p| p.provider == "vector-db").unwrap();
        assert_eq!(vector.verdict, verdict);
        assert_eq!(vector.drivers[0].0, "vector_queries");
        let stored = ctx.app.costs.latest_reconciliation(&ctx.admin, Some(march)).await.unwrap().unwrap();
        assert_eq!((stored.id, stored.verdict.as_str()), (id, verdict));
    }
    // one provider's month billed twice in one import: refused whole, whichever shell sends it
    let twice = [bills(3, "vector-db"), bills(7, "vector-db")].concat();
    let refused = ctx.app.costs.import_bills(&ctx.admin, twice).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidInput, "{refused}");
    let none = ctx.app.costs.reconcile(&ctx.admin, Month::parse("2025-01").unwrap(), None).await.unwrap_err();
    assert_eq!(none.code(), ErrorCode::InvalidInput);
}

pub async fn budget_alerts_fire_once_per_threshold_and_month(store: Arc<dyn Store>) {
    let ctx = priced_world(store.clone()).await;
    // a spends $129.89 in March (the clock is in March 2026): at $150, 80% has passed, 100% not
    let patch = TenantPatch { monthly_budget: Some(Some(usd("150"))), ..Default::default() };
    ctx.registry.update_tenant(&ctx.admin.act_in(tid("ledger-a")), patch, None).await.unwrap();
    let fired = ctx.app.costs.check_budgets(&ctx.admin).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!((fired[0].tenant.as_str(), fired[0].threshold_percent), ("ledger-a", 80));
    assert!(ctx.app.costs.check_budgets(&ctx.admin).await.unwrap().is_empty(), "once per month");
    let patch = TenantPatch { monthly_budget: Some(Some(usd("100"))), ..Default::default() };
    ctx.registry.update_tenant(&ctx.admin.act_in(tid("ledger-a")), patch, None).await.unwrap();
    let fired = ctx.app.costs.check_budgets(&ctx.admin).await.unwrap();
    assert_eq!(fired.iter().map(|a| a.threshold_percent).collect::<Vec<_>>(), [100]);
}

pub async fn the_data_plane_meters_its_work(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    tenant(&ctx, "meter-co", "silver").await;
    let scope = ctx.admin.act_in(tid("meter-co"));
    let doc = tenantry_domain::NewDocument::new(
        "Plan",
        "revenue plan for the year".to_owned(),
        &serde_json::Value::Null,
        None,
    )
    .unwrap();
    // an ingest in a request records its usage, API call included, with its documents
    let (stored, ingest) = tenantry_app::metering::collect(ctx.app.data.ingest(&scope, vec![doc])).await;
    let stored = stored.unwrap();
    assert!(ingest.call_billed && ingest.events.is_empty(), "{ingest:?}");
    let spec =
        tenantry_domain::QuerySpec::new(Some("revenue".into()), None, Some(3), &serde_json::Value::Null, crate::DIMS)
            .unwrap();
    // inside `collect` (as the HTTP shell runs a request) nothing is written until it records
    let (answer, gathered) = tenantry_app::metering::collect(ctx.app.data.query(&scope, spec)).await;
    answer.unwrap();
    assert!(!gathered.call_billed, "the shell bills a query's API call");
    let gathered = gathered.events;
    assert!(gathered.iter().any(|e| e.meter == Meter::VectorQueries && e.quantity == 1), "{gathered:?}");
    let day = ctx.app.clock.now().date();
    let before: BTreeMap<RollupKey, u64> =
        store.tenant_usage_rollups(&scope, day, day.next_day().unwrap()).await.unwrap().into_iter().collect();
    assert!(before.keys().all(|k| k.meter != Meter::VectorQueries), "not recorded before the shell records it");
    ctx.app.metering.record(gathered).await.unwrap();
    let rows: BTreeMap<RollupKey, u64> =
        store.tenant_usage_rollups(&scope, day, day.next_day().unwrap()).await.unwrap().into_iter().collect();
    let qty = |m: Meter| rows.iter().filter(|(k, _)| k.meter == m).map(|(_, q)| *q).sum::<u64>();
    let ingest_tokens = stored[0].token_count as u64;
    assert!(ingest_tokens > 0);
    assert_eq!(qty(Meter::EmbeddingTokens), ingest_tokens + 1, "the document's tokens and the query's one word");
    assert_eq!(qty(Meter::VectorQueries), 1);
    assert_eq!(qty(Meter::ApiCalls), 1, "the ingest's; the query's is the shell's to add");
    assert!(qty(Meter::ComputeMicros) >= 2, "both operations took measurable time");
    let model = rows.keys().find(|k| k.meter == Meter::EmbeddingTokens).unwrap().model.clone().unwrap();
    assert_eq!(model.as_str(), "tenantry-local-hash-v1");
    assert!(preset("seed-002-usd", day).is_ok());
}

pub async fn storage_is_sampled_into_byte_seconds_once_per_interval(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    tenant(&ctx, "stored-co", "silver").await;
    tenant(&ctx, "empty-co", "silver").await;
    let scope = ctx.admin.act_in(tid("stored-co"));
    let doc =
        tenantry_domain::NewDocument::new("Plan", "a plan held in storage".to_owned(), &serde_json::Value::Null, None)
            .unwrap();
    let bytes = ctx.app.data.ingest(&scope, vec![doc]).await.unwrap()[0].bytes as u64;
    let costs = &ctx.app.costs;
    assert_eq!(costs.sample_storage(&ctx.admin, 3_600).await.unwrap(), 1, "one tenant holds bytes");
    ctx.clock.advance(time::Duration::minutes(5));
    assert_eq!(costs.sample_storage(&ctx.admin, 3_600).await.unwrap(), 0, "the same hour counts once");
    ctx.clock.advance(time::Duration::hours(1));
    assert_eq!(costs.sample_storage(&ctx.admin, 3_600).await.unwrap(), 1);
    let day = ctx.app.clock.now().date();
    let rows = store.tenant_usage_rollups(&scope, day.previous_day().unwrap(), day.next_day().unwrap()).await.unwrap();
    let held: u64 = rows.iter().filter(|(k, _)| k.meter == Meter::StorageByteSeconds).map(|(_, q)| *q).sum();
    assert_eq!(held, 2 * bytes * 3_600, "two hours of {bytes} bytes");
    let empty = ctx.admin.act_in(tid("empty-co"));
    assert_eq!(store.tenant_usage_events(&empty).await.unwrap(), 0);
}

fn query() -> tenantry_domain::QuerySpec {
    tenantry_domain::QuerySpec::new(Some("revenue".into()), None, Some(3), &serde_json::Value::Null, crate::DIMS)
        .unwrap()
}

/// `clients` concurrent clients, spread over the given services (replicas), each querying until
/// its tenant's budget refuses it; returns how many queries were answered in all.
pub async fn query_until_the_budget_is_spent(
    replicas: &[(tenantry_app::DataPlane, TenantScope)],
    clients: usize,
) -> u32 {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..clients {
        let (data, scope) = replicas[n % replicas.len()].clone();
        tasks.spawn(async move {
            let mut answered = 0u32;
            loop {
                match data.query(&scope, query()).await {
                    Ok(_) => answered += 1,
                    Err(e) if e.code() == ErrorCode::BudgetExceeded => return answered,
                    Err(e) => panic!("unexpected refusal: {e}"),
                }
            }
        });
    }
    let mut answered = 0;
    while let Some(n) = tasks.join_next().await {
        answered += n.unwrap();
    }
    answered
}

/// 64 clients query a tenant that blocks on a $1.00 budget, each query costing $0.01: exactly 100
/// are answered (reservations count the queries in flight), the rest refused with
/// `budget_exceeded`, and the ledger holds $1.00. A tenant that only alerts is not stopped.
pub async fn a_blocking_budget_holds_under_64_concurrent_clients(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    let penny = vector_query_price("0.01", date!(2026 - 01 - 01));
    ctx.app.costs.set_price(&ctx.admin, penny).await.unwrap();
    for (id, action) in
        [("capped-co", tenantry_domain::BudgetAction::Block), ("alerting-co", tenantry_domain::BudgetAction::Alert)]
    {
        let mut new = NewTenant::minimal(tid(id), id, tier("gold"));
        new.monthly_budget = Some(usd("1.00"));
        new.budget_action = action;
        new.limits.rate_limit_per_minute = Some(1_000_000);
        new.limits.max_queries_per_day = Some(1_000_000);
        ctx.registry.create_tenant(&ctx.admin, new).await.unwrap();
    }
    let scope = ctx.admin.act_in(tid("capped-co"));
    let answered = query_until_the_budget_is_spent(&[(ctx.app.data.clone(), scope)], 64).await;
    assert_eq!(answered, 100, "$1.00 at $0.01 a query");
    let march = Month::of(ctx.app.clock.now().date());
    let report = ctx.app.costs.report(&ctx.admin, march, None).await.unwrap();
    let capped = report.tenants.iter().find(|c| c.tenant.as_str() == "capped-co").unwrap();
    assert_eq!(capped.variable_minor, 100, "the ledger holds exactly the budget");
    let refused = ctx.app.data.query(&ctx.admin.act_in(tid("capped-co")), query()).await.unwrap_err();
    assert!(refused.to_string().contains("1.00 USD budget"), "{refused}");
    for _ in 0..120 {
        ctx.app.data.query(&ctx.admin.act_in(tid("alerting-co")), query()).await.expect("alert-only tenants go on");
    }
}

/// Raw events past their retention are removed; the rollups keep their counts.
pub async fn pruning_raw_events_keeps_the_rollups(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    let old = datetime!(2026-01-10 12:00 UTC);
    let recent = datetime!(2026-02-27 12:00 UTC);
    let events: Vec<UsageEvent> = (0..30)
        .map(|i| event("pruned-co", Meter::ApiCalls, 1, if i < 20 { old } else { recent }, &format!("k{i}")))
        .collect();
    store.record_usage(&ctx.admin, &events).await.unwrap();
    let totals = |rows: Vec<(RollupKey, u64)>| rows.iter().map(|(_, q)| *q).sum::<u64>();
    let before = totals(store.usage_rollups(&ctx.admin, date!(2026 - 01 - 01), date!(2026 - 03 - 01)).await.unwrap());
    assert_eq!(before, 30);
    // the clock is at 2026-03-01: 30 days keeps February's events
    assert_eq!(ctx.app.costs.prune_usage_events(&ctx.admin, 30).await.unwrap(), 20);
    assert_eq!(store.tenant_usage_events(&ctx.admin.act_in(tid("pruned-co"))).await.unwrap(), 10);
    let after = totals(store.usage_rollups(&ctx.admin, date!(2026 - 01 - 01), date!(2026 - 03 - 01)).await.unwrap());
    assert_eq!(after, 30, "rollups are not raw events");
    assert_eq!(store.record_usage(&ctx.admin, &events[20..]).await.unwrap(), 0, "kept keys still count once");
}

#[macro_export]
macro_rules! ledger_suite {
    ($make:expr) => {
        $crate::ledger_suite!(@cases $make;
            usage_counts_each_key_once_under_concurrent_writers,
            a_month_is_priced_exactly_to_the_minor_unit,
            a_tenant_reads_only_its_own_usage_and_costs,
            bills_reconcile_with_the_seed_thresholds_and_are_recorded,
            budget_alerts_fire_once_per_threshold_and_month,
            the_data_plane_meters_its_work,
            storage_is_sampled_into_byte_seconds_once_per_interval,
            a_blocking_budget_holds_under_64_concurrent_clients,
            pruning_raw_events_keeps_the_rollups,
            readiness_reports_the_four_checks,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make else { return };
                $crate::ledger::$case(store).await;
            }
        )*
    };
}

/// `tenantry readiness` on a live store: failing on an empty platform, passing or warning as the
/// platform gets three tenants with documents, a reconciled closed month and a filling index.
pub async fn readiness_reports_the_four_checks(store: Arc<dyn Store>) {
    let clock = Arc::new(crate::ManualClock::new()); // 2026-03-01: the closed month is February
    let capacity = tenantry_domain::CapacityPolicy::new(5, 0.8).unwrap(); // alert at 4 of 5
    let wiring = crate::Wiring { capacity, ..crate::Wiring::local() };
    let app = crate::build_app(store.clone(), clock.clone(), wiring).await;
    let admin = app.operator("readiness");
    let verdict_of = |checks: &[tenantry_domain::readiness::Check], name: &str| {
        checks.iter().find(|c| c.name == name).map(|c| (c.verdict, c.reason.clone())).unwrap()
    };
    use tenantry_domain::readiness::{Verdict, summary};

    let empty = app.readiness.run(&admin).await.unwrap();
    assert_eq!(empty.len(), 4);
    assert_eq!(verdict_of(&empty, "tenants_query").0, Verdict::Fail, "{empty:?}");
    assert_eq!(verdict_of(&empty, "cost_reconciliation").0, Verdict::Skipped);
    assert_eq!(summary(&empty), Verdict::Fail);

    for id in ["ready-a", "ready-b", "ready-c"] {
        app.registry.create_tenant(&admin, NewTenant::minimal(tid(id), id, tier("silver"))).await.unwrap();
        let doc = tenantry_domain::NewDocument::new(
            &format!("{id} handbook"),
            format!("the {id} handbook on travel and expenses"),
            &serde_json::Value::Null,
            None,
        )
        .unwrap();
        app.data.ingest(&admin.act_in(tid(id)), vec![doc]).await.unwrap();
    }
    // February: $10.00 of vector queries, billed 12% off, then 3% off
    let price = vector_query_price("0.01", date!(2026 - 01 - 01));
    app.costs.set_price(&admin, price).await.unwrap();
    let feb = [event("ready-a", Meter::VectorQueries, 1_000, datetime!(2026-02-10 12:00 UTC), "feb")];
    store.record_usage(&admin, &feb).await.unwrap();
    let february = Month::parse("2026-02").unwrap();
    let bill = |amount: &str| Bill {
        provider: label("vector-db"),
        month: february,
        amount: Money::parse_decimal(amount, Currency::parse("USD").unwrap()).unwrap(),
    };
    app.costs.import_bills(&admin, vec![bill("8.93")]).await.unwrap();
    let unreconciled = app.readiness.run(&admin).await.unwrap();
    assert_eq!(verdict_of(&unreconciled, "cost_reconciliation").0, Verdict::Warn, "bills but no reconciliation");
    app.costs.reconcile(&admin, february, None).await.unwrap();
    let checks = app.readiness.run(&admin).await.unwrap();
    let (reconciled, reason) = verdict_of(&checks, "cost_reconciliation");
    assert_eq!(reconciled, Verdict::Fail, "12% off: {reason}");
    assert!(reason.contains("2026-02"), "{reason}");
    let (query, reason) = verdict_of(&checks, "tenants_query");
    assert_eq!(query, Verdict::Pass, "{reason}");
    let (rls, reason) = verdict_of(&checks, "rls");
    match store.backend() {
        "postgres" => assert_eq!(rls, Verdict::Pass, "{reason}"),
        _ => assert_eq!(rls, Verdict::Warn, "application-level isolation only: {reason}"),
    }
    assert!(reason.contains("saw none of"), "the scoped cross-tenant probe ran: {reason}");
    assert_eq!(verdict_of(&checks, "capacity_monitoring").0, Verdict::Pass, "3 of 5 namespaces");

    app.costs.import_bills(&admin, vec![bill("9.71")]).await.unwrap();
    app.costs.reconcile(&admin, february, None).await.unwrap();
    // a fourth tenant on the shared index: 4 of 5, the alert point
    app.registry.create_tenant(&admin, NewTenant::minimal(tid("ready-d"), "d", tier("silver"))).await.unwrap();
    let checks = app.readiness.run(&admin).await.unwrap();
    assert_eq!(verdict_of(&checks, "cost_reconciliation").0, Verdict::Pass);
    let (capacity, reason) = verdict_of(&checks, "capacity_monitoring");
    assert_eq!(capacity, Verdict::Warn, "{reason}");
    assert!(reason.contains("4/5 warning"), "{reason}");
    assert_eq!(summary(&checks), Verdict::Warn, "the index at its alert point (and, on SQLite, no RLS)");
}
