//! Metering throughput: usage events per second recorded durably through the group-commit writer
//! (`Metering::record`, as a request's events are) with 16 and 64 concurrent producers, each
//! request carrying 4 events (a query's vector query, embedding tokens, compute time and API
//! call), and the latency that waiting for the shared flush adds to a request; then the monthly
//! report over 1,000 tenants × 30 days × 4 meters of rollups. Embedded store on a file, and
//! PostgreSQL when `DATABASE_URL` is set.
//!
//! `cargo bench -p tenantry-cli --bench metering` (`METERING_SECS` sets each run's length, default 5)

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenantry_app::ports::Store;
use tenantry_app::{App, AppConfig, LocalEmbedder, SystemClock};
use tenantry_blob::{BlobConfig, ObjectBlobStore};
use tenantry_domain::TenantId;
use tenantry_domain::cost::{Meter, UsageEvent};
use tenantry_domain::pricing::{Allocation, FixedCost, Month};

const TENANTS: usize = 1_000;

/// The services over `store`; `METERING_FLUSHERS` overrides the writer's concurrent flushes.
async fn app(store: Arc<dyn Store>, objects: &std::path::Path) -> App {
    let blobs = Arc::new(ObjectBlobStore::open(&BlobConfig::Local(objects.to_path_buf())).unwrap());
    let mut metering = tenantry_app::MeteringConfig::default();
    if let Some(n) = std::env::var("METERING_FLUSHERS").ok().and_then(|s| s.parse().ok()) {
        metering.flushers = n;
    }
    let local = AppConfig::local(store, Arc::new(SystemClock), Arc::new(LocalEmbedder::new(8)), blobs);
    App::build(AppConfig { metering, ..local }).await.unwrap()
}

fn producer_counts() -> Vec<usize> {
    std::env::var("METERING_PRODUCERS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 64, 256])
}

fn request_events(tenant: &TenantId, op: &str, at: time::OffsetDateTime) -> Vec<UsageEvent> {
    let model = tenantry_domain::Label::parse("bench-embedder").unwrap();
    vec![
        UsageEvent::new(tenant.clone(), Meter::VectorQueries, 1, None, at, format!("{op}:q")).unwrap(),
        UsageEvent::new(tenant.clone(), Meter::EmbeddingTokens, 12, Some(model), at, format!("{op}:e")).unwrap(),
        UsageEvent::new(tenant.clone(), Meter::ComputeMicros, 850, None, at, format!("{op}:c")).unwrap(),
        UsageEvent::new(tenant.clone(), Meter::ApiCalls, 1, None, at, format!("{op}:a")).unwrap(),
    ]
}

async fn throughput(name: &str, app: &App, producers: usize, secs: u64) {
    let tenants: Arc<Vec<TenantId>> =
        Arc::new((0..TENANTS).map(|i| TenantId::parse(&format!("bench-{i:04}")).unwrap()).collect());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (metering, tenants, name) = (app.metering.clone(), tenants.clone(), name.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let tenant = &tenants[(p * 7919 + i) % tenants.len()];
                let events =
                    request_events(tenant, &format!("{name}-{producers}-{p}-{i}"), time::OffsetDateTime::now_utc());
                let t = Instant::now();
                metering.record(events).await.expect("record");
                latencies.push(t.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    let events = all.len() * 4;
    println!(
        "{name:<9} producers={producers:<3} requests={:<7} events={events:<8} {:>8.0} events/s  wait p50 {:>6.2} ms  p99 {:>6.2} ms",
        all.len(),
        events as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

/// One ledger transaction per batch, straight to the store: the cost of a flush by its size.
async fn batches(name: &str, app: &App) {
    let admin = app.operator("bench");
    for size in [64usize, 256, 1024, 4096] {
        let rounds = 10;
        let started = Instant::now();
        for r in 0..rounds {
            let at = time::OffsetDateTime::now_utc();
            let events: Vec<UsageEvent> = (0..size / 4)
                .flat_map(|i| {
                    let tenant = TenantId::parse(&format!("bench-{:04}", (i * 7 + r) % TENANTS)).unwrap();
                    request_events(&tenant, &format!("batch-{size}-{r}-{i}"), at)
                })
                .collect();
            app.store.record_usage(&admin, &events).await.unwrap();
        }
        let per = started.elapsed() / rounds as u32;
        println!(
            "{name:<9} batch of {size:<5} events: {:>7.2} ms per transaction = {:>8.0} events/s from one writer",
            per.as_secs_f64() * 1e3,
            size as f64 / per.as_secs_f64()
        );
    }
}

async fn monthly_report(name: &str, app: &App) {
    let month = Month::parse("2026-10").unwrap();
    let admin = app.operator("bench");
    // one event per rollup row: 1,000 tenants × 30 days × 4 meters
    let mut batch = Vec::new();
    for t in 0..TENANTS {
        let tenant = TenantId::parse(&format!("bench-{t:04}")).unwrap();
        for day in 0..30 {
            let at = time::macros::datetime!(2026-10-01 12:00 UTC) + time::Duration::days(day);
            batch.extend(request_events(&tenant, &format!("month-{t}-{day}"), at));
            if batch.len() >= 4_000 {
                app.store.record_usage(&admin, &batch).await.unwrap();
                batch.clear();
            }
        }
    }
    app.store.record_usage(&admin, &batch).await.unwrap();
    app.costs.load_preset(&admin, "seed-002-usd", time::macros::date!(2026 - 01 - 01)).await.unwrap();
    let usd =
        |a: &str| tenantry_domain::Money::parse_decimal(a, tenantry_domain::Currency::parse("USD").unwrap()).unwrap();
    for (item, amount, allocation) in [("postgres", "30", Allocation::Proportional), ("lb", "35", Allocation::Even)] {
        let fixed = FixedCost {
            name: tenantry_domain::Label::parse(item).unwrap(),
            provider: tenantry_domain::Label::parse("cloud").unwrap(),
            amount: usd(amount),
            per_index: false,
            allocation,
            from: month,
            until: None,
        };
        app.costs.put_fixed_cost(&admin, fixed).await.unwrap();
    }
    let started = Instant::now();
    let report = app.costs.report(&admin, month, None).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.tenants.len(), TENANTS);
    println!(
        "{name:<9} monthly report: {} tenants × 30 days × 4 meters ({} rollup rows) in {:.0} ms",
        report.tenants.len(),
        TENANTS * 30 * 4,
        elapsed.as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("METERING_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("tenantry-bench-metering-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sqlite: Arc<dyn Store> = Arc::new(tenantry_store_sqlite::SqliteStore::open(&dir).await.unwrap());
    let sqlite = app(sqlite, &dir.join("objects")).await;
    for producers in producer_counts() {
        throughput("sqlite", &sqlite, producers, secs).await;
    }
    batches("sqlite", &sqlite).await;
    monthly_report("sqlite", &sqlite).await;
    let _ = std::fs::remove_dir_all(&dir);

    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        let mut config = tenantry_store_postgres::testing::fresh_config().await.unwrap();
        config.migrate = false;
        config.pool_size = 16;
        let pg: Arc<dyn Store> = Arc::new(tenantry_store_postgres::PgStore::connect(&config).await.unwrap());
        let objects = std::env::temp_dir().join(format!("tenantry-bench-metering-objects-{}", std::process::id()));
        let pg = app(pg, &objects).await;
        for producers in producer_counts() {
            throughput("postgres", &pg, producers, secs).await;
        }
        batches("postgres", &pg).await;
        monthly_report("postgres", &pg).await;
        let _ = std::fs::remove_dir_all(&objects);
    } else {
        println!("postgres: skipped (set DATABASE_URL)");
    }
}
