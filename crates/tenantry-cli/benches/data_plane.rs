//! The data plane, measured on both stores:
//! - ingest throughput (documents and chunks per second, local embedder, 384 dimensions);
//! - a tenant-scoped query through `DataPlane::query` (cache, lifecycle gate, rate limiter,
//!   placement, RLS context, the index's search function) against the same search issued raw to
//!   the store (on PostgreSQL the statement the search function chooses for that tenant — exact
//!   scan or HNSW at its ef_search — on a pool of superuser connections, partition and tenant
//!   given, no RLS), interleaved query by query;
//! - on PostgreSQL, recall@10 of the scoped answer and of HNSW forced at the base ef_search
//!   (iterative scan, tenant filter) against the exact answer for the same tenant;
//!   `BENCH_EF_SWEEP=200,400` adds recall and time of the forced HNSW at other ef_search.
//!
//! `DATABASE_URL=postgres://tenantry_owner@127.0.0.1:5432/postgres cargo bench -p tenantry-cli --bench data_plane`
//! (without DATABASE_URL only the SQLite half runs). `BENCH_DOCS` sets documents per tenant,
//! `BENCH_SHARED_DOCS=50,1000,5000` instead one shared tenant per number (tenants of different
//! sizes on one index; the first of each size is measured), `BENCH_VIP_DOCS` the platinum
//! tenant's, `BENCH_ONLY=sqlite|postgres` runs one half.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use tenantry_app::{
    App, AppConfig, CacheConfig, DataPlane, LocalEmbedder, PlatformScope, Store, SystemClock, TenantScope,
};
use tenantry_blob::{BlobConfig, ObjectBlobStore};
use tenantry_domain::embedding::local_embedding;
use tenantry_domain::{LimitOverrides, NewDocument, NewTenant, QuerySpec, TenantId, TenantPatch, TierName};
use tenantry_store_postgres::pgvector::PgVector;

const DIMS: usize = 384;
const TENANTS: usize = 4;

/// Documents per shared-index tenant: `BENCH_SHARED_DOCS` (a comma-separated list, one tenant
/// each — tenants of different sizes on one index), else `TENANTS` tenants of `BENCH_DOCS`.
fn shared_docs() -> Vec<usize> {
    if let Ok(list) = std::env::var("BENCH_SHARED_DOCS") {
        return list.split(',').map(|n| n.trim().parse().expect("BENCH_SHARED_DOCS: numbers")).collect();
    }
    let docs = std::env::var("BENCH_DOCS").ok().and_then(|d| d.parse().ok()).unwrap_or(1000);
    vec![docs; TENANTS]
}

/// The first shared tenant of each size (the measured ones) and the index that holds them.
fn measured(shared: &[usize], vip: usize) -> Vec<(String, &'static str)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (t, n) in shared.iter().enumerate() {
        if !seen.contains(n) {
            seen.push(*n);
            out.push((format!("bench-{t}"), "shared-1"));
        }
    }
    if vip > 0 {
        out.push(("bench-vip".to_owned(), "dedicated-bench-vip"));
    }
    out
}
const QUERIES: usize = 400;

use tenantry_domain::documents::synthetic_text as text;

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
    admin: PlatformScope,
    queries: Vec<Vec<f32>>,
}

impl Setup {
    fn scope(&self, tenant: &str) -> TenantScope {
        self.admin.act_in(TenantId::parse(tenant).unwrap())
    }
}

/// Gold tenants `bench-0`, `bench-1`… on one shared index with `shared[i]` documents each, plus
/// `bench-vip` (platinum: a dedicated index) with `vip_docs`.
async fn setup(store: Arc<dyn Store>, label: &str, shared: &[usize], vip_docs: usize) -> Setup {
    let dir = std::env::temp_dir().join(format!("tenantry-bench-objects-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let blobs = Arc::new(ObjectBlobStore::open(&BlobConfig::Local(dir)).unwrap());
    // the services as `serve` wires them
    let app = App::build(AppConfig {
        cache: CacheConfig::uniform(Duration::from_secs(3600), Duration::from_secs(60)),
        ..AppConfig::local(store, Arc::new(SystemClock), Arc::new(LocalEmbedder::new(DIMS)), blobs)
    })
    .await
    .unwrap();
    let admin = app.operator("bench");
    let (plane, registry) = (app.data, app.registry);
    let mut chunks = 0i64;
    let mut docs = 0usize;
    let started = Instant::now();
    let mut plan: Vec<(String, &str, usize)> =
        shared.iter().enumerate().map(|(t, &n)| (format!("bench-{t}"), "gold", n)).collect();
    if vip_docs > 0 {
        plan.push(("bench-vip".to_owned(), "platinum", vip_docs));
    }
    for (t, (name, tier, n_docs)) in plan.into_iter().enumerate() {
        let id = TenantId::parse(&name).unwrap();
        registry
            .create_tenant(&admin, NewTenant::minimal(id.clone(), name.clone(), TierName::parse(tier).unwrap()))
            .await
            .unwrap();
        let scope = admin.act_in(id);
        let unlimited = LimitOverrides {
            max_documents: Some(10_000_000),
            max_queries_per_day: Some(1_000_000_000),
            rate_limit_per_minute: Some(1_000_000_000),
            ingest_documents_per_second: Some(1_000_000_000),
            ingest_bytes_per_second: Some(1_000_000_000_000),
            ..Default::default()
        };
        let current = registry.get_tenant(&scope).await.unwrap();
        registry
            .update_tenant(&scope, TenantPatch { limits: unlimited, ..Default::default() }, Some(current.version))
            .await
            .unwrap();
        for start in (0..n_docs).step_by(20) {
            let batch: Vec<NewDocument> = (start..(start + 20).min(n_docs))
                .map(|i| {
                    let seed = (t * 1_000_000 + i) as u64;
                    // a tenth of the tenant's documents per kind, for the filtered queries
                    let meta = serde_json::json!({ "kind": format!("k{}", i % 10) });
                    NewDocument::new(&format!("doc {i}"), text(seed, 150), &meta, None).unwrap()
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
    Setup { plane, admin, queries }
}

/// The share of `truth` (the exact top k) that `got` found.
fn overlap(got: &[(String, i32)], truth: &[(String, i32)]) -> f64 {
    got.iter().filter(|x| truth.contains(x)).count() as f64 / truth.len().max(1) as f64
}

async fn scoped_once(s: &Setup, scope: &TenantScope, v: &[f32]) -> Duration {
    let spec = QuerySpec::new(None, Some(v.to_vec()), Some(10), &Value::Null, DIMS).unwrap();
    let t = Instant::now();
    let answer = s.plane.query(scope, spec).await.unwrap();
    let took = t.elapsed();
    assert_eq!(answer.hits.len(), 10);
    took
}

/// Raw and scoped queries interleaved (the same vector through both, which one goes first
/// alternating), so that drift on this 2-core machine (frequency, page cache, a background
/// vacuum) lands on both sides alike instead of on whichever block ran second. Two passes over
/// the queries; the first only warms up.
macro_rules! interleaved {
    ($s:expr, $tenant:expr, |$v:ident| $raw:expr) => {{
        let scope = $s.scope($tenant);
        let mut raw = Vec::new();
        let mut scoped = Vec::new();
        for _pass in 0..2 {
            raw.clear();
            scoped.clear();
            for (i, $v) in $s.queries.iter().enumerate() {
                if i % 2 == 0 {
                    raw.push($raw);
                    scoped.push(scoped_once(&$s, &scope, $v).await);
                } else {
                    scoped.push(scoped_once(&$s, &scope, $v).await);
                    raw.push($raw);
                }
            }
        }
        (Stats(raw), Stats(scoped))
    }};
}

fn report(label: &str, what: &str, raw: &Stats, scoped: &Stats) {
    println!("[{label}] {what}: {}", raw.line("raw store query"));
    println!("[{label}] {what}: {}", scoped.line("tenant-scoped DataPlane::query"));
    println!(
        "[{label}] {what}: scoped/raw mean {:.2}x ({:+.3} ms), p50 {:.2}x ({:+.3} ms)",
        scoped.mean() / raw.mean(),
        scoped.mean() - raw.mean(),
        scoped.pct(0.5) / raw.pct(0.5),
        scoped.pct(0.5) - raw.pct(0.5)
    );
}

async fn postgres() {
    let Some(config) = tenantry_store_postgres::testing::fresh_config().await else {
        println!("[postgres] skipped: set DATABASE_URL");
        return;
    };
    let shared = shared_docs();
    let vip = std::env::var("BENCH_VIP_DOCS").ok().and_then(|d| d.parse().ok()).unwrap_or(5000);
    let mut app = config.clone();
    app.migrate = false;
    app.pool_size = 4;
    let store = Arc::new(tenantry_store_postgres::PgStore::connect(&app).await.unwrap());
    let s = setup(store.clone(), "postgres", &shared, vip).await;
    // raw = the store's own search statement on superuser connections: no RLS, no transaction
    // context, no placement lookup, no lifecycle gate or limiter
    let mut superuser_url = url::Url::parse(&config.owner_url).unwrap();
    superuser_url.set_username("postgres").unwrap();
    let mut db = sqlx::PgConnection::connect(superuser_url.as_str()).await.unwrap();
    // as autovacuum would after a bulk load: the planner needs statistics to choose between a
    // partition's HNSW index and its (tenant_id, ...) btree; vacuumed now so that autovacuum
    // does not start on the freshly loaded tables halfway through the measurement
    sqlx::query("vacuum analyze").execute(&mut db).await.unwrap();
    sqlx::query("set hnsw.iterative_scan = strict_order").execute(&mut db).await.unwrap();
    let ef = tenantry_domain::base_ef_search(10);
    sqlx::query(sqlx::AssertSqlSafe(format!("set hnsw.ef_search = {ef}"))).execute(&mut db).await.unwrap();
    println!(
        "[postgres] hnsw.ef_search base = {ef} (the store's for top_k 10; plan_search scales it by index size and tenant share), iterative_scan = strict_order"
    );
    // the search statement raw: HNSW under the tenant filter, or (`exact`) the tenant's rows in
    // an order no index serves
    let search = |index: &str, exact: bool| {
        let distance =
            if exact { "(c.embedding <=> $1) + 0".to_owned() } else { format!("c.embedding::vector({DIMS}) <=> $1") };
        format!(
            "select k.document_id, k.chunk_index, k.content, k.metadata, d.title
             from (select c.document_id, c.chunk_index, c.content, c.metadata, {distance} as distance
                   from chunks c where c.index_name = '{index}' and c.tenant_id = $2 and c.metadata @> '{{}}'
                   order by {distance} limit 10) k
             join documents d on d.tenant_id = $2 and d.document_id = k.document_id order by k.distance"
        )
    };
    for (tenant, index) in measured(&shared, vip) {
        let (tenant, index) = (tenant.as_str(), index);
        // the raw query is the statement the index's search function runs for this tenant, with
        // the same settings: the store's plan for it (`plan_search`: the exact scan, or HNSW at
        // that ef_search), from the same counts; and a pool like the store's (4
        // connections, handed out in turn), so that both sides pay the same for spreading
        // queries over several server processes
        let tenant_ef = match store.search_plan(&s.scope(tenant), index, 10, false).await.unwrap() {
            tenantry_domain::SearchPlan::Exact => 0,
            tenantry_domain::SearchPlan::Hnsw { ef_search } => ef_search,
        };
        let exact = tenant_ef == 0;
        let sql = search(index, exact);
        let sort = if exact { "on" } else { "off" };
        let options = superuser_url.as_str().parse::<sqlx::postgres::PgConnectOptions>().unwrap().options([
            ("hnsw.iterative_scan", "strict_order".to_owned()),
            ("hnsw.ef_search", tenant_ef.max(1).to_string()),
            ("enable_sort", sort.to_owned()),
            ("enable_seqscan", "off".to_owned()),
            ("enable_bitmapscan", "off".to_owned()),
        ]);
        let raw_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(app.pool_size)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .unwrap();
        let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("explain {sql}")))
            .bind(PgVector(&s.queries[0]))
            .bind(tenant)
            .fetch_all(&raw_pool)
            .await
            .unwrap();
        assert_eq!(plan.iter().any(|(l,)| l.contains("hnsw")), !exact, "{plan:?}");
        let (raw, scoped) = interleaved!(s, tenant, |v| {
            let t = Instant::now();
            let rows: Vec<(String, i32, String, Value, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(PgVector(v))
                .bind(tenant)
                .fetch_all(&raw_pool)
                .await
                .unwrap();
            let took = t.elapsed();
            assert_eq!(rows.len(), 10);
            took
        });
        raw_pool.close().await;
        let what = if exact {
            format!("{tenant} on {index} (exact scan)")
        } else {
            format!("{tenant} on {index} (HNSW, ef_search {tenant_ef})")
        };
        report("postgres", &what, &raw, &scoped);
    }

    // recall@10 against the exact answer (an ordering no index serves), over the queries
    // BENCH_EF_SWEEP=100,200,400: recall and time of the forced HNSW search at other ef_search
    let sweep: Vec<u32> = std::env::var("BENCH_EF_SWEEP")
        .map(|l| l.split(',').map(|n| n.trim().parse().expect("BENCH_EF_SWEEP: numbers")).collect())
        .unwrap_or_default();
    let exact = |index: &str| {
        format!(
            "select document_id, chunk_index from chunks where index_name = '{index}' and tenant_id = $2
             and metadata @> $3 order by (embedding <=> $1) + 0 limit 10"
        )
    };
    let forced = |index: &str| {
        format!(
            "select document_id, chunk_index from chunks where index_name = '{index}' and tenant_id || '' = $2
             order by embedding::vector({DIMS}) <=> $1 limit 10"
        )
    };
    for (tenant, index) in measured(&shared, vip) {
        let (tenant, index) = (tenant.as_str(), index);
        let scope = s.scope(tenant);
        let mut recall = 0.0f64;
        let mut filtered = (0.0f64, 0.0f64); // recall, ms
        let mut swept = vec![(0.0f64, 0.0f64); 1 + sweep.len()];
        for (q, v) in s.queries.iter().enumerate() {
            // the query unfiltered, and filtered to one kind (a tenth of the tenant's chunks)
            let mut answers = Vec::new();
            for filter in [Value::Null, serde_json::json!({ "kind": format!("k{}", q % 10) })] {
                let spec = QuerySpec::new(None, Some(v.clone()), Some(10), &filter, DIMS).unwrap();
                let t = Instant::now();
                let got: Vec<(String, i32)> = s
                    .plane
                    .query(&scope, spec)
                    .await
                    .unwrap()
                    .hits
                    .into_iter()
                    .map(|h| (h.document_id.to_string(), h.chunk_index))
                    .collect();
                let took = t.elapsed().as_secs_f64() * 1e3;
                let truth: Vec<(String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(exact(index)))
                    .bind(PgVector(v))
                    .bind(tenant)
                    .bind(if filter.is_null() { serde_json::json!({}) } else { filter.clone() })
                    .fetch_all(&mut db)
                    .await
                    .unwrap();
                answers.push((got, truth, took));
            }
            let (got, truth, _) = &answers[0];
            recall += overlap(got, truth);
            let (got_f, truth_f, took_f) = &answers[1];
            filtered.0 += overlap(got_f, truth_f);
            filtered.1 += took_f;
            // the HNSW index forced (no sort, no btree for the tenant filter): iterative scan, at
            // the store's ef_search and at each of BENCH_EF_SWEEP's
            sqlx::raw_sql("set enable_sort = off; set enable_seqscan = off; set enable_bitmapscan = off")
                .execute(&mut db)
                .await
                .unwrap();
            for (i, e) in std::iter::once(ef).chain(sweep.iter().copied()).enumerate() {
                sqlx::query(sqlx::AssertSqlSafe(format!("set hnsw.ef_search = {e}"))).execute(&mut db).await.unwrap();
                let t = Instant::now();
                let hnsw: Vec<(String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(forced(index)))
                    .bind(PgVector(v))
                    .bind(tenant)
                    .fetch_all(&mut db)
                    .await
                    .unwrap();
                swept[i].1 += t.elapsed().as_secs_f64() * 1e3;
                swept[i].0 += overlap(&hnsw, truth);
            }
            sqlx::raw_sql("reset enable_sort; reset enable_seqscan; reset enable_bitmapscan")
                .execute(&mut db)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("set hnsw.ef_search = {ef}"))).execute(&mut db).await.unwrap();
        }
        let n = s.queries.len() as f64;
        println!(
            "[postgres] recall@10 vs exact, {tenant} on {index}, {} queries: scoped path {:.3}, HNSW index forced at ef_search {ef} {:.3}",
            s.queries.len(),
            recall / n,
            swept[0].0 / n
        );
        println!(
            "[postgres]   {tenant}: filtered to a tenth of its chunks (metadata kind): scoped recall@10 {:.3}, {:.2} ms per query",
            filtered.0 / n,
            filtered.1 / n
        );
        for (e, (r, ms)) in sweep.iter().zip(&swept[1..]) {
            println!(
                "[postgres]   {tenant}: HNSW forced at ef_search {e}: recall@10 {:.3}, {:.2} ms per query",
                r / n,
                ms / n
            );
        }
    }
}

async fn sqlite() {
    let dir = std::env::temp_dir().join(format!("tenantry-bench-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(tenantry_store_sqlite::SqliteStore::open(&dir).await.unwrap());
    let pool = store.pool().clone();
    let s = setup(store, "sqlite", &shared_docs(), 0).await;
    // raw: the store's own two statements (exact scan, then the winners' text, titles and vectors)
    // and its scoring, straight from the pool: no scope, no placement lookup, no lifecycle gate or
    // limiter
    let (raw, scoped) = interleaved!(s, "bench-0", |v| {
        let t = Instant::now();
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("select rowid, embedding from chunks where tenant_id = ? and index_name = ?")
                .bind("bench-0")
                .bind("shared-1")
                .fetch_all(&pool)
                .await
                .unwrap();
        let mut scored: Vec<(f32, i64)> =
            rows.iter().map(|(id, b)| (tenantry_store_sql::documents::cosine_to_bytes(v, b), *id)).collect();
        scored.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(10);
        let ids = serde_json::Value::from(scored.iter().map(|(_, id)| *id).collect::<Vec<_>>()).to_string();
        type Winner = (i64, String, i32, String, String, String, Vec<u8>);
        let winners: Vec<Winner> = sqlx::query_as(
            "select c.rowid, c.document_id, c.chunk_index, c.content, c.metadata, d.title, c.embedding from chunks c
             join documents d on d.tenant_id = c.tenant_id and d.document_id = c.document_id
             where c.tenant_id = ? and c.index_name = ? and c.rowid in (select value from json_each(?))",
        )
        .bind("bench-0")
        .bind("shared-1")
        .bind(ids)
        .fetch_all(&pool)
        .await
        .unwrap();
        let took = t.elapsed();
        assert_eq!(winners.len(), 10);
        took
    });
    report("sqlite", "bench-0 (exact scan)", &raw, &scoped);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // BENCH_ONLY=sqlite or BENCH_ONLY=postgres runs one half
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "postgres" {
        sqlite().await;
    }
    if only != "sqlite" {
        postgres().await;
    }
}
