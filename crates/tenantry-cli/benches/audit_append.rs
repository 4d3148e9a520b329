//! Audit chain throughput: appends per second with 1, 4 and 16 concurrent writers (each append is
//! its own transaction that takes the chain head's lock, hashes and signs), and verification
//! speed. Embedded store on a file, and PostgreSQL when `DATABASE_URL` is set.
//!
//! `cargo bench -p tenantry-cli --bench audit_append`

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenantry_app::ports::Store;
use tenantry_app::{App, AppConfig, AuditKey, AuditRecord, LocalEmbedder, SystemClock};
use tenantry_blob::{BlobConfig, ObjectBlobStore};
use tenantry_domain::{Actor, ActorKind};

const PER_WRITER_TOTAL: usize = 2000;

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        at: time::OffsetDateTime::now_utc(),
        actor: Actor::new(ActorKind::System, "bench"),
        tenant: None,
        operation: "bench.append".to_owned(),
        before: None,
        after: Some(serde_json::json!({"i": i, "payload": "x".repeat(200)})),
        reason: None,
        request_id: Some(format!("req-{i}")),
    }
}

/// The services over `store`, as every shell builds them; the bench appends through the store port.
async fn app(store: Arc<dyn Store>, key: &Arc<AuditKey>, objects: &std::path::Path) -> App {
    let blobs = Arc::new(ObjectBlobStore::open(&BlobConfig::Local(objects.to_path_buf())).unwrap());
    let local = AppConfig::local(store, Arc::new(SystemClock), Arc::new(LocalEmbedder::new(8)), blobs);
    App::build(AppConfig { audit_key: Some(key.clone()), trusted: key.trusted(), ..local }).await.unwrap()
}

async fn appends(name: &str, app: &App, writers: usize) {
    let per_writer = PER_WRITER_TOTAL / writers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = app.store.clone();
        let access = app.operator("bench");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let t = Instant::now();
                store.append_audit(&access, &record(w * per_writer + i)).await.expect("append");
                latencies.push(t.elapsed());
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
    println!(
        "{name:<9} writers={writers:<3} appends={:<5} {:>8.0} appends/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

async fn verify(name: &str, app: &App) {
    let started = Instant::now();
    let report = app.auditor.verify(&app.operator("bench"), None).await.unwrap();
    let elapsed = started.elapsed();
    assert!(report.fault.is_none(), "{report:?}");
    println!(
        "{name:<9} verify: {} entries in {:.2} s = {:.0} entries/s (hash + signature + link)",
        report.verified,
        elapsed.as_secs_f64(),
        report.verified as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let key = Arc::new(AuditKey::from_seed([9; 32]));
    let dir = std::env::temp_dir().join(format!("tenantry-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sqlite: Arc<dyn Store> =
        Arc::new(tenantry_store_sqlite::SqliteStore::open(&dir).await.unwrap().with_signer(key.clone()));
    let sqlite = app(sqlite, &key, &dir.join("objects")).await;
    for writers in [1, 4, 16] {
        appends("sqlite", &sqlite, writers).await;
    }
    verify("sqlite", &sqlite).await;
    let _ = std::fs::remove_dir_all(&dir);

    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        let mut config = tenantry_store_postgres::testing::fresh_config().await.unwrap();
        config.migrate = false;
        config.pool_size = 16;
        let pg: Arc<dyn Store> =
            Arc::new(tenantry_store_postgres::PgStore::connect(&config).await.unwrap().with_signer(key.clone()));
        let objects = std::env::temp_dir().join(format!("tenantry-bench-objects-{}", std::process::id()));
        let pg = app(pg, &key, &objects).await;
        for writers in [1, 4, 16] {
            appends("postgres", &pg, writers).await;
        }
        verify("postgres", &pg).await;
        let _ = std::fs::remove_dir_all(&objects);
    } else {
        println!("postgres: skipped (set DATABASE_URL)");
    }
}
