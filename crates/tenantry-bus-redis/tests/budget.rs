//! Budget reservations shared through Redis: two replicas' holds on one namespace admit together
//! what one budget allows; a hold expires if never settled; a settle counts once; a fresher
//! ledger reading replaces an older one. End to end: two services over one store, 64 clients
//! split between them against a $1.00 budget at $0.01 a query — exactly 100 answered.

use std::sync::Arc;

use time::OffsetDateTime;

use tenantry_app::{App, AppConfig, BudgetHolds, HoldRequest, LocalEmbedder};
use tenantry_bus_redis::RedisBudgetHolds;
use tenantry_domain::{BudgetAction, Currency, Money, NewTenant, TenantId, TierName};

fn namespace() -> String {
    format!("test-budget-{}-{}:", std::process::id(), OffsetDateTime::now_utc().unix_timestamp_nanos())
}

async fn holds(ns: &str) -> Option<RedisBudgetHolds> {
    let url = tenantry_store_postgres::testing::required_env("REDIS_URL")?;
    Some(RedisBudgetHolds::connect_client(tenantry_bus_redis::client(&url, None).unwrap(), ns).await.unwrap())
}

fn request<'a>(tenant: &'a TenantId, hold: &'a str, amount: i64, now_ms: i64) -> HoldRequest<'a> {
    HoldRequest {
        tenant,
        month: "2026-11",
        hold,
        amount,
        limit: 100,
        recorded: None,
        now_ms,
        expires_ms: now_ms + 1_000,
    }
}

#[tokio::test]
async fn replicas_hold_one_budget_together() {
    let ns = namespace();
    let (Some(a), Some(b)) = (holds(&ns).await, holds(&ns).await) else { return };
    let t = TenantId::parse("spender").unwrap();
    // the ledger says 40 spent; 60 left to hold, across both replicas
    let mut first = request(&t, "h1", 30, 10_000);
    first.recorded = Some((40, 10_000));
    assert_eq!(a.reserve(first).await.unwrap(), Ok(()));
    assert_eq!(b.reserve(request(&t, "h2", 30, 10_000)).await.unwrap(), Ok(()));
    assert_eq!(a.reserve(request(&t, "h3", 1, 10_000)).await.unwrap(), Err(100), "40 + 30 + 30 held");
    // h1 settles for less: 10 is free again; settling twice counts once
    a.settle(&t, "2026-11", "h1", 20).await.unwrap();
    b.settle(&t, "2026-11", "h1", 20).await.unwrap();
    assert_eq!(b.reserve(request(&t, "h4", 10, 10_000)).await.unwrap(), Ok(()));
    assert_eq!(b.reserve(request(&t, "h5", 1, 10_000)).await.unwrap(), Err(100));
    // h2 and h4 are never settled (a crashed replica): they expire
    assert_eq!(a.reserve(request(&t, "h6", 40, 11_001)).await.unwrap(), Ok(()), "40 + 20 settled + 40");
    // a fresher ledger reading (which includes h1's settled 20) replaces the old one
    let mut fresh = request(&t, "h7", 1, 11_002);
    fresh.recorded = Some((90, 11_002));
    assert_eq!(a.reserve(fresh).await.unwrap(), Err(130), "90 recorded + 40 held");
    assert_eq!(a.read_at(&t, "2026-11").await.unwrap(), Some(11_002));
    // an older reading does not replace it
    let mut stale = request(&t, "h8", 1, 11_003);
    stale.recorded = Some((0, 5_000));
    assert_eq!(b.reserve(stale).await.unwrap(), Err(130));
    // another tenant's budget is its own
    let other = TenantId::parse("saver").unwrap();
    assert_eq!(b.reserve(request(&other, "h9", 100, 11_003)).await.unwrap(), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_on_two_replicas_cannot_pass_a_budget() {
    let ns = namespace();
    let (Some(a), Some(b)) = (holds(&ns).await, holds(&ns).await) else { return };
    let store: Arc<dyn tenantry_app::Store> =
        Arc::new(tenantry_store_sqlite::SqliteStore::open_temporary().await.unwrap());
    let clock = Arc::new(tenantry_contract::ManualClock::new());
    let replica = |holds: RedisBudgetHolds| {
        let (store, clock) = (store.clone(), clock.clone());
        async move {
            let blobs = Arc::new(tenantry_contract::MemoryBlobs::default());
            let local = AppConfig::local(store, clock, Arc::new(LocalEmbedder::new(tenantry_contract::DIMS)), blobs);
            App::build(AppConfig { budget_holds: Some(Arc::new(holds)), ..local }).await.unwrap()
        }
    };
    let (one, two) = (replica(a).await, replica(b).await);
    let admin = one.operator("test");
    let penny = tenantry_domain::pricing::Price::new(
        tenantry_domain::cost::Meter::VectorQueries,
        None,
        tenantry_domain::Label::parse("vector-db").unwrap(),
        Currency::parse("USD").unwrap(),
        "0.01".parse().unwrap(),
        time::macros::date!(2026 - 01 - 01),
    )
    .unwrap();
    one.costs.set_price(&admin, penny).await.unwrap();
    let id = TenantId::parse("capped").unwrap();
    let mut new = NewTenant::minimal(id.clone(), "Capped", TierName::parse("gold").unwrap());
    new.monthly_budget = Some(Money::parse_decimal("1.00", Currency::parse("USD").unwrap()).unwrap());
    new.budget_action = BudgetAction::Block;
    new.limits.rate_limit_per_minute = Some(1_000_000);
    new.limits.max_queries_per_day = Some(1_000_000);
    one.registry.create_tenant(&admin, new).await.unwrap();

    let replicas = [
        (one.data.clone(), one.operator("client").act_in(id.clone())),
        (two.data.clone(), two.operator("client").act_in(id.clone())),
    ];
    let answered = tenantry_contract::ledger::query_until_the_budget_is_spent(&replicas, 64).await;
    assert_eq!(answered, 100, "$1.00 at $0.01 a query, across both replicas");
}
