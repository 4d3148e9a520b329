//! Query limits shared through Redis: two replicas' meters on one namespace admit together what
//! one tenant's limits allow — the token bucket per minute and the count per UTC day — and one
//! tenant's use does not limit another. Real Redis (`REDIS_URL`; required under `CI=true`).

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use tenantry_app::{IngestTake, QueryMeter, Throttled};
use tenantry_bus_redis::RedisQueryMeter;
use tenantry_domain::TenantId;

fn namespace() -> String {
    format!("test-meter-{}-{}:", std::process::id(), OffsetDateTime::now_utc().unix_timestamp_nanos())
}

async fn two_replicas() -> Option<(RedisQueryMeter, RedisQueryMeter)> {
    let url = tenantry_store_postgres::testing::required_env("REDIS_URL")?;
    let ns = namespace();
    Some((RedisQueryMeter::connect(&url, &ns).await.unwrap(), RedisQueryMeter::connect(&url, &ns).await.unwrap()))
}

#[tokio::test]
async fn replicas_share_the_per_minute_bucket() {
    let Some((a, b)) = two_replicas().await else { return };
    let t = TenantId::parse("chatty").unwrap();
    let now = datetime!(2026-11-23 10:00:00 UTC);
    // 3 per minute: three queries spread over both replicas, then both refuse
    a.admit(&t, 3, 1000, now).await.unwrap();
    b.admit(&t, 3, 1000, now).await.unwrap();
    a.admit(&t, 3, 1000, now).await.unwrap();
    for meter in [&a, &b] {
        match meter.admit(&t, 3, 1000, now).await {
            Err(Throttled::PerMinute { retry_after_secs }) => assert_eq!(retry_after_secs, 20),
            other => panic!("expected the bucket to be empty, got {other:?}"),
        }
    }
    // another tenant is not limited by chatty's use
    b.admit(&TenantId::parse("quiet").unwrap(), 3, 1000, now).await.unwrap();
    // 20 s refill one token, usable from either replica once
    let later = now + Duration::seconds(20);
    b.admit(&t, 3, 1000, later).await.unwrap();
    assert!(matches!(a.admit(&t, 3, 1000, later).await, Err(Throttled::PerMinute { .. })));
}

#[tokio::test]
async fn replicas_share_the_daily_quota() {
    let Some((a, b)) = two_replicas().await else { return };
    let t = TenantId::parse("daily").unwrap();
    let now = datetime!(2026-11-23 23:59:00 UTC);
    a.admit(&t, 1000, 2, now).await.unwrap();
    b.admit(&t, 1000, 2, now).await.unwrap();
    match a.admit(&t, 1000, 2, now).await {
        Err(Throttled::PerDay { retry_after_secs }) => assert_eq!(retry_after_secs, 60, "until midnight UTC"),
        other => panic!("expected the daily quota, got {other:?}"),
    }
    // a new UTC day starts a new count
    b.admit(&t, 1000, 2, now + Duration::minutes(2)).await.unwrap();
}

/// The ingest buckets (documents and bytes per second, ten seconds' worth each) are shared by
/// every replica, and a batch takes from both or from neither — the in-process meter's rule.
#[tokio::test]
async fn replicas_share_the_ingest_buckets_and_match_the_in_process_meter() {
    let Some((a, b)) = two_replicas().await else { return };
    let local = tenantry_app::QueryLimiter::default();
    let t = TenantId::parse("loader").unwrap();
    let now = datetime!(2026-11-23 10:00:00 UTC);
    let take = |documents, bytes| IngestTake { documents, bytes, documents_per_second: 2, bytes_per_second: 100 };
    // 20 documents and 1,000 bytes fit at once; spread over both replicas
    for (meter, n) in [(&a as &dyn QueryMeter, 12), (&b as &dyn QueryMeter, 8)] {
        meter.admit_ingest(&t, take(n, 10), now).await.unwrap();
    }
    local.admit_ingest(&t, take(20, 20), now).await.unwrap();
    for meter in [&a as &dyn QueryMeter, &b, &local] {
        match meter.admit_ingest(&t, take(3, 1), now).await {
            Err(Throttled::Ingest { retry_after_secs }) => {
                assert_eq!(retry_after_secs, 2, "3 documents at 2 per second")
            }
            other => panic!("expected the documents bucket to be empty, got {other:?}"),
        }
    }
    // refused batches took nothing: the bytes are all there after the documents refill
    let later = now + Duration::seconds(10);
    for meter in [&a as &dyn QueryMeter, &local] {
        meter.admit_ingest(&t, take(1, 980), later).await.unwrap();
        assert!(matches!(meter.admit_ingest(&t, take(1, 100), later).await, Err(Throttled::Ingest { .. })));
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_reported_not_hidden() {
    if tenantry_store_postgres::testing::required_env("REDIS_URL").is_none() {
        return;
    }
    // a port nothing listens on: connecting fails up front
    assert!(RedisQueryMeter::connect("redis://127.0.0.1:1", "x:").await.is_err());
}

/// Limits protect capacity, they are not an isolation boundary: with its Redis gone, a meter says
/// it is unavailable, and the data plane serves the query (and logs) instead of refusing it. A
/// Redis of its own, started for this test and killed halfway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_served_when_the_meters_redis_is_gone() {
    use std::sync::Arc;
    use tenantry_app::{App, AppConfig, LocalEmbedder};
    use tenantry_domain::{NewDocument, NewTenant, QuerySpec, TierName};
    // the shared Redis must exist under CI (the test command starts it); this test runs its own
    if tenantry_store_postgres::testing::required_env("REDIS_URL").is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/ensure-services.sh)");
    let url = format!("redis://127.0.0.1:{port}");
    let mut meter = None;
    for _ in 0..100 {
        if let Ok(m) = RedisQueryMeter::connect(&url, &namespace()).await {
            meter = Some(m);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let meter: Arc<dyn QueryMeter> = Arc::new(meter.expect("the test's Redis answers"));
    let t = TenantId::parse("steady").unwrap();
    let now = datetime!(2026-11-23 10:00:00 UTC);
    meter.admit(&t, 100, 1000, now).await.expect("counted while Redis is up");

    let store = Arc::new(tenantry_store_sqlite::SqliteStore::open_temporary().await.unwrap());
    let blobs = Arc::new(tenantry_contract::MemoryBlobs::default());
    let embedder = Arc::new(LocalEmbedder::new(32));
    let app = App::build(AppConfig {
        meter: Some(meter.clone()),
        ..AppConfig::local(store, Arc::new(tenantry_app::SystemClock), embedder, blobs)
    })
    .await
    .unwrap();
    let admin = app.operator("meter-test");
    let new = NewTenant::minimal(t.clone(), "Steady", TierName::parse("silver").unwrap());
    app.registry.create_tenant(&admin, new).await.unwrap();
    let scope = admin.act_in(t.clone());
    let doc = NewDocument::new("doc", "words about revenue".into(), &serde_json::json!({}), None).unwrap();
    app.data.ingest(&scope, vec![doc]).await.unwrap();

    redis.kill().unwrap();
    redis.wait().unwrap();
    assert!(matches!(meter.admit(&t, 100, 1000, now).await, Err(Throttled::MeterUnavailable(_))));
    let spec = QuerySpec::new(Some("revenue".into()), None, Some(3), &serde_json::Value::Null, 32).unwrap();
    let answer = app.data.query(&scope, spec).await.expect("served without the meter");
    assert_eq!(answer.hits.len(), 1);
}
