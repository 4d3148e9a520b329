//! Two replicas sharing PostgreSQL and Redis: each has its own snapshot cache and its own Redis
//! subscription; a write through one reaches the other; missed messages and lost connections
//! make a replica drop its snapshots. Real Redis, real PostgreSQL (as the app role).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tenantry_app::ErrorCode;
use tenantry_app::ports::Store;
use tenantry_app::{AppError, ConfigCache, InvalidationBus, InvalidationTarget, Registry, SharedCache};
use tenantry_bus_redis::RedisBus;
use tenantry_contract::cache::eventually;
use tenantry_contract::{Ctx, create, key, tid};
use tenantry_domain::{Evaluation, FlagScope, FlagValue, TenantStatus};
use tenantry_store_postgres::testing::required_env;
use tenantry_store_postgres::{PgConfig, PgStore};

static N: AtomicU32 = AtomicU32::new(0);

/// `CLIENT KILL TYPE pubsub` hits every subscriber in this Redis, so the test that does it runs
/// alone (write) while the others share (read); test binaries themselves run one at a time.
static GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn namespace() -> String {
    format!("test-{}-{}:", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

struct Replica {
    registry: Registry,
    cache: ConfigCache,
    bus: Arc<RedisBus>,
}

async fn replica(store: &Arc<dyn Store>, ctx: &Ctx, url: &str, ns: &str) -> Replica {
    let bus = Arc::new(RedisBus::connect(url, ns).await.expect("connect to Redis"));
    let wiring = tenantry_contract::Wiring {
        bus: bus.clone(),
        shared_cache: Some(bus.clone()),
        ..tenantry_contract::Wiring::local()
    };
    let app = tenantry_contract::build_app(store.clone(), ctx.clock.clone(), wiring).await;
    Replica { registry: app.registry, cache: app.cache, bus }
}

async fn beta(r: &Replica, ctx: &Ctx) -> Result<Option<bool>, AppError> {
    let result = r.registry.evaluate_for_runtime(&ctx.admin.act_in(tid("finance")), Some(&key("beta"))).await?;
    Ok(match &result.evaluations[0].1 {
        Evaluation::Resolved { value, .. } => value.as_bool(),
        Evaluation::Unknown | Evaluation::Disabled { .. } => None,
    })
}

async fn setup() -> Option<(Arc<dyn Store>, Ctx, String)> {
    let (store, ctx, url, _) = setup_with_config().await?;
    Some((store, ctx, url))
}

async fn setup_with_config() -> Option<(Arc<dyn Store>, Ctx, String, PgConfig)> {
    let url = required_env("REDIS_URL")?;
    let mut config = tenantry_store_postgres::testing::fresh_config().await?;
    config.migrate = false;
    config.pool_size = 4;
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(&config).await.expect("connect as the app role"));
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "finance", "gold").await;
    ctx.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    Some((store, ctx, url, config))
}

/// A replica whose database is unreachable (its pool closed): whatever it answers comes from
/// the shared cache in Redis.
async fn replica_without_database(ctx: &Ctx, config: &PgConfig, url: &str, ns: &str) -> Replica {
    let store = PgStore::connect(config).await.expect("connect as the app role");
    store.pool().close().await;
    let store: Arc<dyn Store> = Arc::new(store);
    replica(&store, ctx, url, ns).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_replica_reads_the_shared_cache_and_a_write_removes_the_entry() {
    let _gate = GATE.read().await;
    let Some((store, ctx, url, config)) = setup_with_config().await else { return };
    let ns = namespace();
    let a = replica(&store, &ctx, &url, &ns).await;
    assert_eq!(beta(&a, &ctx).await.unwrap(), Some(false), "A loads from PostgreSQL and fills Redis");
    let cold = replica_without_database(&ctx, &config, &url, &ns).await;
    let served =
        cold.registry.evaluate_for_runtime(&ctx.admin.act_in(tid("finance")), Some(&key("beta"))).await.unwrap();
    assert!(!served.stale, "a fresh shared entry is not stale");
    assert_eq!(beta(&cold, &ctx).await.unwrap(), Some(false));

    // another tenant is not in Redis: the cold replica cannot answer for it from finance's entry
    create(&ctx, "legal", "gold").await;
    let legal = cold.registry.evaluate_for_runtime(&ctx.admin.act_in(tid("legal")), None).await.unwrap_err();
    assert_eq!(legal.code(), ErrorCode::StoreUnavailable, "{legal}");

    // a write through A removes finance's shared entry: a new replica without a database has
    // nothing to serve, rather than the old state
    a.registry
        .transition(&ctx.admin.act_in(tid("finance")), TenantStatus::Suspended, "audit", None, None)
        .await
        .unwrap();
    let late = replica_without_database(&ctx, &config, &url, &ns).await;
    let refused = late.registry.evaluate_for_runtime(&ctx.admin.act_in(tid("finance")), None).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::StoreUnavailable, "{refused}");
    // and once A reloads, the shared entry says suspended
    assert!(matches!(beta(&a, &ctx).await, Err(AppError::TenantInactive { .. })));
    let later = replica_without_database(&ctx, &config, &url, &ns).await;
    assert!(matches!(beta(&later, &ctx).await, Err(AppError::TenantInactive { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_that_raced_a_write_is_refused_and_all_drops_every_entry() {
    let _gate = GATE.read().await;
    let Some(url) = required_env("REDIS_URL") else { return };
    let ns = namespace();
    let bus = RedisBus::connect(&url, &ns).await.expect("connect to Redis");
    let (finance, legal) = (tid("finance"), tid("legal"));
    let read = SharedCache::get(&bus, &finance).await.unwrap();
    assert_eq!(read.value, None);
    // a load started at `read.seq`; meanwhile a write to legal committed and was published
    bus.publish(InvalidationTarget::Tenant(legal.clone())).await.unwrap();
    assert!(!bus.put(&finance, b"old", read.seq, Duration::from_secs(60)).await.unwrap(), "refused");
    assert_eq!(SharedCache::get(&bus, &finance).await.unwrap().value, None);
    // a fill with the current sequence number is stored, and read back
    let now = SharedCache::get(&bus, &finance).await.unwrap();
    assert!(bus.put(&finance, b"v1", now.seq, Duration::from_secs(60)).await.unwrap());
    assert!(bus.put(&legal, b"l1", now.seq, Duration::from_secs(60)).await.unwrap());
    assert_eq!(SharedCache::get(&bus, &finance).await.unwrap().value.as_deref(), Some(&b"v1"[..]));
    // invalidating legal leaves finance's entry
    bus.publish(InvalidationTarget::Tenant(legal.clone())).await.unwrap();
    assert_eq!(SharedCache::get(&bus, &legal).await.unwrap().value, None);
    assert!(SharedCache::get(&bus, &finance).await.unwrap().value.is_some());
    // All makes every entry unreachable
    bus.publish(InvalidationTarget::All).await.unwrap();
    assert_eq!(SharedCache::get(&bus, &finance).await.unwrap().value, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_entry_under_a_tenants_key_is_ignored() {
    let _gate = GATE.read().await;
    let Some((store, ctx, url)) = setup().await else { return };
    let ns = namespace();
    create(&ctx, "legal", "gold").await;
    ctx.registry
        .set_flag(&ctx.admin, FlagScope::Tenant(tid("legal")), key("beta"), FlagValue::Bool(true))
        .await
        .unwrap();
    let a = replica(&store, &ctx, &url, &ns).await;
    a.registry.evaluate_for_runtime(&ctx.admin.act_in(tid("legal")), None).await.unwrap();
    // someone copies legal's entry over finance's key
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = format!("{ns}{}", tenantry_bus_redis::SNAPSHOT_PREFIX);
    let legal_entry: Vec<u8> = redis::cmd("GET").arg(format!("{prefix}0:legal")).query_async(&mut conn).await.unwrap();
    let _: () =
        redis::cmd("SET").arg(format!("{prefix}0:finance")).arg(legal_entry).query_async(&mut conn).await.unwrap();
    let b = replica(&store, &ctx, &url, &ns).await;
    assert_eq!(beta(&b, &ctx).await.unwrap(), Some(false), "finance's own flags, from PostgreSQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_reaches_the_other() {
    let _gate = GATE.read().await;
    let Some((store, ctx, url)) = setup().await else { return };
    let ns = namespace();
    let a = replica(&store, &ctx, &url, &ns).await;
    let b = replica(&store, &ctx, &url, &ns).await;
    assert_eq!(beta(&b, &ctx).await.unwrap(), Some(false));
    assert_eq!(b.cache.len(), 1, "B answers from its snapshot");

    a.registry
        .set_flag(&ctx.admin, FlagScope::Tier(ctx_tier("gold")), key("beta"), FlagValue::Bool(true))
        .await
        .unwrap();
    eventually("B sees the flag change", || async { beta(&b, &ctx).await.unwrap() == Some(true) }).await;

    a.registry
        .transition(&ctx.admin.act_in(tid("finance")), TenantStatus::Suspended, "audit", None, None)
        .await
        .unwrap();
    eventually("B refuses the suspended tenant", || async {
        matches!(beta(&b, &ctx).await, Err(AppError::TenantInactive { .. }))
    })
    .await;
}

fn ctx_tier(name: &str) -> tenantry_domain::TierName {
    tenantry_domain::TierName::parse(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_message_makes_a_replica_drop_its_snapshots() {
    let _gate = GATE.read().await;
    let Some((store, ctx, url)) = setup().await else { return };
    let ns = namespace();
    let a = replica(&store, &ctx, &url, &ns).await;
    let b = replica(&store, &ctx, &url, &ns).await;
    create(&ctx, "legal", "gold").await;
    // one message so B knows the current sequence number
    a.registry.set_flag(&ctx.admin, FlagScope::Global, key("other"), FlagValue::Bool(true)).await.unwrap();
    eventually("B applied message 1", || async { b.cache.last_seq() == Some(1) }).await;
    beta(&b, &ctx).await.unwrap();
    b.registry.evaluate_for_runtime(&ctx.admin.act_in(tid("legal")), None).await.unwrap();
    eventually("B warmed both tenants", || async { b.cache.len() == 2 }).await;
    // messages 2..6 are lost (numbers taken, nothing published), then A invalidates only legal:
    // B sees a jump from 1 to 7 and drops finance too
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: u64 = redis::cmd("INCRBY")
        .arg(format!("{ns}{}", tenantry_bus_redis::SEQUENCE_KEY))
        .arg(5)
        .query_async(&mut conn)
        .await
        .unwrap();
    a.registry
        .update_tenant(
            &ctx.admin.act_in(tid("legal")),
            tenantry_domain::TenantPatch { name: Some("Legal Dept".into()), ..Default::default() },
            None,
        )
        .await
        .unwrap();
    eventually("B dropped every snapshot", || async { b.cache.is_empty() }).await;
    drop(a.bus);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_resyncs_and_delivery_resumes() {
    let _gate = GATE.write().await;
    let Some((store, ctx, url)) = setup().await else { return };
    let ns = namespace();
    let a = replica(&store, &ctx, &url, &ns).await;
    let b = replica(&store, &ctx, &url, &ns).await;
    beta(&b, &ctx).await.unwrap();
    assert_eq!(b.cache.len(), 1);
    // kill every pub/sub connection, as a Redis restart or a network blip would
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut conn).await.unwrap();
    eventually("B resynced (dropped its snapshots)", || async { b.cache.is_empty() }).await;
    beta(&b, &ctx).await.unwrap();
    // after reconnecting, messages flow again
    a.registry
        .set_flag(&ctx.admin, FlagScope::Tenant(tid("finance")), key("beta"), FlagValue::Bool(true))
        .await
        .unwrap();
    eventually("B sees a change made after the reconnection", || async { beta(&b, &ctx).await.unwrap() == Some(true) })
        .await;
}
