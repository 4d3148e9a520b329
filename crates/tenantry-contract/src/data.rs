//! The data plane's contract: ingest, query, list and delete documents on every backend, with
//! isolation tried adversarially (another tenant's ids through a tenant's scope, random
//! interleavings of several tenants' operations, sequential and concurrent), placement and
//! capacity alerts, exact quotas under concurrency, lifecycle gates and query limits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use time::Duration;

use tenantry_app::ports::{Clock, Store};
use tenantry_app::{
    AlertSink, AppError, BlobStore, CacheConfig, DataPlane, LocalBus, LogAlerts, PlatformScope, Registry, TenantScope,
};
use tenantry_blob::{BlobConfig, ObjectBlobStore};
use tenantry_domain::documents::tenant_prefix;
use tenantry_domain::{
    CapacityPolicy, DocumentId, IndexKind, LimitOverrides, NewDocument, NewTenant, Placement, QuerySpec, TenantPatch,
    TenantStatus,
};

use crate::{ManualClock, Wiring, build_app, tid, tier};

pub use crate::DIMS;

/// A registry and a data plane over one store, with objects in a fresh local directory.
pub struct DataCtx {
    pub registry: Registry,
    pub plane: DataPlane,
    pub blobs: Arc<ObjectBlobStore>,
    pub alerts: Arc<LogAlerts>,
    pub clock: Arc<ManualClock>,
    pub admin: PlatformScope,
    dir: std::path::PathBuf,
}

impl Drop for DataCtx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static DIRS: AtomicU64 = AtomicU64::new(0);

impl DataCtx {
    pub async fn new(store: Arc<dyn Store>) -> Self {
        Self::with(store, CapacityPolicy::default()).await
    }

    /// The services as `serve` wires them (`App::build`): the data plane reads tenant records
    /// through the snapshot cache the registry invalidates. Long TTLs, so a test sees a change
    /// only through invalidation.
    pub async fn with(store: Arc<dyn Store>, capacity: CapacityPolicy) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tenantry-objects-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let blobs = Arc::new(ObjectBlobStore::open(&BlobConfig::Local(dir.clone())).expect("open object directory"));
        let clock = Arc::new(ManualClock::new());
        let alerts = Arc::new(LogAlerts::default());
        let wiring = Wiring {
            bus: Arc::new(LocalBus::new()),
            shared_cache: None,
            cache: CacheConfig::uniform(std::time::Duration::from_secs(3600), std::time::Duration::from_secs(60)),
            capacity,
            blobs: blobs.clone(),
            alerts: alerts.clone(),
            providers: tenantry_app::Providers::default(),
        };
        let app = build_app(store, clock.clone(), wiring).await;
        Self {
            registry: app.registry.clone(),
            plane: app.data.clone(),
            blobs,
            alerts,
            clock,
            admin: app.operator("contract"),
            dir,
        }
    }

    pub fn scope(&self, tenant: &str) -> TenantScope {
        self.admin.act_in(tid(tenant))
    }

    pub async fn tenant(&self, id: &str, tier_name: &str) {
        self.registry
            .create_tenant(&self.admin, NewTenant::minimal(tid(id), format!("Tenant {id}"), tier(tier_name)))
            .await
            .expect("create tenant");
    }

    pub async fn ingest(&self, tenant: &str, title: &str, text: &str) -> DocumentId {
        let doc = NewDocument::new(title, text.to_owned(), &json!({"owner": tenant}), None).expect("valid document");
        self.plane.ingest(&self.scope(tenant), vec![doc]).await.expect("ingest").remove(0).id
    }

    pub async fn query(&self, tenant: &str, text: &str, top_k: u32) -> Result<Vec<DocumentId>, AppError> {
        let spec = QuerySpec::new(Some(text.to_owned()), None, Some(top_k), &serde_json::Value::Null, DIMS)
            .expect("valid query");
        Ok(self.plane.query(&self.scope(tenant), spec).await?.hits.into_iter().map(|h| h.document_id).collect())
    }

    async fn set_limits(&self, tenant: &str, limits: LimitOverrides) {
        let scope = self.scope(tenant);
        let current = self.registry.get_tenant(&scope).await.expect("read tenant");
        let patch = TenantPatch { limits, ..Default::default() };
        self.registry.update_tenant(&scope, patch, Some(current.version)).await.expect("set limits");
    }
}

use tenantry_domain::documents::synthetic_text as words;

pub async fn documents_round_trip_through_ingest_query_and_delete(store: Arc<dyn Store>) {
    let d = DataCtx::new(store).await;
    d.tenant("acme", "silver").await;
    let scope = d.scope("acme");
    let docs = vec![
        NewDocument::new(
            "Invoices",
            "invoice invoice payment terms net thirty".into(),
            &json!({"lang": "en"}),
            Some("ext-1"),
        )
        .unwrap(),
        NewDocument::new(
            "Privacy",
            "privacy policy for patient records".into(),
            &json!({"lang": "de", "year": 2024}),
            None,
        )
        .unwrap(),
    ];
    let stored = d.plane.ingest(&scope, docs).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].client_id.as_deref(), Some("ext-1"));
    assert!(stored[0].chunk_count >= 1 && stored[0].token_count == 6);

    // the closest document first, with scores, titles and metadata
    let spec = |text: &str, filter| QuerySpec::new(Some(text.into()), None, Some(5), &filter, DIMS).unwrap();
    let answer = d.plane.query(&scope, spec("invoice payment", json!(null))).await.unwrap();
    assert_eq!(answer.hits[0].document_id, stored[0].id);
    assert_eq!(answer.hits[0].title, "Invoices");
    assert!(answer.hits[0].score > answer.hits.last().unwrap().score || answer.hits.len() == 1);
    // metadata filter: only German documents
    let answer = d.plane.query(&scope, spec("invoice payment", json!({"lang": "de"}))).await.unwrap();
    assert!(answer.hits.iter().all(|h| h.document_id == stored[1].id), "{:?}", answer.hits);
    let answer = d.plane.query(&scope, spec("invoice", json!({"year": 2024.0}))).await.unwrap();
    assert_eq!(answer.hits.len(), 1);
    // a vector query
    let v = tenantry_domain::embedding::local_embedding("privacy policy", DIMS);
    let answer =
        d.plane.query(&scope, QuerySpec::new(None, Some(v), Some(1), &json!(null), DIMS).unwrap()).await.unwrap();
    assert_eq!(answer.hits[0].document_id, stored[1].id);

    // list, read back the raw text from object storage, usage
    let listed = d.plane.list_documents(&scope, None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    let page = d.plane.list_documents(&scope, Some(&listed[0].id), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(d.plane.document_text(&scope, &stored[1].id).await.unwrap(), "privacy policy for patient records");
    let (usage, _) = d.plane.usage(&scope).await.unwrap();
    assert_eq!((usage.documents, usage.bytes), (2, stored[0].bytes + stored[1].bytes));

    // a client id is unique per tenant: a retried upload is refused, nothing is written
    let dup = NewDocument::new("Again", "x y z".into(), &json!({}), Some("ext-1")).unwrap();
    assert!(matches!(d.plane.ingest(&scope, vec![dup]).await, Err(AppError::AlreadyExists(_))));
    assert_eq!(d.plane.usage(&scope).await.unwrap().0.documents, 2);
    assert_eq!(d.blobs.list(&tenant_prefix(&tid("acme"))).await.unwrap().len(), 2, "the refused object is removed");

    // delete removes the document, its chunks and its object
    d.plane.delete_document(&scope, &stored[0].id).await.unwrap();
    let answer = d.plane.query(&scope, spec("invoice payment", json!(null))).await.unwrap();
    assert!(answer.hits.iter().all(|h| h.document_id != stored[0].id));
    assert!(matches!(d.plane.get_document(&scope, &stored[0].id).await, Err(AppError::DocumentNotFound(_))));
    assert!(matches!(d.plane.delete_document(&scope, &stored[0].id).await, Err(AppError::DocumentNotFound(_))));
    assert_eq!(d.blobs.list(&tenant_prefix(&tid("acme"))).await.unwrap().len(), 1);
    let (usage, _) = d.plane.usage(&scope).await.unwrap();
    assert_eq!((usage.documents, usage.bytes), (1, stored[1].bytes));

    // every write is audited
    let ops: Vec<String> =
        d.registry.tenant_audit(&scope, 1000).await.unwrap().into_iter().map(|e| e.entry.record.operation).collect();
    for op in ["tenant.place", "document.ingest", "document.delete"] {
        assert!(ops.iter().any(|o| o == op), "{op} missing from {ops:?}");
    }
}

pub async fn another_tenants_documents_are_unreachable(store: Arc<dyn Store>) {
    let d = DataCtx::new(store).await;
    d.tenant("alpha", "silver").await;
    d.tenant("beta", "silver").await;
    let a = d.ingest("alpha", "Alpha plan", "quarterly revenue forecast for alpha").await;
    let b = d.ingest("beta", "Beta plan", "quarterly revenue forecast for beta").await;
    // the same words in both tenants: each sees only its own
    assert_eq!(d.query("alpha", "quarterly revenue forecast", 10).await.unwrap(), vec![a.clone()]);
    assert_eq!(d.query("beta", "quarterly revenue forecast", 10).await.unwrap(), vec![b.clone()]);
    // beta's id through alpha's scope: not found, not deleted, not listed, no object
    let alpha = d.scope("alpha");
    assert!(matches!(d.plane.get_document(&alpha, &b).await, Err(AppError::DocumentNotFound(_))));
    assert!(matches!(d.plane.document_text(&alpha, &b).await, Err(AppError::DocumentNotFound(_))));
    assert!(matches!(d.plane.delete_document(&alpha, &b).await, Err(AppError::DocumentNotFound(_))));
    assert_eq!(d.query("beta", "quarterly", 10).await.unwrap(), vec![b.clone()], "beta's document survived");
    let listed: Vec<_> = d.plane.list_documents(&alpha, None, 100).await.unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(listed, vec![a]);
    assert_eq!(d.plane.usage(&alpha).await.unwrap().0.documents, 1);
    // a tenant with no documents (not even placed) gets nothing, not someone else's
    d.tenant("gamma", "silver").await;
    assert!(d.query("gamma", "quarterly revenue forecast", 10).await.unwrap().is_empty());
}

/// Random interleavings of ingest / query / delete over three tenants on one shared index. The
/// model says which documents each tenant owns; after every step nothing of another tenant may
/// appear: no hit, no listed id, no count, no object, no id in an error message.
pub async fn random_interleavings_never_cross_tenants(store: Arc<dyn Store>) {
    let d = DataCtx::new(store).await;
    // two namespaces of one shared index, and one dedicated index (PostgreSQL searches the two
    // kinds through different functions)
    let tenants = ["t-red", "t-green", "t-blue"];
    for (t, tier) in tenants.into_iter().zip(["silver", "silver", "platinum"]) {
        d.tenant(t, tier).await;
    }
    let mut model: BTreeMap<&str, BTreeSet<DocumentId>> = tenants.iter().map(|t| (*t, BTreeSet::new())).collect();
    let mut all_ids: BTreeMap<DocumentId, &str> = BTreeMap::new();
    // a fresh seed each run (explores new interleavings), printed and named in every failure;
    // TENANTRY_INTERLEAVING_SEED replays one
    let seed: u64 =
        std::env::var("TENANTRY_INTERLEAVING_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
        });
    eprintln!("interleaving seed {seed} (replay with TENANTRY_INTERLEAVING_SEED={seed})");
    let mut rng: u64 = seed;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for n in 0..100u64 {
        let step = format!("seed {seed} step {n}");
        let t = tenants[next(3) as usize];
        let scope = d.scope(t);
        match next(4) {
            0 | 1 => {
                let id = d.ingest(t, &format!("doc {n}"), &words(next(1 << 40), 30)).await;
                model.get_mut(t).unwrap().insert(id.clone());
                all_ids.insert(id, t);
            }
            2 => {
                // delete one of its own, or try one of another tenant's
                let own = model[t].iter().next().cloned();
                let foreign = all_ids.iter().find(|(_, owner)| **owner != t).map(|(id, _)| id.clone());
                if next(2) == 0
                    && let Some(id) = own
                {
                    d.plane.delete_document(&scope, &id).await.unwrap();
                    model.get_mut(t).unwrap().remove(&id);
                    all_ids.remove(&id);
                } else if let Some(id) = foreign {
                    let err = d.plane.delete_document(&scope, &id).await.unwrap_err();
                    assert!(matches!(err, AppError::DocumentNotFound(_)), "step {step}: {err:?}");
                }
            }
            _ => {
                let hits = d.query(t, &words(next(1000), 5), 10).await.unwrap();
                for h in &hits {
                    assert!(model[t].contains(h), "step {step}: {t} got {h}, owned by {:?}", all_ids.get(h));
                }
                let expected = model[t].len().min(10);
                assert_eq!(hits.len(), expected, "step {step}: {t} should get top_k or all its documents");
            }
        }
        // after every step: listings, counts and objects match the model exactly
        for other in tenants {
            let s = d.scope(other);
            let listed: BTreeSet<_> =
                d.plane.list_documents(&s, None, 1000).await.unwrap().into_iter().map(|x| x.id).collect();
            assert_eq!(listed, model[other], "step {step}: listing of {other}");
            assert_eq!(d.plane.usage(&s).await.unwrap().0.documents, model[other].len() as i64);
            let objects = d.blobs.list(&tenant_prefix(&tid(other))).await.unwrap();
            assert_eq!(objects.len(), model[other].len(), "step {step}: objects of {other}");
        }
    }

    // the same, concurrently: each tenant's task ingests, queries and deletes at once
    let mut tasks = Vec::new();
    let d = Arc::new(d);
    for (i, t) in tenants.into_iter().enumerate() {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = BTreeSet::new();
            for round in 0..8u64 {
                mine.insert(d.ingest(t, &format!("c{round}"), &words(round * 7 + i as u64, 25)).await);
                for h in d.query(t, &words(round, 4), 10).await.unwrap() {
                    assert!(mine.contains(&h) || d.plane.get_document(&d.scope(t), &h).await.is_ok(), "{t} got {h}");
                }
                if round % 3 == 2 {
                    let first = mine.iter().next().cloned().unwrap();
                    d.plane.delete_document(&d.scope(t), &first).await.unwrap();
                    mine.remove(&first);
                }
            }
            (t, mine)
        }));
    }
    for task in tasks {
        let (t, mine) = task.await.unwrap();
        let s = d.scope(t);
        let listed: BTreeSet<_> =
            d.plane.list_documents(&s, None, 1000).await.unwrap().into_iter().map(|x| x.id).collect();
        let expected: BTreeSet<_> = model[t].iter().cloned().chain(mine).collect();
        assert_eq!(listed, expected, "{t} after the concurrent phase");
        for h in d.query(t, "revenue ledger audit", 50).await.unwrap() {
            assert!(expected.contains(&h), "{t} got {h}");
        }
    }
}

/// A tenant with at least `top_k` chunks gets `top_k` hits, however many other tenants share its
/// index (the approximate index must not be starved by the tenant filter).
pub async fn a_small_tenant_on_a_busy_index_still_gets_top_k(store: Arc<dyn Store>) {
    let d = DataCtx::new(store).await;
    d.tenant("busy", "silver").await;
    d.tenant("small", "silver").await;
    let busy = d.scope("busy");
    for batch in 0..4u64 {
        let docs = (0..50u64)
            .map(|i| NewDocument::new("bulk", words(batch * 100 + i, 30), &json!({}), None).unwrap())
            .collect();
        d.plane.ingest(&busy, docs).await.unwrap();
    }
    for i in 0..12u64 {
        d.ingest("small", &format!("s{i}"), &format!("zebra giraffe {}", words(9000 + i, 10))).await;
    }
    // the query is far from the small tenant's words and close to the busy tenant's
    let hits = d.query("small", "revenue contract invoice policy", 10).await.unwrap();
    assert_eq!(hits.len(), 10);
    assert_eq!(d.query("small", "revenue", 100).await.unwrap().len(), 12);
}

pub async fn capacity_alerts_and_placement(store: Arc<dyn Store>) {
    let d = DataCtx::with(store, CapacityPolicy::new(10, 0.8).unwrap()).await;
    for i in 1..=7 {
        d.tenant(&format!("shared-t{i}"), "silver").await;
    }
    assert_eq!(d.alerts.fired(), 0);
    assert_eq!(d.plane.index_pool(&d.admin).await.unwrap().len(), 1);
    d.tenant("shared-t8", "silver").await;
    assert_eq!(d.alerts.fired(), 1, "the 8th tenant reaches 80% of 10");
    let pool = d.plane.index_pool(&d.admin).await.unwrap();
    let names: Vec<_> = pool.iter().map(|u| (u.index.name.to_string(), u.index.used)).collect();
    assert_eq!(names, vec![("shared-1".to_owned(), 8), ("shared-2".to_owned(), 0)], "standby provisioned");
    for i in 9..=11 {
        d.tenant(&format!("shared-t{i}"), "bronze").await;
    }
    let placed = d.plane.placement(&d.scope("shared-t11")).await.unwrap();
    assert_eq!(
        placed.placement,
        Placement::Namespace { index: tenantry_domain::IndexName::parse("shared-2").unwrap() }
    );
    d.tenant("big-corp", "platinum").await;
    let placed = d.plane.placement(&d.scope("big-corp")).await.unwrap();
    assert!(matches!(placed.placement, Placement::Dedicated { ref index } if index.as_str() == "dedicated-big-corp"));
    let pool = d.plane.index_pool(&d.admin).await.unwrap();
    let dedicated = pool.iter().find(|u| u.index.kind == IndexKind::Dedicated).unwrap();
    assert_eq!((dedicated.index.used, dedicated.dimensions), (1, DIMS as u32));
    // the dedicated tenant's data lives in its own index and works like any other
    let id = d.ingest("big-corp", "Board minutes", "merger vendor budget").await;
    assert_eq!(d.query("big-corp", "merger", 3).await.unwrap(), vec![id]);
    let pool = d.plane.index_pool(&d.admin).await.unwrap();
    assert!(pool.iter().any(|u| u.index.kind == IndexKind::Dedicated && u.chunks == 1));
}

pub async fn quotas_hold_exactly_under_concurrent_uploads(store: Arc<dyn Store>) {
    let d = Arc::new(DataCtx::with(store, CapacityPolicy::default()).await);
    d.tenant("capped", "silver").await;
    d.set_limits("capped", LimitOverrides { max_documents: Some(10), ..Default::default() }).await;
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let doc = NewDocument::new("upload", words(i, 20), &json!({}), None).unwrap();
            d.plane.ingest(&d.scope("capped"), vec![doc]).await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(AppError::QuotaExceeded(q)) => {
                assert_eq!((q.limit, q.requested), (10, 1));
                assert!(q.current <= 10);
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((ok, refused), (10, 54));
    let scope = d.scope("capped");
    assert_eq!(d.plane.usage(&scope).await.unwrap().0.documents, 10);
    assert_eq!(d.blobs.list(&tenant_prefix(&tid("capped"))).await.unwrap().len(), 10, "refused objects removed");
    // a batch that does not fit is refused whole
    let batch = vec![NewDocument::new("x", "y".into(), &json!({}), None).unwrap()];
    assert!(matches!(d.plane.ingest(&scope, batch.clone()).await, Err(AppError::QuotaExceeded(_))));
    // raising the limit through the registry applies to the very next request (cache invalidated)
    d.set_limits("capped", LimitOverrides { max_documents: Some(11), ..Default::default() }).await;
    d.plane.ingest(&scope, batch).await.expect("the raised limit applies at once");
}

pub async fn lifecycle_gates_the_data_plane(store: Arc<dyn Store>) {
    let d = DataCtx::with(store, CapacityPolicy::default()).await;
    d.tenant("moving", "silver").await;
    let id = d.ingest("moving", "doc", "ledger audit").await;
    let scope = d.scope("moving");
    d.registry.transition(&scope, TenantStatus::Migrating, "moving to a dedicated index", None, None).await.unwrap();
    assert_eq!(d.query("moving", "ledger", 5).await.unwrap(), vec![id.clone()], "reads go on while migrating");
    let doc = NewDocument::new("t", "x".into(), &json!({}), None).unwrap();
    assert!(matches!(d.plane.ingest(&scope, vec![doc.clone()]).await, Err(AppError::TenantInactive { .. })));
    assert!(matches!(d.plane.delete_document(&scope, &id).await, Err(AppError::TenantInactive { .. })));
    d.registry.transition(&scope, TenantStatus::Suspended, "unpaid", None, None).await.unwrap();
    assert!(matches!(d.query("moving", "ledger", 5).await, Err(AppError::TenantInactive { .. })));
    assert!(matches!(d.plane.list_documents(&scope, None, 10).await, Err(AppError::TenantInactive { .. })));
    d.registry.transition(&scope, TenantStatus::Active, "paid", None, None).await.unwrap();
    d.plane.ingest(&scope, vec![doc]).await.expect("active again");
}

pub async fn queries_are_rate_limited_per_tenant(store: Arc<dyn Store>) {
    let d = DataCtx::with(store, CapacityPolicy::default()).await;
    d.tenant("chatty", "silver").await;
    d.tenant("quiet", "silver").await;
    d.set_limits(
        "chatty",
        LimitOverrides { rate_limit_per_minute: Some(2), max_queries_per_day: Some(3), ..Default::default() },
    )
    .await;
    d.query("chatty", "a", 1).await.unwrap();
    d.query("chatty", "a", 1).await.unwrap();
    match d.query("chatty", "a", 1).await {
        Err(AppError::RateLimited { retry_after_secs, .. }) => assert!((1..=30).contains(&retry_after_secs)),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    assert!(d.query("quiet", "a", 1).await.is_ok(), "another tenant is not limited by chatty's use");
    d.clock.advance(Duration::seconds(30));
    d.query("chatty", "a", 1).await.expect("a token refilled");
    d.clock.advance(Duration::seconds(60));
    match d.query("chatty", "a", 1).await {
        Err(AppError::RateLimited { message, retry_after_secs }) => {
            assert!(message.contains("3 queries for today"), "{message}");
            assert!(retry_after_secs > 60);
        }
        other => panic!("expected the daily quota, got {other:?}"),
    }
    d.clock.advance(Duration::days(1));
    d.query("chatty", "a", 1).await.expect("a new day");
}

/// Ingest draws on two buckets per tenant, documents and bytes per second (tier defaults,
/// overridable), each holding ten seconds' worth: a burst passes, the next batch waits, a batch
/// larger than a full bucket is refused outright, and another tenant is untouched.
pub async fn ingest_is_rate_limited_per_tenant(store: Arc<dyn Store>) {
    let d = DataCtx::with(store, CapacityPolicy::default()).await;
    d.tenant("loader", "silver").await;
    d.tenant("bystander", "silver").await;
    let limits = LimitOverrides {
        ingest_documents_per_second: Some(1),
        ingest_bytes_per_second: Some(1_000),
        ..Default::default()
    };
    d.set_limits("loader", limits).await;
    let docs = |n: usize, words_each: usize| -> Vec<NewDocument> {
        (0..n).map(|i| NewDocument::new("t", words(i as u64, words_each), &json!({}), None).unwrap()).collect()
    };
    let scope = d.scope("loader");
    d.plane.ingest(&scope, docs(10, 3)).await.expect("a full burst of ten documents");
    match d.plane.ingest(&scope, docs(1, 3)).await {
        Err(AppError::RateLimited { retry_after_secs, message }) => {
            assert_eq!(retry_after_secs, 1, "{message}");
            assert!(message.contains("1 documents and 1000 bytes per second"), "{message}");
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
    d.plane.ingest(&d.scope("bystander"), docs(10, 3)).await.expect("another tenant has its own buckets");
    d.clock.advance(Duration::seconds(2));
    d.plane.ingest(&scope, docs(2, 3)).await.expect("two seconds refill two documents");
    match d.plane.ingest(&scope, docs(11, 3)).await {
        Err(AppError::Invalid(message)) => assert!(message.contains("send smaller batches"), "{message}"),
        other => panic!("a batch beyond the burst is refused, got {other:?}"),
    }
    // bytes: a full refill, then one document larger than what is left
    d.clock.advance(Duration::seconds(60));
    d.plane.ingest(&scope, docs(1, 700)).await.expect("within the 10,000-byte burst");
    match d.plane.ingest(&scope, docs(1, 700)).await {
        Err(AppError::RateLimited { retry_after_secs, .. }) => assert!(retry_after_secs >= 1),
        other => panic!("expected the bytes bucket to refuse, got {other:?}"),
    }
}

pub async fn bad_input_is_refused_without_writes(store: Arc<dyn Store>) {
    let d = DataCtx::new(store).await;
    d.tenant("strict", "silver").await;
    let scope = d.scope("strict");
    assert!(matches!(d.plane.ingest(&scope, vec![]).await, Err(AppError::Invalid(_))));
    let wrong_dims = QuerySpec::new(None, Some(vec![0.1; DIMS + 1]), None, &json!(null), DIMS + 1).unwrap();
    assert!(matches!(d.plane.query(&scope, wrong_dims).await, Err(AppError::Invalid(_))));
    let ghost = tid("ghost");
    assert!(matches!(
        d.plane
            .query(&d.admin.act_in(ghost), QuerySpec::new(Some("x".into()), None, None, &json!(null), DIMS).unwrap())
            .await,
        Err(AppError::TenantNotFound(_))
    ));
    assert_eq!(d.plane.usage(&scope).await.unwrap().0.documents, 0);
}

/// A document write for the store directly (bypassing the data plane's own checks), of
/// `bytes` bytes of text, with one chunk.
fn raw_write(d: &DataCtx, tenant: &str, n: u128, bytes: i64) -> tenantry_app::DocumentWrite {
    let id = DocumentId::from_random(n);
    let at = d.clock.now();
    tenantry_app::DocumentWrite {
        document: tenantry_app::StoredDocument {
            id: id.clone(),
            client_id: None,
            title: format!("raw {n}"),
            metadata: tenantry_domain::Metadata::default(),
            bytes,
            chunk_count: 1,
            token_count: 1,
            embedding_model: "test".into(),
            object_key: tenantry_domain::documents::object_key(&tid(tenant), &id),
            created_at: at,
        },
        chunks: vec![tenantry_app::StoredChunk {
            index: 0,
            text: "raw".into(),
            start: 0,
            end: 3,
            embedding: vec![0.5; DIMS],
        }],
        audit: tenantry_app::AuditRecord::tenant(&d.scope(tenant), at, tenantry_app::AuditOp::DocumentIngest),
    }
}

/// The storage-bytes quota holds at the store exactly like the document quota: a batch that
/// would pass it is refused whole, with the numbers, and nothing of it is written.
pub async fn the_storage_quota_is_exact_at_the_store(store: Arc<dyn Store>) {
    let d = DataCtx::new(store.clone()).await;
    d.tenant("bytes-co", "silver").await;
    let scope = d.scope("bytes-co");
    let quota = tenantry_domain::IngestQuota { max_documents: 100, max_bytes: 100 };
    store.insert_documents(&scope, &[raw_write(&d, "bytes-co", 1, 60)], quota, &[]).await.expect("60 of 100 bytes");
    let refused = store
        .insert_documents(&scope, &[raw_write(&d, "bytes-co", 2, 30), raw_write(&d, "bytes-co", 3, 20)], quota, &[])
        .await
        .unwrap_err();
    match refused {
        tenantry_app::StoreError::QuotaExceeded(q) => {
            assert_eq!(q.resource, tenantry_domain::QuotaResource::StorageBytes, "{q:?}");
            assert_eq!((q.limit, q.current, q.requested), (100, 60, 50), "{q:?}");
        }
        other => panic!("expected the storage quota, got {other:?}"),
    }
    let (usage, _) = d.plane.usage(&scope).await.unwrap();
    assert_eq!((usage.documents, usage.bytes), (1, 60), "nothing of the refused batch was written");
    // an ingest bills its own tenant only: usage for another tenant refuses the whole write
    d.tenant("other-co", "silver").await;
    let foreign = tenantry_domain::cost::UsageEvent::new(
        tenantry_domain::TenantId::parse("other-co").unwrap(),
        tenantry_domain::cost::Meter::ApiCalls,
        1_000_000,
        None,
        d.clock.now(),
        "forged",
    )
    .unwrap();
    let refused = store.insert_documents(&scope, &[raw_write(&d, "bytes-co", 5, 10)], quota, &[foreign]).await;
    assert!(matches!(refused, Err(tenantry_app::StoreError::ConstraintViolated(_))), "{refused:?}");
    assert_eq!(store.tenant_usage_events(&d.scope("other-co")).await.unwrap(), 0);
    let (usage, _) = d.plane.usage(&scope).await.unwrap();
    assert_eq!(usage.documents, 1, "nothing of the refused write");
    store
        .insert_documents(&scope, &[raw_write(&d, "bytes-co", 4, 40)], quota, &[])
        .await
        .expect("exactly at the limit");
}

/// A tenant's scope cannot search another tenant's index through a placement it was handed,
/// nor append an audit entry that names another tenant.
pub async fn a_scope_cannot_borrow_another_tenants_placement_or_audit_trail(store: Arc<dyn Store>) {
    let d = DataCtx::new(store.clone()).await;
    d.tenant("owner-co", "platinum").await; // a dedicated index of its own
    d.tenant("thief-co", "silver").await;
    d.ingest("owner-co", "secret plan", &words(7, 60)).await;
    let owners = store.tenant_placement(&d.scope("owner-co")).await.unwrap().expect("placed");
    let query = vec![0.5; DIMS];
    let hits = store.search(&d.scope("thief-co"), &owners, &query, 10, &Default::default()).await.unwrap();
    assert!(hits.is_empty(), "another tenant's placement gave {} hits", hits.len());
    let own = store.search(&d.scope("owner-co"), &owners, &query, 10, &Default::default()).await.unwrap();
    assert!(!own.is_empty(), "the owner finds its document");

    let forged =
        tenantry_app::AuditRecord::tenant(&d.scope("owner-co"), d.clock.now(), tenantry_app::AuditOp::TenantRead);
    let refused = store.append_tenant_audit(&d.scope("thief-co"), &forged).await.unwrap_err();
    assert!(matches!(refused, tenantry_app::StoreError::ConstraintViolated(_)), "{refused:?}");
}

#[macro_export]
macro_rules! data_suite {
    ($make:expr) => {
        $crate::data_suite!(@cases $make;
            documents_round_trip_through_ingest_query_and_delete,
            another_tenants_documents_are_unreachable,
            random_interleavings_never_cross_tenants,
            a_small_tenant_on_a_busy_index_still_gets_top_k,
            capacity_alerts_and_placement,
            quotas_hold_exactly_under_concurrent_uploads,
            lifecycle_gates_the_data_plane,
            queries_are_rate_limited_per_tenant,
            ingest_is_rate_limited_per_tenant,
            bad_input_is_refused_without_writes,
            the_storage_quota_is_exact_at_the_store,
            a_scope_cannot_borrow_another_tenants_placement_or_audit_trail,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make else { return };
                $crate::data::$case(store).await;
            }
        )*
    };
}
