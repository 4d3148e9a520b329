//! The data plane's use-cases: place a tenant on a physical index, ingest documents (chunk, embed,
//! keep the raw text in object storage, store chunks and vectors), list and delete them, and query
//! them — always inside one tenant's scope, gated by its lifecycle status, its role permissions
//! and its quotas.
//!
//! Ports used besides the `Store`: [`Embedder`] (the built-in [`LocalEmbedder`] or an HTTP
//! provider), [`BlobStore`] (object storage for raw documents) and [`AlertSink`] (capacity alerts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use time::OffsetDateTime;

use tenantry_domain::chunking::{ChunkConfig, chunk};
use tenantry_domain::documents::{data_access_allowed, object_key};
use tenantry_domain::embedding::local_embedding;
use tenantry_domain::placement::place;
use tenantry_domain::{
    CapacityAlert, CapacityPolicy, DataAccess, DataUsage, DocumentId, IngestQuota, NewDocument, Permission,
    PlacementPlan, QueryInput, QuerySpec, Tenant, TenantId,
};

use crate::access::{PlatformScope, TenantScope};
use crate::budget::{BudgetGuard, Reservation, usage_of};
use crate::cache::ConfigCache;
use crate::error::{AppError, StoreError};
use crate::metering::{Metering, OperationUsage, model_label, operation_id};
use crate::operations::AuditOp;
use crate::ports::{
    AuditRecord, ChunkHit, Clock, DocumentWrite, IndexUsage, Store, StoredChunk, StoredDocument, TenantPlacement,
};
use tenantry_domain::cost::Meter as UsageMeter;

/// The compute time a budget reservation assumes for one request (settled with the measured).
const ESTIMATED_COMPUTE_MICROS: u64 = 1_000_000;

/// Most documents accepted in one ingest request.
pub const MAX_BATCH: usize = 100;

/// One embedded text.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vector: Vec<f32>,
    /// Tokens the provider counted (what it bills).
    pub tokens: u32,
}

/// An embedding provider.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model name recorded with every document.
    fn model(&self) -> &str;
    fn dimensions(&self) -> usize;
    /// One embedding per text, in order.
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Embedded>, anyhow::Error>;
}

/// The offline embedder (`tenantry_domain::embedding`): lexical, deterministic, no network.
/// Tokens are counted as words.
pub struct LocalEmbedder {
    dimensions: usize,
}

impl LocalEmbedder {
    pub const MODEL: &'static str = "tenantry-local-hash-v1";

    pub fn new(dimensions: usize) -> Self {
        Self { dimensions: dimensions.max(1) }
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        Self::MODEL
    }
    fn dimensions(&self) -> usize {
        self.dimensions
    }
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Embedded>, anyhow::Error> {
        Ok(texts
            .iter()
            .map(|t| Embedded {
                vector: local_embedding(t, self.dimensions),
                tokens: t.split_whitespace().count() as u32,
            })
            .collect())
    }
}

/// Object storage for raw documents. Keys come only from `tenantry_domain::documents::object_key`.
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes the object; an absent object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key under `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// Where capacity alerts go (log line, metric, webhook: the shell composes them).
pub trait AlertSink: Send + Sync {
    fn capacity_alert(&self, alert: &CapacityAlert);
    /// Alerts raised by this process so far (the metric).
    fn fired(&self) -> u64;
    /// Where the alerts go, in words.
    fn destination(&self) -> String {
        "the log and the metric tenantry_index_capacity_alerts_total".to_owned()
    }
}

/// Logs alerts as warnings and counts them (for `/metrics`).
#[derive(Default)]
pub struct LogAlerts {
    fired: std::sync::atomic::AtomicU64,
}

impl AlertSink for LogAlerts {
    fn fired(&self) -> u64 {
        self.fired.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn capacity_alert(&self, alert: &CapacityAlert) {
        self.fired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            index = alert.index.as_str(),
            used = alert.used,
            capacity = alert.capacity,
            "shared index reached its capacity alert threshold; a standby index was provisioned"
        );
    }
}

/// Settings of the data plane.
#[derive(Debug, Clone, Copy, Default)]
pub struct DataPlaneConfig {
    pub chunking: ChunkConfig,
    pub capacity: CapacityPolicy,
}

/// What a query answers.
#[derive(Debug, Clone)]
pub struct QueryAnswer {
    pub hits: Vec<ChunkHit>,
    /// Tokens the query text cost to embed (0 for a vector query).
    pub tokens: u32,
    pub model: String,
}

/// The document's object: what was submitted, kept verbatim.
#[derive(serde::Serialize, serde::Deserialize)]
struct RawDocument {
    id: String,
    title: String,
    text: String,
    metadata: serde_json::Value,
    client_id: Option<String>,
}

/// The data-plane service. Cheap to clone.
#[derive(Clone)]
pub struct DataPlane {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    embedder: Arc<dyn Embedder>,
    blobs: Arc<dyn BlobStore>,
    alerts: Arc<dyn AlertSink>,
    cache: ConfigCache,
    config: DataPlaneConfig,
    meter: Arc<dyn QueryMeter>,
    /// Where the usage of the work done goes (the cost ledger); `None`: not metered.
    metering: Option<Metering>,
    /// Holds budgets of tenants that block on them; `None`: no hard stop.
    budget: Option<BudgetGuard>,
    /// Recorded placements: written once when a tenant is placed, so safe to keep (moving a
    /// tenant between indexes must drop its entry — see ARCHITECTURE, "Data plane").
    placements: Arc<Mutex<HashMap<TenantId, TenantPlacement>>>,
}

impl DataPlane {
    /// Reads the tenant record (status, limits) from `cache` on every request, so a suspension or
    /// a raised limit takes effect on the next request on every replica.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cache: ConfigCache,
        embedder: Arc<dyn Embedder>,
        blobs: Arc<dyn BlobStore>,
        alerts: Arc<dyn AlertSink>,
        config: DataPlaneConfig,
    ) -> Self {
        Self {
            store,
            clock,
            embedder,
            blobs,
            alerts,
            cache,
            config,
            meter: Arc::new(QueryLimiter::default()),
            metering: None,
            budget: None,
            placements: Arc::default(),
        }
    }

    /// Meters the work done (embedding tokens, vector queries, compute time) into `metering`.
    pub fn with_metering(mut self, metering: Metering) -> Self {
        self.metering = Some(metering);
        self
    }

    /// Refuses requests past the budget of tenants that block on theirs (see `budget.rs`).
    pub fn with_budget(mut self, budget: BudgetGuard) -> Self {
        self.budget = Some(budget);
        self
    }

    async fn hold_budget(
        &self,
        tenant: &Tenant,
        estimate: &[crate::budget::Usage<'_>],
    ) -> Result<Option<Reservation>, AppError> {
        match &self.budget {
            Some(guard) => guard.reserve(tenant, estimate).await,
            None => Ok(None),
        }
    }

    /// Settles the operation's budget reservation with what it used (and the API call the
    /// shell bills for it), then records the usage before the operation is answered.
    async fn settle_and_bill(&self, hold: Option<Reservation>, usage: OperationUsage) -> Result<(), AppError> {
        let events = usage.into_events();
        if let Some(hold) = hold {
            let mut used = usage_of(&events);
            used.push((UsageMeter::ApiCalls, None, 1));
            hold.settle(&used).await;
        }
        match &self.metering {
            Some(m) => m.meter(events).await,
            None => Ok(()),
        }
    }

    /// The usage of one operation on the tenant, begun now.
    fn usage_of(&self, tenant: &TenantId) -> Result<OperationUsage, AppError> {
        Ok(OperationUsage::new(tenant.clone(), operation_id()?, self.clock.now()))
    }

    /// Counts queries with `meter` (e.g. Redis, shared by every replica) instead of in-process.
    pub fn with_meter(mut self, meter: Arc<dyn QueryMeter>) -> Self {
        self.meter = meter;
        self
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Capacity alerts raised by this process.
    /// Where capacity alerts go, in words (readiness reports it).
    pub fn alert_destination(&self) -> String {
        self.alerts.destination()
    }

    pub fn capacity_policy(&self) -> tenantry_domain::CapacityPolicy {
        self.config.capacity
    }

    pub fn alerts_fired(&self) -> u64 {
        self.alerts.fired()
    }

    /// The tenant, if `access` is allowed in its current status.
    async fn tenant_for(&self, scope: &TenantScope, access: DataAccess) -> Result<Tenant, AppError> {
        let tenant = self.cache.get(scope).await?.snapshot.tenant.clone();
        if !data_access_allowed(tenant.status, access) {
            return Err(AppError::TenantInactive { tenant: tenant.id, status: tenant.status });
        }
        Ok(tenant)
    }

    // ---- placement ------------------------------------------------------------------------------

    /// Places `tenant` on the index pool by its tier's isolation mode, unless it is placed
    /// already (`None`). Raises the plan's capacity alerts.
    pub async fn place(&self, access: &PlatformScope, tenant: &Tenant) -> Result<Option<PlacementPlan>, AppError> {
        let tier =
            self.store.get_tier(&tenant.tier).await?.ok_or_else(|| AppError::TierNotFound(tenant.tier.clone()))?;
        let now = self.clock.now();
        let policy = self.config.capacity;
        let id = tenant.id.clone();
        let decide = move |pool: &[tenantry_domain::PhysicalIndex]| {
            let plan = place(&id, tier.isolation, pool, policy);
            let audit = AuditRecord::by(access.actor(), access.request_id(), Some(&id), now, AuditOp::TenantPlace)
                .change(
                    None,
                    Some(serde_json::json!({
                        "index": plan.placement.index().as_str(),
                        "isolation": tier.isolation.as_str(),
                        "provisioned": plan.provision.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                    })),
                );
            (plan, audit)
        };
        let dimensions = self.embedder.dimensions() as u32;
        let plan = self.store.place_tenant(access, &tenant.id, dimensions, &decide).await?;
        if let Some(plan) = &plan {
            for alert in &plan.alerts {
                self.alerts.capacity_alert(alert);
            }
        }
        Ok(plan)
    }

    /// Every physical index with its usage.
    pub async fn index_pool(&self, access: &PlatformScope) -> Result<Vec<IndexUsage>, AppError> {
        Ok(self.store.index_pool(access).await?)
    }

    /// Where the tenant's vectors are; `tenant_not_found` for a tenant not placed (yet).
    pub async fn placement(&self, scope: &TenantScope) -> Result<TenantPlacement, AppError> {
        scope.require(Permission::ReadTenant)?;
        self.store.tenant_placement(scope).await?.ok_or_else(|| AppError::TenantNotFound(scope.tenant().clone()))
    }

    /// The tenant's recorded placement, from memory once read.
    async fn placement_of(&self, scope: &TenantScope) -> Result<Option<TenantPlacement>, AppError> {
        let known = self.placements.lock().unwrap_or_else(|p| p.into_inner()).get(scope.tenant()).cloned();
        if known.is_some() {
            return Ok(known);
        }
        let stored = self.store.tenant_placement(scope).await?;
        if let Some(p) = &stored {
            self.placements.lock().unwrap_or_else(|p| p.into_inner()).insert(scope.tenant().clone(), p.clone());
        }
        Ok(stored)
    }

    /// The tenant's placement, placing it now if registration did not (a tenant created before
    /// the data plane existed, or whose placement failed after it was created).
    async fn ensure_placed(&self, scope: &TenantScope, tenant: &Tenant) -> Result<TenantPlacement, AppError> {
        if let Some(p) = self.placement_of(scope).await? {
            return Ok(p);
        }
        self.place(&PlatformScope::system("placement"), tenant).await?;
        self.placement_of(scope)
            .await?
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("tenant {} has no placement after placing", tenant.id)))
    }

    // ---- documents ------------------------------------------------------------------------------

    /// Chunks, embeds and stores `docs` (1 to 100) — all of them or none.
    pub async fn ingest(&self, scope: &TenantScope, docs: Vec<NewDocument>) -> Result<Vec<StoredDocument>, AppError> {
        let started = Instant::now();
        scope.require(Permission::ManageDocuments)?;
        if docs.is_empty() || docs.len() > MAX_BATCH {
            return Err(AppError::Invalid(format!("send 1 to {MAX_BATCH} documents per request")));
        }
        let tenant = self.tenant_for(scope, DataAccess::Write).await?;
        let placement = self.ensure_placed(scope, &tenant).await?;
        if placement.dimensions as usize != self.embedder.dimensions() {
            return Err(AppError::Invalid(format!(
                "tenant {}'s index holds {}-dimensional vectors but the embedding model {} makes {}",
                tenant.id,
                placement.dimensions,
                self.embedder.model(),
                self.embedder.dimensions()
            )));
        }
        let quota = IngestQuota::from_limits(&tenant.limits);
        // Refuse early (before embedding) what cannot fit; the store re-checks exactly.
        let usage = self.store.data_usage(scope).await?;
        let bytes: i64 = docs.iter().map(NewDocument::bytes).sum();
        quota.check(usage, docs.len() as i64, bytes).map_err(AppError::QuotaExceeded)?;
        self.admit_ingest(&tenant, docs.len() as i64, bytes).await?;
        let model = model_label(self.embedder.model());
        let hold = self
            .hold_budget(
                &tenant,
                &[
                    // overlapping chunks embed some text twice: at most twice the bytes
                    (UsageMeter::EmbeddingTokens, Some(&model), 2 * bytes.max(0) as u64),
                    (UsageMeter::ApiCalls, None, 1),
                    (UsageMeter::ComputeMicros, None, ESTIMATED_COMPUTE_MICROS),
                ],
            )
            .await?;

        let now = self.clock.now();
        let mut writes = Vec::with_capacity(docs.len());
        let mut objects = Vec::with_capacity(docs.len());
        for doc in docs {
            let id = new_document_id()?;
            let pieces = chunk(&doc.text, self.config.chunking);
            let texts: Vec<&str> = pieces.iter().map(|c| c.text).collect();
            let embedded = self.embedder.embed(&texts).await.map_err(AppError::EmbeddingUnavailable)?;
            if embedded.len() != texts.len() {
                return Err(AppError::Unexpected(anyhow::anyhow!(
                    "the embedder returned {} vectors for {} chunks",
                    embedded.len(),
                    texts.len()
                )));
            }
            let chunks: Vec<StoredChunk> = pieces
                .iter()
                .zip(&embedded)
                .map(|(c, e)| StoredChunk {
                    index: c.index as i32,
                    text: c.text.to_owned(),
                    start: c.start as i64,
                    end: c.end as i64,
                    embedding: e.vector.clone(),
                })
                .collect();
            let key = object_key(&tenant.id, &id);
            let document = StoredDocument {
                id: id.clone(),
                client_id: doc.client_id.clone(),
                title: doc.title.clone(),
                metadata: doc.metadata.clone(),
                bytes: doc.bytes(),
                chunk_count: chunks.len() as i64,
                token_count: embedded.iter().map(|e| i64::from(e.tokens)).sum(),
                embedding_model: self.embedder.model().to_owned(),
                object_key: key.clone(),
                created_at: now,
            };
            let audit = AuditRecord::tenant(scope, now, AuditOp::DocumentIngest)
                .change(None, Some(document_summary(&document)));
            let raw = RawDocument {
                id: id.to_string(),
                title: doc.title,
                text: doc.text,
                metadata: doc.metadata.to_value(),
                client_id: doc.client_id,
            };
            let bytes = serde_json::to_vec(&raw).map_err(|e| AppError::Unexpected(e.into()))?;
            objects.push((key, bytes));
            writes.push(DocumentWrite { document, chunks, audit });
        }

        // Objects first: a stored row always has its object. If the rows do not commit, the
        // objects are removed again.
        let mut written = Vec::with_capacity(objects.len());
        for (key, bytes) in objects {
            if let Err(e) = self.blobs.put(&key, bytes).await {
                self.remove_objects(&written).await;
                return Err(e.into());
            }
            written.push(key);
        }
        // the ingest's usage commits with its documents (an HTTP request's API call too)
        let tokens: u64 = writes.iter().map(|w| w.document.token_count.max(0) as u64).sum();
        let in_request = crate::metering::collecting();
        let events = self
            .usage_of(&tenant.id)?
            .add(UsageMeter::EmbeddingTokens, tokens, Some(self.embedder.model()))?
            .add(UsageMeter::ComputeMicros, elapsed_micros(started), None)?
            .add(UsageMeter::ApiCalls, u64::from(in_request), None)?
            .into_events();
        if let Err(e) = self.store.insert_documents(scope, &writes, quota, &events).await {
            self.remove_objects(&written).await;
            return Err(match e {
                StoreError::AlreadyExists(what) => AppError::AlreadyExists(what),
                StoreError::NotFound(crate::Missing::Placement(_)) => {
                    AppError::Unexpected(anyhow::anyhow!("placement vanished during ingest"))
                }
                other => other.into(),
            });
        }
        if in_request {
            crate::metering::note_call_billed();
        }
        if let Some(hold) = hold {
            let mut used = usage_of(&events);
            if !in_request {
                used.push((UsageMeter::ApiCalls, None, 1));
            }
            hold.settle(&used).await;
        }
        Ok(writes.into_iter().map(|w| w.document).collect())
    }

    /// Removes the objects of a batch whose rows did not commit; what object storage cannot
    /// remove now is recorded as an orphan and removed by the next sweep.
    async fn remove_objects(&self, keys: &[String]) {
        let mut left = Vec::new();
        for key in keys {
            if let Err(e) = self.blobs.delete(key).await {
                tracing::warn!(key = key.as_str(), error = %e, "could not remove an object after a failed ingest");
                left.push(key.clone());
            }
        }
        self.record_orphans(left).await;
    }

    async fn record_orphans(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let janitor = PlatformScope::system("janitor");
        if let Err(e) = self.store.record_orphans(&janitor, &keys, self.clock.now()).await {
            tracing::error!(keys = ?keys, error = %e, "objects left behind could not be recorded; remove them by hand");
        }
    }

    /// Removes the recorded orphan objects that object storage can remove now (at most `limit`);
    /// returns how many went. `serve` runs it periodically.
    pub async fn sweep_orphans(&self, limit: u32) -> Result<usize, AppError> {
        let janitor = PlatformScope::system("janitor");
        let keys = self.store.orphans(&janitor, limit).await?;
        let mut removed = Vec::new();
        for key in keys {
            match self.blobs.delete(&key).await {
                Ok(()) => removed.push(key),
                Err(e) => {
                    tracing::warn!(key = key.as_str(), error = %e, "an orphan object could not be removed yet");
                    break;
                }
            }
        }
        self.store.forget_orphans(&janitor, &removed).await?;
        Ok(removed.len())
    }

    pub async fn list_documents(
        &self,
        scope: &TenantScope,
        after: Option<&DocumentId>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, AppError> {
        scope.require(Permission::QueryDocuments)?;
        self.tenant_for(scope, DataAccess::Read).await?;
        let limit = limit.clamp(1, crate::registry::MAX_PAGE_SIZE);
        Ok(self.store.list_documents(scope, after, limit).await?)
    }

    pub async fn get_document(&self, scope: &TenantScope, id: &DocumentId) -> Result<StoredDocument, AppError> {
        scope.require(Permission::QueryDocuments)?;
        self.tenant_for(scope, DataAccess::Read).await?;
        self.store.get_document(scope, id).await?.ok_or_else(|| AppError::DocumentNotFound(id.clone()))
    }

    /// The document's text as ingested, from object storage.
    pub async fn document_text(&self, scope: &TenantScope, id: &DocumentId) -> Result<String, AppError> {
        let doc = self.get_document(scope, id).await?;
        let bytes = self.blobs.get(&doc.object_key).await?.ok_or_else(|| {
            AppError::Unexpected(anyhow::anyhow!("document {id} has no object at {}", doc.object_key))
        })?;
        let raw: RawDocument = serde_json::from_slice(&bytes).map_err(|e| AppError::Unexpected(e.into()))?;
        if raw.id != id.as_str() {
            return Err(AppError::Unexpected(anyhow::anyhow!("object {} holds document {}", doc.object_key, raw.id)));
        }
        Ok(raw.text)
    }

    /// Removes the document, its chunks and vectors (one transaction with the audit entry), then
    /// its object.
    pub async fn delete_document(&self, scope: &TenantScope, id: &DocumentId) -> Result<StoredDocument, AppError> {
        scope.require(Permission::ManageDocuments)?;
        self.tenant_for(scope, DataAccess::Write).await?;
        let before = self.store.get_document(scope, id).await?.ok_or_else(|| AppError::DocumentNotFound(id.clone()))?;
        let audit = AuditRecord::tenant(scope, self.clock.now(), AuditOp::DocumentDelete)
            .change(Some(document_summary(&before)), None);
        let deleted = self.store.delete_document(scope, id, &audit).await?;
        if let Err(e) = self.blobs.delete(&deleted.object_key).await {
            tracing::warn!(key = deleted.object_key.as_str(), error = %e, "document deleted, its object not yet");
            self.record_orphans(vec![deleted.object_key.clone()]).await;
        }
        Ok(deleted)
    }

    /// The tenant's usage and the quota it counts against (the tenant's limits as they are now).
    pub async fn usage(&self, scope: &TenantScope) -> Result<(DataUsage, IngestQuota), AppError> {
        scope.require(Permission::ReadTenant)?;
        let tenant = self.cache.get(scope).await?.snapshot.tenant.clone();
        let usage = self.store.data_usage(scope).await?;
        Ok((usage, IngestQuota::from_limits(&tenant.limits)))
    }

    // ---- query ----------------------------------------------------------------------------------

    /// The tenant's `top_k` closest chunks. Counted against the tenant's rate limit and daily
    /// query quota before any work is done.
    pub async fn query(&self, scope: &TenantScope, spec: QuerySpec) -> Result<QueryAnswer, AppError> {
        let started = Instant::now();
        scope.require(Permission::QueryDocuments)?;
        let tenant = self.tenant_for(scope, DataAccess::Read).await?;
        self.admit(&tenant).await?;
        let model = model_label(self.embedder.model());
        let text_bytes = match &spec.input {
            QueryInput::Text(t) => t.len() as u64,
            QueryInput::Vector(_) => 0,
        };
        let hold = self
            .hold_budget(
                &tenant,
                &[
                    (UsageMeter::VectorQueries, None, 1),
                    (UsageMeter::EmbeddingTokens, Some(&model), text_bytes),
                    (UsageMeter::ApiCalls, None, 1),
                    (UsageMeter::ComputeMicros, None, ESTIMATED_COMPUTE_MICROS),
                ],
            )
            .await?;
        let (vector, tokens) = match spec.input {
            QueryInput::Vector(v) => (v, 0),
            QueryInput::Text(t) => {
                let mut e = self.embedder.embed(&[t.as_str()]).await.map_err(AppError::EmbeddingUnavailable)?;
                let e =
                    e.pop().ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("the embedder returned nothing")))?;
                (e.vector, e.tokens)
            }
        };
        if vector.len() != self.embedder.dimensions() {
            return Err(AppError::Invalid(format!(
                "vector has {} dimensions; this deployment uses {}",
                vector.len(),
                self.embedder.dimensions()
            )));
        }
        let hits = match self.placement_of(scope).await? {
            Some(placement) => self.store.search(scope, &placement, &vector, spec.top_k, &spec.filter).await?,
            // Not placed yet: nothing was ever ingested.
            None => Vec::new(),
        };
        let usage = self
            .usage_of(&tenant.id)?
            .add(UsageMeter::VectorQueries, 1, None)?
            .add(UsageMeter::EmbeddingTokens, u64::from(tokens), Some(self.embedder.model()))?
            .add(UsageMeter::ComputeMicros, elapsed_micros(started), None)?;
        self.settle_and_bill(hold, usage).await?;
        Ok(QueryAnswer { hits, tokens, model: self.embedder.model().to_owned() })
    }
}

/// Server time since `started`, in whole microseconds (at least 1: the work took some).
fn elapsed_micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1)
}

fn new_document_id() -> Result<DocumentId, AppError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("the OS random source failed: {e}")))?;
    Ok(DocumentId::from_random(u128::from_be_bytes(bytes)))
}

/// What the audit log records of a document (never its text).
pub fn document_summary(d: &StoredDocument) -> serde_json::Value {
    serde_json::json!({
        "document_id": d.id.as_str(), "title": d.title, "client_id": d.client_id, "bytes": d.bytes,
        "chunks": d.chunk_count, "tokens": d.token_count, "model": d.embedding_model,
    })
}

impl DataPlane {
    /// Takes a batch from the tenant's ingest rate (documents and bytes per second). A batch
    /// larger than a full bucket could never pass: refused as invalid, with the size that would.
    async fn admit_ingest(&self, tenant: &Tenant, documents: i64, bytes: i64) -> Result<(), AppError> {
        let limits = &tenant.limits;
        let take = IngestTake {
            documents,
            bytes,
            documents_per_second: limits.ingest_documents_per_second,
            bytes_per_second: limits.ingest_bytes_per_second,
        };
        let (max_documents, max_bytes) = (
            limits.ingest_documents_per_second.saturating_mul(INGEST_BURST_SECONDS),
            limits.ingest_bytes_per_second.saturating_mul(INGEST_BURST_SECONDS),
        );
        if documents > max_documents || bytes > max_bytes {
            return Err(AppError::Invalid(format!(
                "a batch of {documents} documents ({bytes} bytes) is more than tenant {} may ingest at once \
                 ({max_documents} documents, {max_bytes} bytes): send smaller batches",
                tenant.id
            )));
        }
        match self.meter.admit_ingest(&tenant.id, take, self.clock.now()).await {
            Ok(()) => Ok(()),
            Err(Throttled::MeterUnavailable(e)) => {
                tracing::warn!(tenant = tenant.id.as_str(), error = %e, "ingest meter unavailable; ingest served unmetered");
                Ok(())
            }
            Err(
                Throttled::Ingest { retry_after_secs }
                | Throttled::PerMinute { retry_after_secs }
                | Throttled::PerDay { retry_after_secs },
            ) => Err(AppError::RateLimited {
                message: format!(
                    "tenant {} may ingest {} documents and {} bytes per second",
                    tenant.id, limits.ingest_documents_per_second, limits.ingest_bytes_per_second
                ),
                retry_after_secs,
            }),
        }
    }

    /// Counts the query against the tenant's limits (read from its record on every call, so a
    /// raised limit applies to the next query). If the meter itself fails, the query is served
    /// and the failure logged: limits protect capacity, they are not an isolation boundary.
    async fn admit(&self, tenant: &Tenant) -> Result<(), AppError> {
        let limits = &tenant.limits;
        let now = self.clock.now();
        match self.meter.admit(&tenant.id, limits.rate_limit_per_minute, limits.max_queries_per_day, now).await {
            Ok(()) => Ok(()),
            Err(Throttled::PerMinute { retry_after_secs }) => Err(AppError::RateLimited {
                message: format!(
                    "tenant {} is limited to {} queries per minute",
                    tenant.id, limits.rate_limit_per_minute
                ),
                retry_after_secs,
            }),
            Err(Throttled::PerDay { retry_after_secs }) => Err(AppError::RateLimited {
                message: format!(
                    "tenant {} used its {} queries for today (UTC); the quota resets at midnight UTC",
                    tenant.id, limits.max_queries_per_day
                ),
                retry_after_secs,
            }),
            Err(Throttled::Ingest { retry_after_secs }) => Err(AppError::RateLimited {
                message: format!("tenant {} is rate limited", tenant.id),
                retry_after_secs,
            }),
            Err(Throttled::MeterUnavailable(e)) => {
                tracing::warn!(tenant = tenant.id.as_str(), error = %e, "query meter unavailable; query served unmetered");
                Ok(())
            }
        }
    }
}

/// Why a query was not admitted.
#[derive(Debug)]
pub enum Throttled {
    /// The per-minute token bucket is empty.
    PerMinute { retry_after_secs: u64 },
    /// The day's quota is used up.
    PerDay { retry_after_secs: u64 },
    /// The ingest buckets (documents or bytes per second) hold too little for this batch now.
    Ingest { retry_after_secs: u64 },
    /// The meter could not be asked (the query or ingest is served).
    MeterUnavailable(anyhow::Error),
}

/// An ingest bucket holds this many seconds' worth of its rate: the largest burst a tenant can
/// send at once.
pub const INGEST_BURST_SECONDS: i64 = 10;

/// Counts queries per tenant: a token bucket of `per_minute` (refilled evenly over the minute,
/// bursting up to a minute's worth) and a count per UTC day against `per_day`.
#[async_trait]
pub trait QueryMeter: Send + Sync {
    async fn admit(
        &self,
        tenant: &TenantId,
        per_minute: i64,
        per_day: i64,
        now: OffsetDateTime,
    ) -> Result<(), Throttled>;

    /// Takes `documents` and `bytes` from the tenant's two ingest buckets (refilled at the given
    /// rates per second, each holding [`INGEST_BURST_SECONDS`] of its rate), both or neither;
    /// refuses with the wait until both could.
    async fn admit_ingest(&self, tenant: &TenantId, take: IngestTake, now: OffsetDateTime) -> Result<(), Throttled>;
}

/// One ingest's cost and the tenant's ingest rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestTake {
    pub documents: i64,
    pub bytes: i64,
    pub documents_per_second: i64,
    pub bytes_per_second: i64,
}

/// A token bucket's state after refilling at `rate` per second up to `rate × burst seconds`:
/// whether `cost` can be taken, and if not, how many seconds until it could (pure; shared by the
/// in-process meter and mirrored by the Redis script).
pub fn refill(tokens: f64, elapsed_secs: f64, rate: i64, cost: i64) -> (f64, Option<u64>) {
    let rate = rate.max(1) as f64;
    let tokens = (tokens + elapsed_secs.max(0.0) * rate).min(rate * INGEST_BURST_SECONDS as f64);
    let cost = cost as f64;
    if tokens >= cost { (tokens, None) } else { (tokens, Some((((cost - tokens) / rate).ceil() as u64).max(1))) }
}

/// Seconds from `now` to the next UTC midnight (at least 1).
pub fn seconds_to_midnight(now: OffsetDateTime) -> u64 {
    now.date().next_day().map_or(86_400, |d| (d.midnight().assume_utc() - now).whole_seconds().max(1) as u64)
}

/// The in-process meter: exact for one replica; with several, each counts only its own queries
/// (use the Redis meter there).
#[derive(Default)]
pub struct QueryLimiter {
    meters: Mutex<HashMap<TenantId, Meter>>,
    ingest: Mutex<HashMap<TenantId, IngestBuckets>>,
}

struct IngestBuckets {
    documents: f64,
    bytes: f64,
    refilled_at: OffsetDateTime,
}

struct Meter {
    tokens: f64,
    refilled_at: OffsetDateTime,
    day: time::Date,
    today: i64,
}

#[async_trait]
impl QueryMeter for QueryLimiter {
    async fn admit(
        &self,
        tenant: &TenantId,
        per_minute: i64,
        per_day: i64,
        now: OffsetDateTime,
    ) -> Result<(), Throttled> {
        let per_minute = per_minute.max(0) as f64;
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        let m = meters.entry(tenant.clone()).or_insert(Meter {
            tokens: per_minute,
            refilled_at: now,
            day: now.date(),
            today: 0,
        });
        if m.day != now.date() {
            m.day = now.date();
            m.today = 0;
        }
        let elapsed = (now - m.refilled_at).as_seconds_f64().max(0.0);
        m.tokens = (m.tokens + elapsed * per_minute / 60.0).min(per_minute);
        m.refilled_at = now;
        if m.today >= per_day {
            return Err(Throttled::PerDay { retry_after_secs: seconds_to_midnight(now) });
        }
        if m.tokens < 1.0 {
            let wait = if per_minute > 0.0 { ((1.0 - m.tokens) * 60.0 / per_minute).ceil() as u64 } else { 60 };
            return Err(Throttled::PerMinute { retry_after_secs: wait.max(1) });
        }
        m.tokens -= 1.0;
        m.today += 1;
        Ok(())
    }

    async fn admit_ingest(&self, tenant: &TenantId, take: IngestTake, now: OffsetDateTime) -> Result<(), Throttled> {
        let mut buckets = self.ingest.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(tenant.clone()).or_insert(IngestBuckets {
            documents: (take.documents_per_second.max(1) * INGEST_BURST_SECONDS) as f64,
            bytes: (take.bytes_per_second.max(1) * INGEST_BURST_SECONDS) as f64,
            refilled_at: now,
        });
        let elapsed = (now - b.refilled_at).as_seconds_f64();
        let (documents, wait_documents) = refill(b.documents, elapsed, take.documents_per_second, take.documents);
        let (bytes, wait_bytes) = refill(b.bytes, elapsed, take.bytes_per_second, take.bytes);
        b.refilled_at = now;
        b.documents = documents;
        b.bytes = bytes;
        if let Some(wait) = wait_documents.max(wait_bytes) {
            return Err(Throttled::Ingest { retry_after_secs: wait });
        }
        b.documents -= take.documents as f64;
        b.bytes -= take.bytes as f64;
        Ok(())
    }
}
