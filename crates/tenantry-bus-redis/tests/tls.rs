//! Redis over TLS (`rediss://`, rustls): with the CA that signed the server's certificate, two
//! replicas' buses carry invalidations and the shared cache, and the query meter counts; without
//! it (the system's roots only) the connection is refused, so the certificate is really checked.
//! A real TLS-only Redis (`TENANTRY_TEST_REDIS_TLS_URL`, `TENANTRY_TEST_REDIS_CA`, set by
//! scripts/test.sh; required under `CI=true`).

use std::sync::Arc;

use tenantry_app::ports::Store;
use tenantry_app::{QueryMeter, SharedCache};
use tenantry_bus_redis::{RedisBus, RedisQueryMeter, client};
use tenantry_contract::cache::eventually;
use tenantry_contract::{Ctx, create, key, tid};
use tenantry_domain::{Evaluation, FlagScope, FlagValue};
use tenantry_store_postgres::testing::required_env;
use tenantry_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_ca_carries_invalidations_and_refuses_an_unknown_issuer() {
    let Some(url) = required_env("TENANTRY_TEST_REDIS_TLS_URL") else { return };
    let Some(ca_file) = required_env("TENANTRY_TEST_REDIS_CA") else { return };
    let ca = std::fs::read(&ca_file).expect("read the test CA");
    let ns = format!("test-tls-{}:", std::process::id());

    let refused = RedisBus::connect(&url, &ns).await.err().expect("the system's roots do not know this server");
    assert!(format!("{refused:#}").to_lowercase().contains("certificate"), "{refused:#}");

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_temporary().await.unwrap());
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "finance", "gold").await;
    ctx.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let bus =
            Arc::new(RedisBus::connect_client(client(&url, Some(&ca)).unwrap(), &ns).await.expect("TLS with the CA"));
        let wiring = tenantry_contract::Wiring {
            bus: bus.clone(),
            shared_cache: Some(bus.clone()),
            ..tenantry_contract::Wiring::local()
        };
        replicas.push((tenantry_contract::build_app(store.clone(), ctx.clock.clone(), wiring).await, bus));
    }
    let beta = |app: &tenantry_app::App| {
        let (registry, scope) = (app.registry.clone(), ctx.admin.act_in(tid("finance")));
        async move {
            let result = registry.evaluate_for_runtime(&scope, Some(&key("beta"))).await.unwrap();
            match &result.evaluations[0].1 {
                Evaluation::Resolved { value, .. } => value.as_bool(),
                Evaluation::Unknown | Evaluation::Disabled { .. } => None,
            }
        }
    };
    let (a, b) = (&replicas[0].0, &replicas[1].0);
    assert_eq!(beta(b).await, Some(false), "b caches the flag");
    a.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(true)).await.unwrap();
    eventually("b hears a's invalidation over TLS", || async { beta(b).await == Some(true) }).await;
    // the shared cache holds what a replica loaded
    let shared = replicas[1].1.get(&tid("finance")).await.unwrap();
    assert!(shared.seq > 0, "{shared:?}");

    let meter = RedisQueryMeter::connect_client(client(&url, Some(&ca)).unwrap(), &ns).await.unwrap();
    meter.admit(&tid("finance"), 1, 10, time::OffsetDateTime::now_utc()).await.expect("the meter counts over TLS");
}
