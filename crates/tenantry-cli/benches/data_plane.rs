//! The data plane, measured on both stores:
//! - ingest throughput (documents and chunks per second, local embedder, 384 dimensions);
//! - a tenant-scoped query through `DataPlane::query` (cache, lifecycle gate, rate limiter,
//!   placement, RLS context, HNSW search) against the same search issued raw to the store (one
//!   statement on the owner's connection, partition and tenant given, no RLS);
//! - on PostgreSQL, recall@10 of the HNSW search (iterative scan, tenant filter) against the exact
//!   answer for the same tenant.
//!
//! `DATABASE_URL=postgres://tenantry_owner@127.0.0.1:5432/postgres cargo bench -p tenantry-cli --bench data_plane`
//! (without DATABASE_URL only the SQLite half runs). `BENCH_DOCS` sets documents per tenant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use tenantry_app::{
    CacheConfig, ConfigCache, DataPlane, DataPlaneConfig, LocalBus, LocalEmbedder, LogAlerts, PlatformScope, Registry,
    Store, SystemClock, TenantScope,
};
use tenantry_blob::{BlobConfig, ObjectBlobStore};
use tenantry_domain::embedding::local_embedding;
use tenantry_domain::{LimitOverrides, NewDocument, NewTenant, QuerySpec, TenantId, TenantPatch, TierName};

const DIMS: usize = 384;
const TENANTS: usize = 4;
const QUERIES: usize = 400;

fn text(seed: u64, words: usize) -> String {
    const VOCAB: [&str; 40] = [
        "revenue",
        "contract",
        "invoice",
        "policy",
        "patient",
        "ledger",
        "audit",
        "pipeline",
        "forecast",
        "claim",
        "vendor",
        "payroll",
        "budget",
        "privacy",
        "merger",
        "quarter",
        "compliance",
        "retention",
        "customer",
        "renewal",
        "pricing",
        "discount",
        "warranty",
        "shipment",
        "inventory",
        "supplier",
        "treasury",
        "liability",
        "insurance",
        "benefit",
        "onboarding",
        "security",
        "incident",
        "latency",
        "capacity",
        "migration",
        "backup",
        "encryption",
        "tenant",
        "index",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..words)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            VOCAB[(x % VOCAB.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let mut s = self.0.clone();
        s.sort();
        s[((s.len() as f64 * p) as usize).min(s.len() - 1)].as_secs_f64() * 1e3
    }
    fn mean(&self) -> f64 {
        self.0.iter().map(Duration::as_secs_f64).sum::<f64>() / self.0.len() as f64 * 1e3
    }
    fn line(&self, what: &str) -> String {
        format!(
            "{what:<34} n={} mean {:.3} ms  p50 {:.3} ms  p99 {:.3} ms",
            self.0.len(),
            self.mean(),
            self.pct(0.5),
            self.pct(0.99)
        )
    }
}

struct Setup {
    plane: DataPlane,
    scope: TenantScope,
    queries: Vec<Vec<f32>>,
}

async fn setup(store: Arc<dyn Store>, label: &str, docs_per_tenant: usize) -> Setup {
    let dir = std::env::temp_dir().join(format!("tenantry-bench-objects-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let blobs = Arc::new(ObjectBlobStore::open(&BlobConfig::Local(dir)).unwrap());
    let clock = Arc::new(SystemClock);
    let cache = ConfigCache::new(
        store.clone(),
        Arc::new(LocalBus::new()),
        CacheConfig::uniform(Duration::from_secs(3600), Duration::from_secs(60)),
    );
    let plane = DataPlane::new(
        store.clone(),
        clock.clone(),
        Arc::new(LocalEmbedder::new(DIMS)),
        blobs,
        Arc::new(LogAlerts::default()),
        DataPlaneConfig::default(),
    )
    .with_cache(cache.clone());
    let registry = Registry::new(store, clock).with_cache(cache).with_data_plane(plane.clone());
    let admin = PlatformScope::operator("bench");
    let mut chunks = 0i64;
    let mut docs = 0usize;
    let started = Instant::now();
    for t in 0..TENANTS {
        let id = TenantId::parse(&format!("bench-{t}")).unwrap();
        registry
            .create_tenant(
                &admin,
                NewTenant::minimal(id.clone(), format!("Bench {t}"), TierName::parse("gold").unwrap()),
            )
            .await
            .unwrap();
        let scope = admin.act_in(id);
        let unlimited = LimitOverrides {
            max_documents: Some(10_000_000),
            max_queries_per_day: Some(1_000_000_000),
            rate_limit_per_minute: Some(1_000_000_000),
            ..Default::default()
        };
        let current = registry.get_tenant(&scope).await.unwrap();
        registry
            .update_tenant(&scope, TenantPatch { limits: unlimited, ..Default::default() }, Some(current.version))
            .await
            .unwrap();
        for start in (0..docs_per_tenant).step_by(20) {
            let batch: Vec<NewDocument> = (start..(start + 20).min(docs_per_tenant))
                .map(|i| {
                    let seed = (t * 1_000_000 + i) as u64;
                    NewDocument::new(&format!("doc {i}"), text(seed, 150), &Value::Null, None).unwrap()
                })
                .collect();
            let stored = plane.ingest(&scope, batch).await.unwrap();
            docs += stored.len();
            chunks += stored.iter().map(|d| d.chunk_count).sum::<i64>();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "[{label}] ingest: {docs} documents of 150 words ({chunks} chunks, {DIMS} dims) in {secs:.2} s = {:.0} docs/s, {:.0} chunks/s",
        docs as f64 / secs,
        chunks as f64 / secs
    );
    let queries = (0..QUERIES).map(|q| local_embedding(&text(900_000 + q as u64, 6), DIMS)).collect();
    Setup { plane, scope: admin.act_in(TenantId::parse("bench-0").unwrap()), queries }
}

async fn scoped(s: &Setup) -> Stats {
    let mut samples = Vec::with_capacity(s.queries.len());
    for v in &s.queries {
        let spec = QuerySpec::new(None, Some(v.clone()), Some(10), &Value::Null, DIMS).unwrap();
        let t = Instant::now();
        let answer = s.plane.query(&s.scope, spec).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(answer.hits.len(), 10);
    }
    Stats(samples)
}

fn vector_literal(v: &[f32]) -> String {
    format!("[{}]", v.iter().map(f32::to_string).collect::<Vec<_>>().join(","))
}

async fn postgres() {
    let Some(config) = tenantry_store_postgres::testing::fresh_config().await else {
        println!("[postgres] skipped: set DATABASE_URL");
        return;
    };
    let docs = std::env::var("BENCH_DOCS").ok().and_then(|d| d.parse().ok()).unwrap_or(1000);
    let mut app = config.clone();
    app.migrate = false;
    app.pool_size = 4;
    let store = Arc::new(tenantry_store_postgres::PgStore::connect(&app).await.unwrap());
    let s = setup(store, "postgres", docs).await;
    let mut owner = sqlx::PgConnection::connect(&config.owner_url).await.unwrap();
    sqlx::query("set hnsw.iterative_scan = strict_order").execute(&mut owner).await.unwrap();
    sqlx::query("set hnsw.ef_search = 40").execute(&mut owner).await.unwrap();
    let approx = format!(
        "select document_id, chunk_index, content, metadata from chunks where index_name = 'shared-1' and tenant_id = $2
         order by embedding::vector({DIMS}) <=> $1::text::vector({DIMS}) limit 10"
    );
    let exact = "select document_id, chunk_index from chunks where index_name = 'shared-1' and tenant_id = $2
         order by (embedding <=> $1::text::vector) + 0 limit 10";
    // warm both paths
    scoped(&s).await;
    let mut raw = Vec::new();
    for _ in 0..2 {
        raw.clear();
        for v in &s.queries {
            let t = Instant::now();
            let rows: Vec<(String, i32, String, Value)> = sqlx::query_as(sqlx::AssertSqlSafe(approx.clone()))
                .bind(vector_literal(v))
                .bind("bench-0")
                .fetch_all(&mut owner)
                .await
                .unwrap();
            raw.push(t.elapsed());
            assert_eq!(rows.len(), 10);
        }
    }
    let raw = Stats(raw);
    let scoped = scoped(&s).await;
    println!("[postgres] {}", raw.line("raw store query (owner, no RLS)"));
    println!("[postgres] {}", scoped.line("tenant-scoped DataPlane::query"));
    println!(
        "[postgres] scoped/raw: mean {:.2}x (+{:.3} ms), p50 {:.2}x (+{:.3} ms)",
        scoped.mean() / raw.mean(),
        scoped.mean() - raw.mean(),
        scoped.pct(0.5) / raw.pct(0.5),
        scoped.pct(0.5) - raw.pct(0.5)
    );
    let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("explain {approx}")))
        .bind(vector_literal(&s.queries[0]))
        .bind("bench-0")
        .fetch_all(&mut owner)
        .await
        .unwrap();
    let uses_hnsw = plan.iter().any(|(l,)| l.contains("hnsw"));
    println!("[postgres] plan uses the partition's HNSW index: {uses_hnsw}");

    // recall@10 of what the tenant-scoped path returns, against the exact answer
    let mut total = 0.0;
    for v in &s.queries {
        let spec = QuerySpec::new(None, Some(v.clone()), Some(10), &Value::Null, DIMS).unwrap();
        let got: Vec<(String, i32)> = s
            .plane
            .query(&s.scope, spec)
            .await
            .unwrap()
            .hits
            .into_iter()
            .map(|h| (h.document_id.to_string(), h.chunk_index))
            .collect();
        let truth: Vec<(String, i32)> =
            sqlx::query_as(exact).bind(vector_literal(v)).bind("bench-0").fetch_all(&mut owner).await.unwrap();
        // ties: count a hit as correct if its distance is within the exact 10th distance
        let hits = got.iter().filter(|g| truth.contains(g)).count();
        total += hits as f64 / truth.len() as f64;
    }
    println!(
        "[postgres] recall@10 (HNSW + tenant filter vs exact, {} queries): {:.3}",
        s.queries.len(),
        total / s.queries.len() as f64
    );
}

async fn sqlite() {
    let docs = std::env::var("BENCH_DOCS").ok().and_then(|d| d.parse().ok()).unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("tenantry-bench-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(tenantry_store_sqlite::SqliteStore::open(&dir).await.unwrap());
    let pool = store.pool().clone();
    let s = setup(store, "sqlite", docs).await;
    scoped(&s).await;
    // raw: the same exact scan, straight from the pool (no scope, no placement lookup)
    let mut raw = Vec::new();
    for v in &s.queries {
        let t = Instant::now();
        let rows: Vec<(String, i32, Vec<u8>)> = sqlx::query_as(
            "select document_id, chunk_index, embedding from chunks where tenant_id = ? and index_name = ?",
        )
        .bind("bench-0")
        .bind("shared-1")
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut scored: Vec<(f32, &str, i32)> = rows
            .iter()
            .map(|(d, i, b)| {
                let e: Vec<f32> = b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                (tenantry_domain::embedding::cosine(v, &e), d.as_str(), *i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.truncate(10);
        raw.push(t.elapsed());
        assert_eq!(scored.len(), 10);
    }
    let raw = Stats(raw);
    let scoped = scoped(&s).await;
    println!("[sqlite] {}", raw.line("raw exact scan (pool, no scope)"));
    println!("[sqlite] {}", scoped.line("tenant-scoped DataPlane::query"));
    println!(
        "[sqlite] scoped/raw: mean {:.2}x (+{:.3} ms), p50 {:.2}x (+{:.3} ms)",
        scoped.mean() / raw.mean(),
        scoped.mean() - raw.mean(),
        scoped.pct(0.5) / raw.pct(0.5),
        scoped.pct(0.5) - raw.pct(0.5)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    sqlite().await;
    postgres().await;
}
