//! What `ask` adds around the provider call: retrieval (embedding the question, the vector
//! search), rerank, prompt rendering, metering, pricing and the audit entry — the wall time of an
//! answer as the HTTP shell runs it (usage gathered, then recorded before the answer leaves)
//! minus the time spent in the provider, per answer, p50 and p99. The provider is the local
//! stand-in speaking the OpenAI API over loopback and answering at once; a tenant of 200
//! documents; answers one after another. Embedded store on a file, and PostgreSQL when
//! `DATABASE_URL` is set.
//!
//! `cargo bench -p tenantry-cli --bench ask` (`ASK_N` sets the answers per configuration, default 2000)

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tenantry_app::ports::Store;
use tenantry_app::{App, AppConfig, AskRequest, LocalEmbedder, Providers, SystemClock};
use tenantry_blob::{BlobConfig, ObjectBlobStore};
use tenantry_domain::cost::Meter;
use tenantry_domain::pricing::Price;
use tenantry_domain::rag::RagSettings;
use tenantry_domain::{Currency, Label, NewDocument, NewTenant, TenantId, TierName};
use tenantry_llm::{Api, HttpProvider, ProviderConfig};

async fn app(store: Arc<dyn Store>, objects: &std::path::Path, base_url: &str) -> App {
    let blobs = Arc::new(ObjectBlobStore::open(&BlobConfig::Local(objects.to_path_buf())).unwrap());
    let provider = ProviderConfig {
        name: "standin".into(),
        api: Api::Openai,
        base_url: base_url.into(),
        api_key_env: None,
        models: vec!["echo-1".into()],
        rerank_models: vec![],
        timeout_secs: 10,
        max_retries: 0,
        backoff_ms: 10,
        max_concurrency: 64,
    };
    let providers = Providers::default().with(Arc::new(HttpProvider::new(provider, None).unwrap())).unwrap();
    let local = AppConfig::local(store, Arc::new(SystemClock), Arc::new(LocalEmbedder::new(384)), blobs);
    App::build(AppConfig { providers, ..local }).await.unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(name: &str, app: &App, n: usize) {
    let admin = app.operator("bench");
    let tenant = TenantId::parse("bench-ask").unwrap();
    app.registry
        .create_tenant(&admin, NewTenant::minimal(tenant.clone(), "Bench", TierName::parse("gold").unwrap()))
        .await
        .unwrap();
    let scope = admin.act_in(tenant.clone());
    // the bench measures the answer path, not the tenant's query limits
    let unlimited = tenantry_domain::LimitOverrides {
        max_queries_per_day: Some(1_000_000_000),
        rate_limit_per_minute: Some(1_000_000_000),
        ..Default::default()
    };
    let current = app.registry.get_tenant(&scope).await.unwrap();
    app.registry
        .update_tenant(
            &scope,
            tenantry_domain::TenantPatch { limits: unlimited, ..Default::default() },
            Some(current.version),
        )
        .await
        .unwrap();
    for batch in 0..10 {
        let docs: Vec<NewDocument> = (0..20)
            .map(|i| {
                let (title, text) =
                    tenantry_domain::corpus::document(tenantry_domain::corpus::Domain::Support, batch * 20 + i, 150);
                NewDocument::new(&title, text, &json!({}), None).unwrap()
            })
            .collect();
        app.data.ingest(&scope, docs).await.unwrap();
    }
    for meter in [Meter::LlmInputTokens, Meter::LlmOutputTokens] {
        let price = Price::new(
            meter,
            Some(Label::parse("standin/echo-1").unwrap()),
            Label::parse("standin").unwrap(),
            Currency::parse("USD").unwrap(),
            "0.5".parse().unwrap(),
            time::macros::date!(2020 - 01 - 01),
        )
        .unwrap();
        app.costs.set_price(&admin, price).await.unwrap();
    }
    for (label, settings) in [
        ("extractive, top_k 5", RagSettings::default()),
        (
            "stand-in, top_k 5",
            RagSettings { provider: Some("standin".into()), model: Some("echo-1".into()), ..Default::default() },
        ),
        (
            "stand-in, top_k 5, lexical rerank of 20",
            RagSettings {
                provider: Some("standin".into()),
                model: Some("echo-1".into()),
                rerank: Some(tenantry_domain::rag::Rerank::Lexical),
                ..Default::default()
            },
        ),
    ] {
        app.answers.set_tenant_config(&scope, settings, None, None).await.unwrap();
        let question = "How do I reset the password when the reset email never arrives?";
        for _ in 0..50 {
            app.answers
                .ask(&scope, AskRequest { question: question.into(), ..Default::default() }, None)
                .await
                .unwrap();
        }
        let (mut added, mut total, mut retrieve) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let started = Instant::now();
        for _ in 0..n {
            // as the HTTP shell runs it: the request's usage gathered, then recorded before the answer leaves
            let t = Instant::now();
            let request = AskRequest { question: question.into(), ..Default::default() };
            let (a, collected) = tenantry_app::metering::collect(app.answers.ask(&scope, request, None)).await;
            let a = a.unwrap();
            app.metering.record(collected.events).await.unwrap();
            let wall = t.elapsed().as_secs_f64() * 1000.0;
            added.push(wall - a.timings.generate_ms);
            total.push(wall);
            retrieve.push(a.timings.retrieve_ms);
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        added.sort_by(f64::total_cmp);
        total.sort_by(f64::total_cmp);
        retrieve.sort_by(f64::total_cmp);
        println!(
            "{name:<8} {label:<40} added p50 {:.2} ms p99 {:.2} ms (retrieval p50 {:.2} ms p99 {:.2} ms) | total p50 {:.2} ms p99 {:.2} ms | {rate:.0} answers/s",
            percentile(&added, 0.5),
            percentile(&added, 0.99),
            percentile(&retrieve, 0.5),
            percentile(&retrieve, 0.99),
            percentile(&total, 0.5),
            percentile(&total, 0.99),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("ASK_N").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let standin = tenantry_llm::standin::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("tenantry-bench-ask-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sqlite: Arc<dyn Store> = Arc::new(tenantry_store_sqlite::SqliteStore::open(&dir).await.unwrap());
    run("sqlite", &app(sqlite, &dir.join("objects"), &standin.base_url).await, n).await;
    let _ = std::fs::remove_dir_all(&dir);
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        let mut config = tenantry_store_postgres::testing::fresh_config().await.unwrap();
        config.migrate = false;
        let pg: Arc<dyn Store> = Arc::new(tenantry_store_postgres::PgStore::connect(&config).await.unwrap());
        let objects = std::env::temp_dir().join(format!("tenantry-bench-ask-objects-{}", std::process::id()));
        run("postgres", &app(pg, &objects, &standin.base_url).await, n).await;
        let _ = std::fs::remove_dir_all(&objects);
    } else {
        println!("postgres: skipped (set DATABASE_URL)");
    }
}
