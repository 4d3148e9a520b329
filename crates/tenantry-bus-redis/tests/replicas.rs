//! Two replicas sharing PostgreSQL and Redis: each has its own snapshot cache and its own Redis
//! subscription; a write through one reaches the other; missed messages and lost connections
//! make a replica drop its snapshots. Real Redis, real PostgreSQL (as the app role).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tenantry_app::ports::Store;
use tenantry_app::{AppError, CacheConfig, ConfigCache, Registry};
use tenantry_bus_redis::RedisBus;
use tenantry_contract::{Ctx, create, key, tid};
use tenantry_domain::{Evaluation, FlagScope, FlagValue, TenantStatus};

static N: AtomicU32 = AtomicU32::new(0);

fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("REDIS_URL must be set in CI"),
        _ => {
            eprintln!("skipping: REDIS_URL is not set (run scripts/test.sh)");
            None
        }
    }
}

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
    let cache = ConfigCache::new(store.clone(), bus.clone(), CacheConfig::default());
    bus.spawn_subscriber(cache.clone()).await.expect("subscribe");
    let registry = Registry::new(store.clone(), ctx.clock.clone()).with_cache(cache.clone());
    Replica { registry, cache, bus }
}

async fn beta(r: &Replica, ctx: &Ctx) -> Result<Option<bool>, AppError> {
    let result = r.registry.evaluate_for_runtime(&ctx.admin.act_in(tid("finance")), Some(&key("beta"))).await?;
    Ok(match &result.evaluations[0].1 {
        Evaluation::Resolved { value, .. } => value.as_bool(),
        Evaluation::Unknown => None,
    })
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

async fn setup() -> Option<(Arc<dyn Store>, Ctx, String)> {
    let url = redis_url()?;
    let store: Arc<dyn Store> = Arc::new(tenantry_store_postgres::testing::fresh_store().await?);
    let ctx = Ctx::new(store.clone());
    create(&ctx, "finance", "gold").await;
    ctx.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    Some((store, ctx, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_reaches_the_other() {
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
    let Some((store, ctx, url)) = setup().await else { return };
    let ns = namespace();
    let a = replica(&store, &ctx, &url, &ns).await;
    let b = replica(&store, &ctx, &url, &ns).await;
    create(&ctx, "legal", "gold").await;
    // one message so B knows the current sequence number
    a.registry.set_flag(&ctx.admin, FlagScope::Global, key("other"), FlagValue::Bool(true)).await.unwrap();
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
