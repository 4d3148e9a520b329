//! The data-plane commands (`docs`, `query`, `index`, `seed-data`) and the composition of the
//! data plane from the command line's settings (object storage, embedding provider, chunking,
//! capacity, alert webhook).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use tenantry_app::{
    AlertSink, AppError, DataPlane, DataPlaneConfig, Embedder, LocalEmbedder, LogAlerts, PlatformScope, Registry,
};
use tenantry_blob::{BlobConfig, ObjectBlobStore, S3Config};
use tenantry_domain::chunking::ChunkConfig;
use tenantry_domain::{
    CapacityAlert, CapacityPolicy, DocumentId, NewDocument, NewTenant, QuerySpec, TenantId, TierName,
};
use tenantry_http::documents::{DocumentView, HitView, IndexView};

use crate::cli::{DocsCmd, Global, IndexCmd};
use crate::commands::CliError;
use crate::output::Out;

type Result<T> = std::result::Result<T, CliError>;

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// Logs and counts alerts, and POSTs them to a webhook when one is configured.
pub struct Alerts {
    log: LogAlerts,
    webhook: Option<(String, reqwest::Client)>,
    /// Webhook deliveries in flight, so a short-lived command can wait for them before exiting.
    pending: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Alerts {
    /// Waits for every webhook delivery started so far (each has its own 10 s timeout).
    pub async fn drain(&self) {
        let pending: Vec<_> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in pending {
            let _ = handle.await;
        }
    }
}

impl AlertSink for Alerts {
    fn fired(&self) -> u64 {
        self.log.fired()
    }
    fn destination(&self) -> String {
        match &self.webhook {
            Some((url, _)) => format!("{} and the webhook {url} (reachability is not probed)", self.log.destination()),
            None => format!("{} (no webhook configured: --capacity-webhook-url)", self.log.destination()),
        }
    }
    fn capacity_alert(&self, alert: &CapacityAlert) {
        self.log.capacity_alert(alert);
        if let Some((url, client)) = &self.webhook {
            let body = json!({
                "event": "index_capacity_alert", "index": alert.index.as_str(), "used": alert.used,
                "capacity": alert.capacity,
            });
            let (url, client) = (url.clone(), client.clone());
            let handle = tokio::spawn(async move {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                if let Err(e) = sent {
                    tracing::error!(url = url.as_str(), error = %e, "capacity alert webhook failed");
                }
            });
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|h| !h.is_finished());
            pending.push(handle);
        }
    }
}

pub fn blob_store(g: &Global) -> Result<Arc<ObjectBlobStore>> {
    let config = match &g.data.s3_bucket {
        Some(bucket) if !bucket.is_empty() => BlobConfig::S3(S3Config {
            bucket: bucket.clone(),
            endpoint: g.data.s3_endpoint.clone(),
            region: g.data.s3_region.clone(),
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            allow_http: g.data.s3_endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
        }),
        _ => BlobConfig::Local(g.data_dir.join("objects")),
    };
    Ok(Arc::new(ObjectBlobStore::open(&config).map_err(CliError::Failed)?))
}

fn embedder(g: &Global) -> Result<Arc<dyn Embedder>> {
    let a = &g.data;
    if !(1..=16000).contains(&a.embedding_dimensions) {
        return Err(usage("--embedding-dimensions must be between 1 and 16000"));
    }
    match a.embedding_provider.as_str() {
        "local" => Ok(Arc::new(LocalEmbedder::new(a.embedding_dimensions))),
        "openai" => {
            let config = tenantry_embed::OpenAiConfig {
                base_url: a.embedding_url.clone(),
                model: a.embedding_model.clone(),
                api_key: a.embedding_api_key.clone(),
                dimensions: a.embedding_dimensions,
                ..Default::default()
            };
            Ok(Arc::new(tenantry_embed::OpenAiEmbedder::new(config).map_err(usage)?))
        }
        "minilm" => minilm(g),
        other => Err(usage(format!("--embedding-provider {other:?} is not one of local, minilm, openai"))),
    }
}

/// The offline semantic embedder, from `--embedding-model-dir` (default
/// `<data-dir>/models/all-MiniLM-L6-v2`, where `scripts/setup-minilm.sh` installs it).
#[cfg(feature = "minilm")]
fn minilm(g: &Global) -> Result<Arc<dyn Embedder>> {
    if g.data.embedding_dimensions != tenantry_minilm::DIMENSIONS {
        return Err(usage(format!(
            "--embedding-provider minilm makes {}-dimensional vectors; --embedding-dimensions is {}",
            tenantry_minilm::DIMENSIONS,
            g.data.embedding_dimensions
        )));
    }
    let dir = g.data.embedding_model_dir.clone().unwrap_or_else(|| g.data_dir.join("models").join("all-MiniLM-L6-v2"));
    Ok(Arc::new(tenantry_minilm::MiniLm::load(&dir).map_err(|e| CliError::Usage(format!("{e:#}")))?))
}

#[cfg(not(feature = "minilm"))]
fn minilm(_: &Global) -> Result<Arc<dyn Embedder>> {
    Err(usage("--embedding-provider minilm needs a tenantry built with the `minilm` feature (on by default)"))
}

/// The data plane's parts as configured: embedder, object storage, alert sink (also returned
/// as itself, to drain webhook deliveries before exit) and chunking/capacity settings.
pub struct DataParts {
    pub embedder: Arc<dyn tenantry_app::Embedder>,
    pub blobs: Arc<dyn tenantry_app::BlobStore>,
    pub alerts: Arc<Alerts>,
    pub config: DataPlaneConfig,
}

pub fn data_parts(g: &Global) -> Result<DataParts> {
    let a = &g.data;
    let chunking = ChunkConfig::new(a.chunk_size, a.chunk_overlap).map_err(usage)?;
    let capacity = CapacityPolicy::new(a.index_capacity, a.index_alert_threshold).map_err(usage)?;
    let webhook = match a.capacity_webhook_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| CliError::Failed(e.into()))?;
            Some((url.to_owned(), client))
        }
        None => None,
    };
    let alerts = Arc::new(Alerts { log: LogAlerts::default(), webhook, pending: Default::default() });
    Ok(DataParts {
        embedder: embedder(g)?,
        blobs: blob_store(g)?,
        alerts,
        config: DataPlaneConfig { chunking, capacity },
    })
}

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(usage)
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// A one-line progress bar on stderr.
struct Progress {
    total: usize,
    done: usize,
    enabled: bool,
}

impl Progress {
    fn step(&mut self, n: usize, note: &str) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let width = 30;
        let filled = (self.done * width).checked_div(self.total).unwrap_or(width);
        let bar: String = "#".repeat(filled) + &" ".repeat(width - filled.min(width));
        eprint!("\r[{bar}] {}/{} {note:<30}", self.done, self.total);
        let _ = std::io::stderr().flush();
        if self.done >= self.total {
            eprintln!();
        }
    }
}

fn files_under(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    if meta.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| usage(format!("{}: {e}", dir.display())))?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

pub async fn docs(plane: &DataPlane, admin: &PlatformScope, cmd: DocsCmd, out: &Out) -> Result<()> {
    match cmd {
        DocsCmd::Ingest { tenant, path, metadata, batch_size, quiet } => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            if !(1..=100).contains(&batch_size) {
                return Err(usage("--batch-size must be between 1 and 100"));
            }
            let metadata: Value = match metadata {
                Some(m) => serde_json::from_str(&m).map_err(|e| usage(format!("--metadata is not valid JSON: {e}")))?,
                None => Value::Null,
            };
            let files = files_under(&path)?;
            let root = if path.is_dir() { path.clone() } else { path.parent().map(Path::to_owned).unwrap_or_default() };
            let mut progress = Progress { total: files.len(), done: 0, enabled: !quiet && !out.json };
            let (mut stored, mut skipped, mut refused) = (Vec::new(), Vec::new(), Vec::new());
            for batch in files.chunks(batch_size) {
                let mut docs = Vec::new();
                for file in batch {
                    let rel = file.strip_prefix(&root).unwrap_or(file).display().to_string();
                    let text = match std::fs::read(file).map(String::from_utf8) {
                        Ok(Ok(t)) => t,
                        _ => {
                            refused.push(json!({"file": rel, "reason": "not a readable UTF-8 text file"}));
                            continue;
                        }
                    };
                    let title =
                        file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| rel.clone());
                    match NewDocument::new(&title, text, &metadata, Some(&rel)) {
                        Ok(d) => docs.push(d),
                        Err(e) => refused.push(json!({"file": rel, "reason": e.to_string()})),
                    }
                }
                if !docs.is_empty() {
                    match ingest_paced(plane, &scope, docs.clone()).await {
                        Ok(s) => stored.extend(s),
                        // one file of the batch is stored already: go one by one, skipping those
                        Err(AppError::AlreadyExists(_)) => {
                            for d in docs {
                                let name = d.client_id.clone().unwrap_or_default();
                                match ingest_paced(plane, &scope, vec![d]).await {
                                    Ok(s) => stored.extend(s),
                                    Err(AppError::AlreadyExists(_)) => skipped.push(name),
                                    Err(e) => return Err(e.into()),
                                }
                            }
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                progress.step(batch.len(), "");
            }
            if out.json {
                let views: Vec<DocumentView> = stored.iter().map(|d| DocumentView::of(scope.tenant(), d)).collect();
                print_json(&json!({"tenant_id": tenant, "stored": views, "skipped": skipped, "refused": refused}));
            } else {
                let chunks: i64 = stored.iter().map(|d| d.chunk_count).sum();
                println!(
                    "ingested {} documents ({chunks} chunks) into {tenant}; {} already stored, {} refused",
                    stored.len(),
                    skipped.len(),
                    refused.len()
                );
                for r in &refused {
                    eprintln!("refused {}: {}", r["file"].as_str().unwrap_or(""), r["reason"].as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
        DocsCmd::List { tenant, limit, after } => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            let after = after.as_deref().map(DocumentId::parse).transpose().map_err(usage)?;
            let docs = plane.list_documents(&scope, after.as_ref(), limit).await?;
            let views: Vec<DocumentView> = docs.iter().map(|d| DocumentView::of(scope.tenant(), d)).collect();
            if out.json {
                print_json(&json!({"tenant_id": tenant, "documents": views}));
            } else {
                println!("{:<36}  {:>7}  {:>6}  TITLE", "DOCUMENT", "BYTES", "CHUNKS");
                for v in views {
                    println!("{:<36}  {:>7}  {:>6}  {}", v.document_id, v.bytes, v.chunks, v.title);
                }
            }
            Ok(())
        }
        DocsCmd::Delete { tenant, document_id } => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            let id = DocumentId::parse(&document_id).map_err(usage)?;
            let d = plane.delete_document(&scope, &id).await?;
            if out.json {
                print_json(&json!({"deleted": DocumentView::of(scope.tenant(), &d)}));
            } else {
                println!("deleted {} ({}) from {tenant} with its {} chunks", d.id, d.title, d.chunk_count);
            }
            Ok(())
        }
    }
}

pub async fn query(
    plane: &DataPlane,
    admin: &PlatformScope,
    tenant: &str,
    text: String,
    top_k: u32,
    filter: Option<String>,
    out: &Out,
) -> Result<()> {
    let scope = admin.act_in(tenant_id(tenant)?);
    let filter: Value = match filter {
        Some(f) => serde_json::from_str(&f).map_err(|e| usage(format!("--filter is not valid JSON: {e}")))?,
        None => Value::Null,
    };
    let spec = QuerySpec::new(Some(text), None, Some(top_k), &filter, plane.embedder().dimensions()).map_err(usage)?;
    let answer = plane.query(&scope, spec).await?;
    let hits: Vec<HitView> = answer.hits.iter().map(HitView::from).collect();
    if out.json {
        print_json(&json!({"tenant_id": tenant, "model": answer.model, "tokens": answer.tokens, "results": hits}));
    } else if hits.is_empty() {
        println!("no results in {tenant}");
    } else {
        for h in hits {
            let snippet: String = h.text.chars().take(100).collect();
            println!("{:.4}  {}#{}  {}\n        {snippet}", h.score, h.document_id, h.chunk_index, h.title);
        }
    }
    Ok(())
}

pub async fn index(plane: &DataPlane, admin: &PlatformScope, cmd: IndexCmd, out: &Out) -> Result<()> {
    match cmd {
        IndexCmd::List => {
            let views: Vec<IndexView> = plane.index_pool(admin).await?.iter().map(IndexView::from).collect();
            if out.json {
                print_json(&json!({"indexes": views}));
            } else {
                println!(
                    "{:<40}  {:<9}  {:>9}  {:>5}  {:>8}  {:>5}",
                    "INDEX", "KIND", "USED/CAP", "USE%", "CHUNKS", "DIMS"
                );
                for v in views {
                    println!(
                        "{:<40}  {:<9}  {:>9}  {:>4.0}%  {:>8}  {:>5}",
                        v.name,
                        v.kind,
                        format!("{}/{}", v.used, v.capacity),
                        v.utilization * 100.0,
                        v.chunks,
                        v.dimensions
                    );
                }
            }
            Ok(())
        }
    }
}

/// Ingests a batch as a well-behaved client does: when the tenant's ingest rate says wait, waits
/// the `Retry-After` it was given and sends the batch again.
async fn ingest_paced(
    plane: &DataPlane,
    scope: &tenantry_app::TenantScope,
    docs: Vec<NewDocument>,
) -> std::result::Result<Vec<tenantry_app::StoredDocument>, AppError> {
    loop {
        match plane.ingest(scope, docs.clone()).await {
            Err(AppError::RateLimited { retry_after_secs, .. }) => {
                tokio::time::sleep(std::time::Duration::from_secs(retry_after_secs.min(60))).await;
            }
            other => return other,
        }
    }
}

pub async fn seed_data(
    registry: &Registry,
    plane: &DataPlane,
    admin: &PlatformScope,
    scale: f64,
    tier: &str,
    out: &Out,
) -> Result<()> {
    if !(scale > 0.0 && scale <= 10.0) {
        return Err(usage("--scale must be in (0, 10]"));
    }
    let tier = TierName::parse(tier).map_err(usage)?;
    let mut report = Vec::new();
    for seed in tenantry_domain::corpus::SEED_TENANTS {
        let (id, docs, words) = (seed.id, seed.documents, seed.words);
        let tenant = tenant_id(id)?;
        let mut new = NewTenant::minimal(tenant.clone(), seed.name, tier.clone());
        new.metadata = json!({"use_case": seed.use_case});
        match registry.create_tenant(admin, new).await {
            Ok(_) | Err(AppError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let scope = admin.act_in(tenant);
        let count = ((docs as f64 * scale).round() as usize).max(1);
        let mut progress = Progress { total: count, done: 0, enabled: !out.json };
        let mut stored = 0usize;
        let started = std::time::Instant::now();
        let batch = 20;
        for start in (0..count).step_by(batch) {
            let end = (start + batch).min(count);
            let docs: Vec<NewDocument> = (start..end)
                .map(|i| {
                    let (title, text) = tenantry_domain::corpus::document(seed.domain, i as u64, words);
                    NewDocument::new(&title, text, &json!({"seed": true, "n": i}), Some(&format!("seed-{i}")))
                        .map_err(usage)
                })
                .collect::<Result<_>>()?;
            match ingest_paced(plane, &scope, docs).await {
                Ok(s) => stored += s.len(),
                Err(AppError::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
            progress.step(end - start, id);
        }
        report.push(json!({"tenant_id": id, "documents": stored, "words_per_document": words,
                           "seconds": started.elapsed().as_secs_f64()}));
    }
    if out.json {
        print_json(&json!({"seeded": report}));
    } else {
        for r in report {
            println!(
                "{}: {} documents of ~{} words in {:.1}s",
                r["tenant_id"].as_str().unwrap_or(""),
                r["documents"],
                r["words_per_document"],
                r["seconds"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}
