//! The runtime snapshot cache against a real store: replicas (caches on one bus) see each other's
//! writes, a gap in the message sequence drops everything, and the cache really answers from
//! memory.

use std::sync::Arc;
use std::time::Duration;

use tenantry_app::ErrorCode;
use tenantry_app::ports::Store;
use tenantry_app::{AppError, CacheConfig, ConfigCache, Invalidation, InvalidationTarget, LocalBus, Registry};
use tenantry_domain::{FlagScope, FlagValue, TenantStatus};

use crate::{Ctx, ManualClock, Wiring, build_app, create, key, tid};

/// A replica: its own services (`App::build`) on the shared store and the shared bus.
pub async fn replica(store: &Arc<dyn Store>, bus: &Arc<LocalBus>, clock: &Arc<ManualClock>) -> (Registry, ConfigCache) {
    replica_with(store, bus, clock, CacheConfig::default()).await
}

pub async fn replica_with(
    store: &Arc<dyn Store>,
    bus: &Arc<LocalBus>,
    clock: &Arc<ManualClock>,
    config: CacheConfig,
) -> (Registry, ConfigCache) {
    let wiring = Wiring { bus: bus.clone(), cache: config, ..Wiring::local() };
    let app = build_app(store.clone(), clock.clone(), wiring).await;
    (app.registry, app.cache)
}

async fn flag_on(r: &Registry, ctx: &Ctx, tenant: &str) -> Result<Option<bool>, AppError> {
    let result = r.evaluate_for_runtime(&ctx.admin.act_in(tid(tenant)), Some(&key("beta"))).await?;
    Ok(match &result.evaluations[0].1 {
        tenantry_domain::Evaluation::Resolved { value, .. } => value.as_bool(),
        tenantry_domain::Evaluation::Unknown | tenantry_domain::Evaluation::Disabled { .. } => None,
    })
}

/// Polls `check` until it holds (message delivery is asynchronous); panics after 5 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
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

pub async fn replicas_see_each_others_writes(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "finance", "gold").await;
    ctx.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    let bus = Arc::new(LocalBus::new());
    let (a, _) = replica(&store, &bus, &ctx.clock).await;
    let (b, b_cache) = replica(&store, &bus, &ctx.clock).await;
    // a replica outside the bus shows that answers really come from memory
    let (deaf, _) = replica(&store, &Arc::new(LocalBus::new()), &ctx.clock).await;
    assert_eq!(flag_on(&b, &ctx, "finance").await.unwrap(), Some(false));
    assert_eq!(flag_on(&deaf, &ctx, "finance").await.unwrap(), Some(false));
    assert_eq!(b_cache.len(), 1);

    // a flag change through A reaches B
    a.set_flag(&ctx.admin, FlagScope::Tenant(tid("finance")), key("beta"), FlagValue::Bool(true)).await.unwrap();
    eventually("B sees the flag change", || async { flag_on(&b, &ctx, "finance").await.unwrap() == Some(true) }).await;
    // a suspension through A: B refuses the tenant
    a.transition(&ctx.admin.act_in(tid("finance")), TenantStatus::Suspended, "audit", None, None).await.unwrap();
    eventually("B refuses the suspended tenant", || async {
        matches!(flag_on(&b, &ctx, "finance").await, Err(AppError::TenantInactive { .. }))
    })
    .await;
    // the replica that heard nothing still answers from its snapshot (until its TTL)
    assert_eq!(flag_on(&deaf, &ctx, "finance").await.unwrap(), Some(false));
}

pub async fn a_gap_in_the_sequence_drops_every_snapshot(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "alpha", "gold").await;
    create(&ctx, "beta", "gold").await;
    let (registry, cache) = replica(&store, &Arc::new(LocalBus::new()), &ctx.clock).await;
    for t in ["alpha", "beta"] {
        registry.evaluate_for_runtime(&ctx.admin.act_in(tid(t)), None).await.unwrap();
    }
    assert_eq!(cache.len(), 2);
    cache.apply(&Invalidation { seq: 1, target: InvalidationTarget::Tenant(tid("alpha")) });
    assert_eq!(cache.len(), 1, "only alpha dropped");
    cache.apply(&Invalidation { seq: 3, target: InvalidationTarget::Tenant(tid("alpha")) });
    assert_eq!(cache.len(), 0, "message 2 was missed: everything dropped");
    registry.evaluate_for_runtime(&ctx.admin.act_in(tid("beta")), None).await.unwrap();
    // a late message only removes; it never installs anything
    cache.apply(&Invalidation { seq: 2, target: InvalidationTarget::Tenant(tid("alpha")) });
    assert_eq!(cache.len(), 1);
}

/// Stale-if-error: with the store down (`take_down` closes its pool), reads keep serving the last
/// snapshot, marked stale, within the window; writes fail fast with `store_unavailable`.
pub async fn serves_the_last_snapshot_when_the_store_is_down<F>(store: Arc<dyn Store>, take_down: F)
where
    F: std::future::Future<Output = ()>,
{
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "finance", "gold").await;
    ctx.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(true)).await.unwrap();
    let bus = Arc::new(LocalBus::new());
    // a TTL of zero: every read tries the store first, so the fallback is what answers below
    let fresh_only = CacheConfig::uniform(Duration::ZERO, Duration::ZERO);
    let window = CacheConfig::uniform(Duration::ZERO, Duration::from_secs(1800));
    let (within, _) = replica_with(&store, &bus, &ctx.clock, window).await;
    let (outside, _) = replica_with(&store, &bus, &ctx.clock, fresh_only).await;
    let scope = ctx.admin.act_in(tid("finance"));
    for r in [&within, &outside] {
        assert!(!r.evaluate_for_runtime(&scope, Some(&key("beta"))).await.unwrap().stale);
    }
    take_down.await;
    let served = within.evaluate_for_runtime(&scope, Some(&key("beta"))).await.unwrap();
    assert!(served.stale, "marked stale");
    assert!(matches!(&served.evaluations[0].1, tenantry_domain::Evaluation::Resolved { .. }));
    let refused = outside.evaluate_for_runtime(&scope, Some(&key("beta"))).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::StoreUnavailable, "past the window: {refused}");
    let write = within.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap_err();
    assert_eq!(write.code(), ErrorCode::StoreUnavailable, "writes fail fast: {write}");
}

/// Reads racing writes: a load that started before a write must not install what it read after
/// the write's invalidation went past. Readers hammer replica B while A toggles a flag, and B
/// must converge after every write. (A stress test: it catches a missing guard often, not
/// always — the race needs a write to land inside a load.)
pub async fn loads_racing_writes_never_install_old_data(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "finance", "gold").await;
    ctx.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    let bus = Arc::new(LocalBus::new());
    let (a, _) = replica(&store, &bus, &ctx.clock).await;
    // B re-reads the tenant record on every request (critical TTL zero), so loads are always in
    // flight when A writes; the flags it reads keep the standard TTL, so a stale install sticks
    let racy = CacheConfig { critical_ttl: Duration::ZERO, ..CacheConfig::default() };
    let (b, _) = replica_with(&store, &bus, &ctx.clock, racy).await;
    let b = Arc::new(b);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (b, stop, admin) = (b.clone(), stop.clone(), ctx.admin.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                b.evaluate_for_runtime(&admin.act_in(tid("finance")), Some(&key("beta"))).await.unwrap();
                // a hit never awaits anything that suspends: let the writer and the bus run
                tokio::task::yield_now().await;
            }
        }));
    }
    // after every write B must converge while the readers keep loading: an old snapshot
    // installed after the write's invalidation would stick until the TTL (60 s)
    let mut value = false;
    for _ in 0..100 {
        value = !value;
        a.set_flag(&ctx.admin, FlagScope::Tenant(tid("finance")), key("beta"), FlagValue::Bool(value)).await.unwrap();
        eventually("B converges on the write", || async { flag_on(&b, &ctx, "finance").await.unwrap() == Some(value) })
            .await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
}

/// The shared-cache form of a snapshot round-trips exactly (record and every flag decision),
/// and is refused for another tenant or when it breaks an invariant.
pub async fn the_shared_form_round_trips_and_refuses_what_it_must(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "finance", "gold").await;
    create(&ctx, "legal", "gold").await;
    let admin = &ctx.admin;
    ctx.registry.set_flag(admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    ctx.registry
        .set_flag(admin, FlagScope::Tenant(tid("finance")), key("model"), FlagValue::String("gpt".into()))
        .await
        .unwrap();
    ctx.registry
        .set_flag(admin, FlagScope::Tenant(tid("legal")), key("secret"), FlagValue::Json(serde_json::json!({"a": 1})))
        .await
        .unwrap();
    let bus = Arc::new(LocalBus::new());
    let cache = ConfigCache::new(store.clone(), bus, CacheConfig::default());
    let snapshot = cache.get(&admin.act_in(tid("finance"))).await.unwrap().snapshot;
    let bytes = snapshot.encode().unwrap();
    let back = tenantry_app::Snapshot::decode(&bytes, &tid("finance")).unwrap();
    assert_eq!(back.tenant, snapshot.tenant);
    let t = &snapshot.tenant;
    assert_eq!(back.flags.evaluate_all(&t.id, &t.tier), snapshot.flags.evaluate_all(&t.id, &t.tier));
    assert!(!String::from_utf8_lossy(&bytes).contains("secret"), "another tenant's override is not in the entry");
    assert!(tenantry_app::Snapshot::decode(&bytes, &tid("legal")).is_err(), "another tenant's key");
    assert!(tenantry_app::Snapshot::decode(b"not json", &tid("finance")).is_err());
    let broken = String::from_utf8(bytes).unwrap().replacen("\"finance\"", "\"Finance!\"", 1);
    assert!(tenantry_app::Snapshot::decode(broken.as_bytes(), &tid("finance")).is_err(), "an invalid id is refused");
}

/// Generates one `#[tokio::test]` per cache case.
/// The store's change feed: concurrent appends are numbered 1, 2, 3… without gaps and read back
/// in order; trimming keeps the newest entry; replica reports are upserted and removed.
pub async fn the_change_feed_numbers_without_gaps_and_keeps_replica_reports(store: Arc<dyn Store>) {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let base = store.feed_head().await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10 {
                let target = InvalidationTarget::Tenant(tid(&format!("t{w}-{i}")));
                seqs.push(store.feed_append(&target, now).await.unwrap());
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, ((base + 1)..=(base + 80)).collect::<Vec<_>>(), "numbered without gaps or repeats");
    assert_eq!(store.feed_head().await.unwrap(), base + 80);
    let all = store.feed_after(base, 1000).await.unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), seqs, "read back in order");
    assert!(all.iter().all(|m| matches!(&m.target, InvalidationTarget::Tenant(t) if t.as_str().starts_with('t'))));
    let page = store.feed_after(base + 70, 5).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), ((base + 71)..=(base + 75)).collect::<Vec<_>>());
    store.feed_append(&InvalidationTarget::All, now).await.unwrap();
    assert!(store.feed_trim(now + time::Duration::days(1)).await.unwrap() >= 80);
    let kept = store.feed_after(0, 1000).await.unwrap();
    assert_eq!(kept, [Invalidation { seq: base + 81, target: InvalidationTarget::All }], "the newest entry stays");

    let mut row = tenantry_app::ReplicaRow {
        replica_id: "host/127.0.0.1:8080/42".to_owned(),
        bus: "store".to_owned(),
        applied_seq: 3,
        started_at: now,
        seen_at: now,
    };
    store.replica_report(&row).await.unwrap();
    row.applied_seq = 9;
    row.seen_at = now + time::Duration::seconds(2);
    store.replica_report(&row).await.unwrap();
    assert_eq!(store.replicas().await.unwrap(), [row.clone()], "one row per replica, updated in place");
    store.replica_leave(&row.replica_id).await.unwrap();
    assert!(store.replicas().await.unwrap().is_empty());
}

/// Two processes on one store, each with its own services and the store's change feed as bus
/// (no Redis, caches that would hold for an hour): a key revoked by one is refused by the other
/// once the first has settled — the other reported that it applied the change.
pub async fn a_change_by_another_process_is_applied_before_it_settles(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new());
    let process = |store: Arc<dyn Store>, clock: Arc<ManualClock>| async move {
        let bus = Arc::new(tenantry_app::StoreBus::new(store.clone(), clock.clone(), Duration::from_millis(10)));
        let cache = CacheConfig::uniform(Duration::from_secs(3600), Duration::from_secs(60));
        build_app(store, clock, Wiring { bus, cache, ..Wiring::local() }).await
    };
    let server = process(store.clone(), clock.clone()).await;
    let cli = process(store.clone(), clock.clone()).await;
    let reporter = tenantry_app::ReplicaReporter::start(
        store.clone(),
        clock.clone(),
        server.bus().as_ref(),
        server.cache.clone(),
        "server-a".to_owned(),
    )
    .await;
    let admin = cli.operator("ops");
    let owner = tenantry_app::KeyOwner::PlatformAdmin(tenantry_domain::UserId::parse("ops").unwrap());
    let issued = cli.directory.create_key(&admin, owner, "laptop", None).await.unwrap();
    server.directory.authenticate(&issued.token).await.expect("the key works, and is now cached by the server");

    cli.directory.revoke_key(&admin, &issued.key.id).await.unwrap();
    let settled = cli.settle(Duration::from_secs(30)).await.unwrap();
    assert_eq!(settled.confirmed, ["server-a"], "{settled:?}");
    assert!(settled.lagging.is_empty() && settled.elsewhere.is_empty(), "{settled:?}");
    let refused = server.directory.authenticate(&issued.token).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Unauthenticated, "{refused}");
    reporter.leave().await;
    assert!(store.replicas().await.unwrap().is_empty(), "a server that leaves removes its report");
}

#[macro_export]
macro_rules! cache_suite {
    ($make:expr) => {
        $crate::cache_suite!(@cases $make; replicas_see_each_others_writes, a_gap_in_the_sequence_drops_every_snapshot,
            loads_racing_writes_never_install_old_data, the_shared_form_round_trips_and_refuses_what_it_must,
            the_change_feed_numbers_without_gaps_and_keeps_replica_reports,
            a_change_by_another_process_is_applied_before_it_settles);
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make else { return };
                $crate::cache::$case(store).await;
            }
        )*
    };
}
