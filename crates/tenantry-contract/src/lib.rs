//! The contract suite: the behaviour every `Store` backend must show, written once and run
//! against each (SQLite always; PostgreSQL whenever `DATABASE_URL` is set, which CI always does).
//!
//! Use [`contract_suite!`] in a backend's integration tests with an expression that builds a
//! fresh, empty, migrated store.

pub mod answers;
pub mod cache;
pub mod data;
pub mod ledger;
pub mod tamper;

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use tenantry_app::ErrorCode;
use tenantry_app::ports::{Clock, Store, TenantFilter};
use tenantry_app::{
    AlertSink, App, AppConfig, AppError, BlobStore, CacheConfig, DataPlaneConfig, InvalidationBus, LocalBus,
    LocalEmbedder, LogAlerts, PlatformScope, Registry, StoreError,
};
use tenantry_domain::{
    Currency, Evaluation, FlagDefinition, FlagKey, FlagLevel, FlagMeta, FlagRule, FlagScope, FlagValue, HealthSignals,
    IsolationMode, Label, LimitField, LimitOverrides, Limits, Money, NewTenant, TenantId, TenantPatch, TenantStatus,
    Tier, TierName,
};

/// A clock the tests move by hand (microsecond precision, like the system clock).
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new() -> Self {
        Self(Mutex::new(time::macros::datetime!(2026-03-01 09:30:00.123456 UTC)))
    }
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("clock mutex is never poisoned: no code panics while holding it");
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock mutex is never poisoned: no code panics while holding it")
    }
}

pub struct Ctx {
    pub app: App,
    pub registry: Registry,
    pub clock: Arc<ManualClock>,
    pub admin: PlatformScope,
}

impl Ctx {
    /// The services over `store` as `serve` wires them, on a bus of their own.
    pub async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new());
        let app = build_app(store, clock.clone(), Wiring::local()).await;
        Self { registry: app.registry.clone(), admin: app.operator("contract"), app, clock }
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        self.registry.store()
    }
}

/// What the tests' services are built from besides the store and the clock.
pub struct Wiring {
    pub bus: Arc<dyn InvalidationBus>,
    pub shared_cache: Option<Arc<dyn tenantry_app::SharedCache>>,
    pub cache: CacheConfig,
    pub capacity: tenantry_domain::CapacityPolicy,
    pub blobs: Arc<dyn BlobStore>,
    pub alerts: Arc<dyn AlertSink>,
    pub providers: tenantry_app::Providers,
}

impl Wiring {
    /// One process: an in-process bus, default cache settings and capacity, objects in memory.
    pub fn local() -> Self {
        Self {
            bus: Arc::new(LocalBus::new()),
            shared_cache: None,
            cache: CacheConfig::default(),
            capacity: tenantry_domain::CapacityPolicy::default(),
            blobs: Arc::new(MemoryBlobs::default()),
            alerts: Arc::new(LogAlerts::default()),
            providers: tenantry_app::Providers::default(),
        }
    }
}

/// The tests' embedder dimensions (small keeps PostgreSQL tests quick).
pub const DIMS: usize = 64;

/// The services over `store`, built by the composition root (`App::build`) exactly as `serve`
/// builds them, with the tests' embedder and chunking.
pub async fn build_app(store: Arc<dyn Store>, clock: Arc<ManualClock>, wiring: Wiring) -> App {
    App::build(AppConfig {
        bus: wiring.bus,
        shared_cache: wiring.shared_cache,
        cache: wiring.cache,
        alerts: wiring.alerts,
        providers: wiring.providers,
        data: DataPlaneConfig {
            chunking: tenantry_domain::chunking::ChunkConfig::new(40, 8).expect("valid chunking"),
            capacity: wiring.capacity,
        },
        ..AppConfig::local(store, clock, Arc::new(LocalEmbedder::new(DIMS)), wiring.blobs)
    })
    .await
    .expect("an in-process bus always subscribes")
}

/// Objects in memory, for tests that never look at them.
#[derive(Default)]
pub struct MemoryBlobs(Mutex<std::collections::HashMap<String, Vec<u8>>>);

#[async_trait::async_trait]
impl BlobStore for MemoryBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), bytes);
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let objects = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(objects.keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }
}

pub fn tid(s: &str) -> TenantId {
    TenantId::parse(s).expect("test ids are valid")
}
pub fn tier(s: &str) -> TierName {
    TierName::parse(s).expect("test tier names are valid")
}
pub fn key(s: &str) -> FlagKey {
    FlagKey::parse(s).expect("test flag keys are valid")
}

/// A tenant with every optional attribute set, so round-trips exercise every column.
pub fn full_tenant(id: &str, tier_name: &str) -> NewTenant {
    let mut new = NewTenant::minimal(tid(id), format!("Tenant {id}"), tier(tier_name));
    new.billing_email = Some(format!("billing@{id}.example.com"));
    new.owner = Some("Ada Owner".into());
    new.limits = LimitOverrides { max_users: Some(42), sla_target: Some(0.9995), ..Default::default() };
    new.cost_center = Some("CC-1001".into());
    new.monthly_budget = Some(Money::parse_decimal("1250.50", Currency::parse("INR").unwrap()).unwrap());
    new.budget_action = tenantry_domain::BudgetAction::Block;
    new.compliance_tags = ["gdpr", "sox"].iter().map(|t| Label::parse(t).unwrap()).collect();
    new.data_region = Some(Label::parse("eu-west-1").unwrap());
    new.metadata = serde_json::json!({"department": "finance", "nested": {"k": [1, 2]}});
    new
}

pub async fn create(ctx: &Ctx, id: &str, tier_name: &str) {
    ctx.registry
        .create_tenant(&ctx.admin, NewTenant::minimal(tid(id), format!("Tenant {id}"), tier(tier_name)))
        .await
        .expect("create tenant");
}

// ---- the contract -------------------------------------------------------------------------------

pub async fn builtin_tiers_are_seeded(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    let tiers = ctx.registry.list_tiers().await.unwrap();
    let names: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["bronze", "silver", "gold", "platinum"]);
    let platinum = tiers.iter().find(|t| t.name.as_str() == "platinum").unwrap();
    assert_eq!(platinum.isolation, IsolationMode::DedicatedIndex);
    assert_eq!(tiers, Tier::builtin_catalog());
}

pub async fn operator_adds_a_tier(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    let free = Tier::new(
        tier("free"),
        0,
        "Free tier",
        Limits {
            max_users: 2,
            max_documents: 50,
            max_queries_per_day: 20,
            max_storage_gb: 1,
            rate_limit_per_minute: 5,
            sla_target: 0.9,
            support_level: Label::parse("community").unwrap(),
            ingest_documents_per_second: 2,
            ingest_bytes_per_second: 10_000,
        },
        IsolationMode::SharedNamespace,
        7,
    )
    .unwrap();
    ctx.registry.create_tier(&ctx.admin, free.clone()).await.unwrap();
    assert_eq!(ctx.registry.get_tier(&tier("free")).await.unwrap(), free);
    let again = ctx.registry.create_tier(&ctx.admin, free).await.unwrap_err();
    assert_eq!(again.code(), ErrorCode::AlreadyExists);
    create(&ctx, "freebie", "free").await;
    let t = ctx.registry.get_tenant(&ctx.admin.act_in(tid("freebie"))).await.unwrap();
    assert_eq!(t.limits.max_documents, 50);
    assert_eq!(ctx.registry.list_tiers().await.unwrap()[0].name.as_str(), "free");
}

pub async fn tenant_round_trips_every_attribute(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    let created = ctx.registry.create_tenant(&ctx.admin, full_tenant("finance_dept", "platinum")).await.unwrap();
    let read = ctx.registry.get_tenant(&ctx.admin.act_in(tid("finance_dept"))).await.unwrap();
    assert_eq!(read, created);
    assert_eq!(read.limits.max_users, 42);
    assert_eq!(read.limits.max_documents, 500_000, "unset limits come from the tier");
    assert_eq!(read.limit_overrides.explicit_fields(), [LimitField::MaxUsers, LimitField::SlaTarget]);
    assert_eq!(read.monthly_budget.as_ref().unwrap().to_string(), "1250.50 INR");
    assert_eq!(read.budget_action, tenantry_domain::BudgetAction::Block);
}

pub async fn create_refuses_duplicates_and_unknown_tiers(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "legal", "gold").await;
    let dup = ctx.registry.create_tenant(&ctx.admin, NewTenant::minimal(tid("legal"), "Again", tier("gold"))).await;
    assert_eq!(dup.unwrap_err().code(), ErrorCode::AlreadyExists);
    let unknown = ctx.registry.create_tenant(&ctx.admin, NewTenant::minimal(tid("x1"), "X", tier("diamond"))).await;
    assert_eq!(unknown.unwrap_err().code(), ErrorCode::TierNotFound);
    let missing = ctx.registry.get_tenant(&ctx.admin.act_in(tid("nobody"))).await.unwrap_err();
    assert_eq!(missing.code(), ErrorCode::TenantNotFound);
}

pub async fn list_filters_and_paginates(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    for i in 0..7 {
        create(&ctx, &format!("t{i:02}"), if i % 2 == 0 { "gold" } else { "silver" }).await;
    }
    let scope = ctx.admin.act_in(tid("t03"));
    ctx.registry.transition(&scope, TenantStatus::Suspended, "non-payment", None, None).await.unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let filter = TenantFilter { after: after.clone(), limit: 3, ..Default::default() };
        let page = ctx.registry.list_tenants(&ctx.admin, filter).await.unwrap();
        seen.extend(page.items.iter().map(|t| t.id.to_string()));
        match page.next_cursor {
            Some(c) => after = Some(tid(&c)),
            None => break,
        }
    }
    assert_eq!(seen, ["t00", "t01", "t02", "t03", "t04", "t05", "t06"]);

    let recent = ctx.registry.recent_audit(&ctx.admin, 3).await.unwrap();
    assert!(recent.iter().all(|e| e.record.operation == "platform.read.tenants" && e.record.tenant.is_none()));
    assert!(recent.windows(2).all(|w| w[0].seq < w[1].seq));
    let gold = TenantFilter { tier: Some(tier("gold")), limit: 100, ..Default::default() };
    let ids: Vec<String> =
        ctx.registry.list_tenants(&ctx.admin, gold).await.unwrap().items.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["t00", "t02", "t04", "t06"]);
    let suspended = TenantFilter { status: Some(TenantStatus::Suspended), limit: 100, ..Default::default() };
    let ids: Vec<String> = ctx
        .registry
        .list_tenants(&ctx.admin, suspended)
        .await
        .unwrap()
        .items
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["t03"]);
}

pub async fn update_uses_optimistic_concurrency(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "hr", "silver").await;
    let scope = ctx.admin.act_in(tid("hr"));
    let patch = TenantPatch { name: Some("HR Operations".into()), ..Default::default() };
    let v2 = ctx.registry.update_tenant(&scope, patch.clone(), Some(1)).await.unwrap();
    assert_eq!((v2.version, v2.name.as_str()), (2, "HR Operations"));
    let stale = ctx.registry.update_tenant(&scope, patch, Some(1)).await.unwrap_err();
    assert!(matches!(stale, AppError::VersionConflict { expected: 1, current: 2, .. }), "{stale:?}");

    // at the store level, two writers racing from the same version: exactly one wins
    let t = ctx.registry.get_tenant(&scope).await.unwrap();
    let mut a = t.clone();
    a.name = "A".into();
    a.version += 1;
    let mut b = t.clone();
    b.name = "B".into();
    b.version += 1;
    let audit = |op: &str| tenantry_app::AuditRecord {
        at: t.updated_at,
        actor: ctx.admin.actor().clone(),
        tenant: Some(t.id.clone()),
        operation: op.into(),
        before: None,
        after: None,
        reason: None,
        request_id: None,
    };
    let (audit_a, audit_b) = (audit("a"), audit("b"));
    let (ra, rb) = tokio::join!(
        ctx.store().update_tenant(&scope, &a, t.version, &audit_a),
        ctx.store().update_tenant(&scope, &b, t.version, &audit_b)
    );
    assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "exactly one concurrent writer wins: {ra:?} {rb:?}");
    let loser = if ra.is_ok() { rb } else { ra };
    assert!(matches!(loser, Err(StoreError::VersionConflict { current: 3 })), "{loser:?}");
    let audit_ops: Vec<String> =
        ctx.registry.tenant_audit(&scope, 100).await.unwrap().into_iter().map(|e| e.entry.record.operation).collect();
    assert_eq!(audit_ops.iter().filter(|o| *o == "a" || *o == "b").count(), 1, "the loser left no audit entry");
}

/// Changes without a version apply to whatever is current: writers racing on one tenant all
/// succeed (a lost race is retried from a fresh read), none is refused as a failed precondition.
pub async fn unversioned_updates_racing_all_apply(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "ops", "silver").await;
    let scope = ctx.admin.act_in(tid("ops"));
    let writers = 6;
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let (registry, scope) = (ctx.registry.clone(), scope.clone());
            tokio::spawn(async move {
                let patch = TenantPatch { name: Some(format!("Ops {i}")), ..Default::default() };
                registry.update_tenant(&scope, patch, None).await
            })
        })
        .collect();
    for task in tasks {
        let r = task.await.expect("writer task panicked");
        assert!(r.is_ok(), "an unversioned change was refused: {r:?}");
    }
    let t = ctx.registry.get_tenant(&scope).await.unwrap();
    assert_eq!(t.version, 1 + writers, "every change applied once");
}

pub async fn tier_change_applies_new_defaults(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    ctx.registry.create_tenant(&ctx.admin, full_tenant("mkt", "silver")).await.unwrap();
    let scope = ctx.admin.act_in(tid("mkt"));
    let patch = TenantPatch { tier: Some(tier("gold")), ..Default::default() };
    let up = ctx.registry.update_tenant(&scope, patch, None).await.unwrap();
    assert_eq!(up.tier.as_str(), "gold");
    assert_eq!(up.limits.max_users, 42, "explicit limit kept");
    assert_eq!(up.limits.max_queries_per_day, 10_000, "default limit follows the tier");
    let bad = TenantPatch { tier: Some(tier("diamond")), ..Default::default() };
    assert_eq!(ctx.registry.update_tenant(&scope, bad, None).await.unwrap_err().code(), ErrorCode::TierNotFound);
}

pub async fn lifecycle_follows_the_machine_and_is_audited(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "legal", "gold").await;
    create(&ctx, "finance", "platinum").await;
    let legal = ctx.admin.act_in(tid("legal"));
    let finance = ctx.admin.act_in(tid("finance"));

    let refused = ctx.registry.transition(&finance, TenantStatus::Deleted, "cleanup", None, None).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidTransition);
    assert!(refused.to_string().contains("from active to deleted"), "{refused}");
    assert_eq!(ctx.registry.get_tenant(&finance).await.unwrap().status, TenantStatus::Active);

    ctx.registry.transition(&legal, TenantStatus::Suspended, "legal hold review", None, None).await.unwrap();
    let archived = ctx.registry.transition(&legal, TenantStatus::Archived, "matter closed", None, None).await.unwrap();
    assert_eq!(archived.retention_until, Some(archived.status_changed_at + Duration::days(180)), "gold retention");
    let early = ctx.registry.transition(&legal, TenantStatus::Deleted, "purge", None, None).await.unwrap_err();
    assert_eq!(early.code(), ErrorCode::RetentionActive);
    ctx.clock.advance(Duration::days(181));
    let deleted = ctx.registry.transition(&legal, TenantStatus::Deleted, "purge", None, None).await.unwrap();
    assert_eq!(deleted.status, TenantStatus::Deleted);
    let after =
        ctx.registry.update_tenant(&legal, TenantPatch { name: Some("x".into()), ..Default::default() }, None).await;
    assert_eq!(after.unwrap_err().code(), ErrorCode::InvalidInput);

    let history = ctx.registry.tenant_audit(&legal, 100).await.unwrap();
    assert_eq!(history.iter().map(|h| h.position).collect::<Vec<_>>(), [1, 2, 3, 4, 5], "numbered in the tenant");
    assert!(history.windows(2).all(|w| w[1].previous_hash == w[0].entry.seal.as_ref().map(|s| s.hash.clone())));
    assert_eq!(history[0].previous_hash, None);
    let entries: Vec<tenantry_app::AuditEntry> = history.into_iter().map(|h| h.entry).collect();
    let summary: Vec<(String, Option<String>)> =
        entries.iter().map(|e| (e.record.operation.clone(), e.record.reason.clone())).collect();
    assert_eq!(
        summary,
        [
            ("tenant.create".to_string(), None),
            // registration places the tenant on the index pool (the data plane is always wired)
            ("tenant.place".to_string(), None),
            ("tenant.transition.suspended".to_string(), Some("legal hold review".to_string())),
            ("tenant.transition.archived".to_string(), Some("matter closed".to_string())),
            ("tenant.transition.deleted".to_string(), Some("purge".to_string())),
        ]
    );
    assert!(entries.iter().all(|e| e.record.actor == *ctx.admin.actor()));
    assert_eq!(entries[2].record.before.as_ref().unwrap()["status"], "active");
    assert_eq!(entries[2].record.after.as_ref().unwrap()["status"], "suspended");
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// The kill switch: disabling a flag makes it DISABLED for every tenant (a tenant-only flag stays
/// unknown to other tenants), keeps its values for re-enabling, bumps its version, is audited,
/// and an undefined flag is refused.
pub async fn the_kill_switch_disables_a_flag_everywhere(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "finance", "gold").await;
    create(&ctx, "legal", "silver").await;
    let admin = &ctx.admin;
    ctx.registry.set_flag(admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    ctx.registry.set_flag(admin, FlagScope::Tier(tier("gold")), key("beta"), FlagValue::Bool(true)).await.unwrap();
    ctx.registry.set_flag(admin, FlagScope::Tenant(tid("legal")), key("pilot"), FlagValue::Bool(true)).await.unwrap();
    let eval = |t: &'static str, k: &'static str| {
        let r = ctx.registry.clone();
        let scope = ctx.admin.act_in(tid(t));
        async move { r.evaluate_flag(&scope, &key(k)).await.unwrap() }
    };
    ctx.registry.set_flag_enabled(admin, key("beta"), false, Some("incident 42".into())).await.unwrap();
    ctx.registry.set_flag_enabled(admin, key("pilot"), false, None).await.unwrap();
    assert_eq!(eval("finance", "beta").await, Evaluation::Disabled { version: 3 });
    assert_eq!(eval("legal", "beta").await, Evaluation::Disabled { version: 3 });
    assert!(matches!(eval("legal", "pilot").await, Evaluation::Disabled { .. }));
    assert_eq!(eval("finance", "pilot").await, Evaluation::Unknown, "another tenant's flag stays unknown");
    let all = ctx.registry.evaluate_all_flags(&ctx.admin.act_in(tid("finance"))).await.unwrap();
    assert_eq!(all, vec![(key("beta"), Evaluation::Disabled { version: 3 })]);
    let defs = ctx.registry.flag_definitions(admin).await.unwrap();
    assert!(defs.iter().all(|d| !d.enabled));

    ctx.registry.set_flag_enabled(admin, key("beta"), true, None).await.unwrap();
    assert_eq!(
        eval("finance", "beta").await,
        Evaluation::Resolved { value: FlagValue::Bool(true), level: FlagLevel::Tier, split: false, version: 4 },
        "the values were kept"
    );
    let refused = ctx.registry.set_flag_enabled(admin, key("no_such_flag"), false, None).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::FlagNotFound);

    let recent = ctx.registry.recent_audit(admin, 100).await.unwrap();
    let disable = recent.iter().find(|e| e.record.operation == "flag.disable").expect("audited");
    assert_eq!(disable.record.reason.as_deref(), Some("incident 42"));
    assert_eq!(disable.record.after.as_ref().unwrap()["enabled"], false);
    assert!(recent.iter().any(|e| e.record.operation == "flag.enable"));
}

/// A tenant's history is its own: entries numbered 1, 2, 3… in the tenant and linked to the
/// tenant's previous entry, so other tenants' activity in between shows nowhere; and it starts at
/// the tenant's registration (an entry naming the id before then is not part of it).
pub async fn a_tenants_history_holds_nothing_of_other_tenants(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store.clone()).await;
    let early = tenantry_app::AuditRecord {
        tenant: Some(tid("late-co")),
        ..tenantry_app::AuditRecord::platform(&ctx.admin, ctx.clock.now(), tenantry_app::AuditOp::TenantUpdate)
    };
    store.append_audit(&ctx.admin, &early).await.unwrap();
    create(&ctx, "late-co", "gold").await;
    create(&ctx, "busy-co", "gold").await;
    let (late, busy) = (ctx.admin.act_in(tid("late-co")), ctx.admin.act_in(tid("busy-co")));
    let rename = |name: &'static str| TenantPatch { name: Some(name.to_owned()), ..TenantPatch::default() };
    ctx.registry.update_tenant(&late, rename("Late One"), None).await.unwrap();
    for name in ["B1", "B2", "B3", "B4", "B5"] {
        ctx.registry.update_tenant(&busy, rename(name), None).await.unwrap();
    }
    ctx.registry.update_tenant(&late, rename("Late Two"), None).await.unwrap();

    let history = ctx.registry.tenant_audit(&late, 100).await.unwrap();
    let ops: Vec<&str> = history.iter().map(|h| h.entry.record.operation.as_str()).collect();
    assert_eq!(ops, ["tenant.create", "tenant.place", "tenant.update", "tenant.update"], "from registration on");
    assert_eq!(history.iter().map(|h| h.position).collect::<Vec<_>>(), [1, 2, 3, 4]);
    for pair in history.windows(2) {
        assert_eq!(pair[1].previous_hash, pair[0].entry.seal.as_ref().map(|s| s.hash.clone()), "linked in the tenant");
    }
    // the pages of the tenant's view go by position
    let page = ctx
        .app
        .auditor
        .tenant_entries(&late, tenantry_app::AuditFilter { after_seq: 2, limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|h| h.position).collect::<Vec<_>>(), [3, 4, 5], "the earlier read is recorded too");
}

fn value_of(e: Evaluation) -> Option<FlagValue> {
    match e {
        Evaluation::Resolved { value, .. } => Some(value),
        Evaluation::Unknown | Evaluation::Disabled { .. } => None,
    }
}

/// The scope of `user`, made the admin of `tenant`, as their authenticated key gives it.
async fn tenant_admin(ctx: &Ctx, tenant: &str, user: &str) -> tenantry_app::TenantScope {
    let directory = &ctx.app.directory;
    let id = tenantry_domain::UserId::parse(user).unwrap();
    directory.create_user(&ctx.admin, id.clone(), user).await.unwrap();
    directory.put_member(&ctx.admin.act_in(tid(tenant)), &id, tenantry_domain::Role::Admin).await.unwrap();
    let token = directory.create_key(&ctx.admin, tenantry_app::KeyOwner::User(id), "k", None).await.unwrap().token;
    directory.authenticate(&token).await.unwrap().tenant(&tid(tenant)).unwrap()
}

/// A tenant admin's flag writes change only their tenant: the platform's definitions (type,
/// description, version) stay the platform's, a key the platform has not defined belongs to the
/// tenant that uses it (another tenant may use it with another type), versions move only with
/// one's own or the platform's writes, and a platform-set value is out of the tenant's reach.
pub async fn tenant_flag_writes_stay_in_their_tenant(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "acme", "gold").await;
    create(&ctx, "beta", "gold").await;
    let (a, b) = (tenant_admin(&ctx, "acme", "admin-a").await, tenant_admin(&ctx, "beta", "admin-b").await);
    let r = &ctx.registry;
    let platform_meta = FlagMeta { description: Some("ranking v2".into()), ..FlagMeta::default() };
    r.set_flag_rule(
        &ctx.admin,
        FlagScope::Global,
        key("ranking"),
        FlagRule::all(FlagValue::Bool(false)),
        platform_meta,
    )
    .await
    .unwrap();
    let definition = |defs: Vec<FlagDefinition>, k: &str| defs.into_iter().find(|d| d.key.as_str() == k);
    let before = definition(r.flag_definitions(&ctx.admin).await.unwrap(), "ranking").unwrap();

    // a platform flag: the tenant sets a value of its type, never its metadata
    let meta = FlagMeta {
        description: Some("mine".into()),
        expires_at: Some(Some(time::OffsetDateTime::UNIX_EPOCH)),
        ..FlagMeta::default()
    };
    let refused = r.set_tenant_flag_rule(&a, key("ranking"), FlagRule::all(FlagValue::Bool(true)), meta, None).await;
    assert_eq!(refused.unwrap_err().code(), ErrorCode::Forbidden);
    let mismatch = r.set_tenant_flag(&a, key("ranking"), FlagValue::String("on".into())).await.unwrap_err();
    assert_eq!(mismatch.code(), ErrorCode::InvalidInput);
    let b_before = r.evaluate_flag(&b, &key("ranking")).await.unwrap();
    r.set_tenant_flag(&a, key("ranking"), FlagValue::Bool(true)).await.unwrap();
    let after = definition(r.flag_definitions(&ctx.admin).await.unwrap(), "ranking").unwrap();
    assert_eq!(
        (after.version, after.description.as_str()),
        (before.version, "ranking v2"),
        "the platform's definition"
    );
    assert_eq!(r.evaluate_flag(&b, &key("ranking")).await.unwrap(), b_before, "beta sees nothing of acme's write");
    assert!(r.stale_flags(&ctx.admin, time::Duration::days(3650)).await.unwrap().is_empty(), "no expiry leaked in");

    // a key of acme's own: beta may use the same name with another type, and neither sees the other
    r.set_tenant_flag(&a, key("beta.banner"), FlagValue::String("hello".into())).await.unwrap();
    r.set_tenant_flag(&b, key("beta.banner"), FlagValue::Bool(true)).await.unwrap();
    let b_version = r.evaluate_flag(&b, &key("beta.banner")).await.unwrap();
    r.set_tenant_flag(&a, key("beta.banner"), FlagValue::String("again".into())).await.unwrap();
    assert_eq!(
        r.evaluate_flag(&b, &key("beta.banner")).await.unwrap(),
        b_version,
        "acme's writes do not move beta's version"
    );
    let own_mismatch = r.set_tenant_flag(&a, key("beta.banner"), FlagValue::Bool(true)).await.unwrap_err();
    assert_eq!(own_mismatch.code(), ErrorCode::InvalidInput, "a tenant's own key keeps its type for that tenant");
    assert!(definition(r.flag_definitions(&ctx.admin).await.unwrap(), "beta.banner").is_none(), "not a platform flag");

    // an entitlement: set by the platform, out of the tenant admin's reach until lifted
    let locked = FlagRule::all(FlagValue::Bool(false));
    r.set_tenant_flag_rule(&ctx.admin.act_in(tid("beta")), key("ranking"), locked, FlagMeta::default(), Some(true))
        .await
        .unwrap();
    let refused = r.set_tenant_flag(&b, key("ranking"), FlagValue::Bool(true)).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Forbidden, "{refused}");
    assert_eq!(r.delete_tenant_flag(&b, key("ranking")).await.unwrap_err().code(), ErrorCode::Forbidden);
    let mark = r.set_tenant_flag_rule(
        &b,
        key("ranking"),
        FlagRule::all(FlagValue::Bool(true)),
        FlagMeta::default(),
        Some(false),
    );
    assert_eq!(mark.await.unwrap_err().code(), ErrorCode::Forbidden, "only the platform marks entitlements");
    assert_eq!(
        value_of(r.evaluate_flag(&b, &key("ranking")).await.unwrap()),
        Some(FlagValue::Bool(false)),
        "the entitlement holds"
    );
    let unlock = FlagRule::all(FlagValue::Bool(false));
    r.set_tenant_flag_rule(&ctx.admin.act_in(tid("beta")), key("ranking"), unlock, FlagMeta::default(), Some(false))
        .await
        .unwrap();
    r.set_tenant_flag(&b, key("ranking"), FlagValue::Bool(true)).await.unwrap();

    // the platform later defines acme's key with another type: the platform's values apply
    r.set_flag(&ctx.admin, FlagScope::Global, key("beta.banner"), FlagValue::Number(5.0)).await.unwrap();
    for scope in [&a, &b] {
        let got = r.evaluate_flag(scope, &key("beta.banner")).await.unwrap();
        assert_eq!(value_of(got.clone()), Some(FlagValue::Number(5.0)), "{got:?}");
    }
}

pub async fn flags_follow_the_hierarchy(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    for (id, t) in [("finance", "platinum"), ("marketing", "silver"), ("hr", "silver")] {
        create(&ctx, id, t).await;
    }
    let set = |scope: FlagScope, k: &str, v: bool| {
        let r = ctx.registry.clone();
        let admin = ctx.admin.clone();
        let k = key(k);
        async move { r.set_flag(&admin, scope, k, FlagValue::Bool(v)).await.unwrap() }
    };
    set(FlagScope::Global, "basic_search", true).await;
    set(FlagScope::Global, "advanced_analytics", false).await;
    set(FlagScope::Tier(tier("platinum")), "advanced_analytics", true).await;
    set(FlagScope::Tenant(tid("marketing")), "advanced_analytics", true).await;

    let eval = |id: &str| {
        let r = ctx.registry.clone();
        let scope = ctx.admin.act_in(tid(id));
        async move { r.evaluate_flag(&scope, &key("advanced_analytics")).await.unwrap() }
    };
    // three writes to advanced_analytics: version 3
    assert_eq!(
        eval("finance").await,
        Evaluation::Resolved { value: FlagValue::Bool(true), level: FlagLevel::Tier, split: false, version: 3 }
    );
    // a tenant value's version adds its own (1) to the definition's
    assert_eq!(
        eval("marketing").await,
        Evaluation::Resolved { value: FlagValue::Bool(true), level: FlagLevel::Tenant, split: false, version: 4 }
    );
    assert_eq!(
        eval("hr").await,
        Evaluation::Resolved { value: FlagValue::Bool(false), level: FlagLevel::Global, split: false, version: 3 }
    );
    let unknown = ctx.registry.evaluate_flag(&ctx.admin.act_in(tid("hr")), &key("no_such_flag")).await.unwrap();
    assert_eq!(unknown, Evaluation::Unknown);

    // replacing a value, typed values, deleting
    ctx.registry
        .set_flag(&ctx.admin, FlagScope::Tenant(tid("marketing")), key("advanced_analytics"), FlagValue::Bool(false))
        .await
        .unwrap();
    // the definition's version 4 plus the value's own 2
    assert_eq!(
        eval("marketing").await,
        Evaluation::Resolved { value: FlagValue::Bool(false), level: FlagLevel::Tenant, split: false, version: 6 }
    );
    ctx.registry.delete_flag(&ctx.admin, FlagScope::Tenant(tid("marketing")), key("advanced_analytics")).await.unwrap();
    assert_eq!(
        eval("marketing").await,
        Evaluation::Resolved { value: FlagValue::Bool(false), level: FlagLevel::Global, split: false, version: 5 }
    );
    let gone =
        ctx.registry.delete_flag(&ctx.admin, FlagScope::Tenant(tid("marketing")), key("advanced_analytics")).await;
    assert_eq!(gone.unwrap_err().code(), ErrorCode::FlagNotFound);
    let json = FlagValue::Json(serde_json::json!({"model": "small", "top_k": 5}));
    ctx.registry.set_flag(&ctx.admin, FlagScope::Tier(tier("silver")), key("rag.config"), json.clone()).await.unwrap();
    let got = ctx.registry.evaluate_flag(&ctx.admin.act_in(tid("hr")), &key("rag.config")).await.unwrap();
    assert_eq!(got, Evaluation::Resolved { value: json, level: FlagLevel::Tier, split: false, version: 1 });
    // a flag keeps its type at every level
    let mismatch = ctx
        .registry
        .set_flag(&ctx.admin, FlagScope::Tenant(tid("hr")), key("advanced_analytics"), FlagValue::String("yes".into()))
        .await
        .unwrap_err();
    assert_eq!(mismatch.code(), ErrorCode::InvalidInput);
    assert!(mismatch.to_string().contains("boolean"), "{mismatch}");
    // rollouts and metadata persist; definitions carry them
    let meta = tenantry_domain::FlagMeta {
        description: Some("new search ranking".into()),
        owner: Some("search-team".into()),
        expires_at: Some(Some(time::macros::datetime!(2027-01-01 00:00 UTC))),
    };
    let rule = tenantry_domain::FlagRule { value: FlagValue::Bool(true), rollout: Some(100) };
    ctx.registry
        .set_flag_rule(&ctx.admin, FlagScope::Tier(tier("silver")), key("ranking_v2"), rule, meta)
        .await
        .unwrap();
    let got = ctx.registry.evaluate_flag(&ctx.admin.act_in(tid("hr")), &key("ranking_v2")).await.unwrap();
    assert_eq!(
        got,
        Evaluation::Resolved { value: FlagValue::Bool(true), level: FlagLevel::Tier, split: true, version: 1 }
    );
    let defs = ctx.registry.flag_definitions(&ctx.admin).await.unwrap();
    let ranking = defs.iter().find(|d| d.key.as_str() == "ranking_v2").unwrap();
    assert_eq!((ranking.kind, ranking.owner.as_deref()), (tenantry_domain::FlagKind::Boolean, Some("search-team")));
    assert_eq!(ranking.expires_at, Some(time::macros::datetime!(2027-01-01 00:00 UTC)));
    assert_eq!(defs.iter().find(|d| d.key.as_str() == "advanced_analytics").unwrap().version, 5);
    let rows = ctx.registry.list_flags(&ctx.admin).await.unwrap();
    assert_eq!(rows.iter().find(|r| r.key.as_str() == "ranking_v2").unwrap().rollout, Some(100));

    // scopes must name something that exists
    let e = ctx.registry.set_flag(&ctx.admin, FlagScope::Tier(tier("diamond")), key("x"), FlagValue::Bool(true)).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::TierNotFound);
    let e = ctx.registry.set_flag(&ctx.admin, FlagScope::Tenant(tid("ghost")), key("x"), FlagValue::Bool(true)).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::TenantNotFound);

    let rows = ctx.registry.list_flags(&ctx.admin).await.unwrap();
    assert_eq!(rows.len(), 5);
}

/// Adversarial: through every scoped port method, tenant B's scope never reaches tenant A's data.
pub async fn a_tenant_scope_never_reaches_another_tenant(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    ctx.registry.create_tenant(&ctx.admin, full_tenant("tenant_a", "gold")).await.unwrap();
    create(&ctx, "tenant_b", "gold").await;
    ctx.registry
        .set_flag(&ctx.admin, FlagScope::Tenant(tid("tenant_a")), key("secret_beta"), FlagValue::Bool(true))
        .await
        .unwrap();
    let a = ctx.admin.act_in(tid("tenant_a"));
    let b = ctx.admin.act_in(tid("tenant_b"));

    // flags: A's override is not even loaded for B
    let b_flags = ctx.store().flags_for_tenant(&b).await.unwrap();
    assert_eq!(b_flags.keys().len(), 0, "B sees no key defined only for A");
    assert_eq!(ctx.registry.evaluate_flag(&b, &key("secret_beta")).await.unwrap(), Evaluation::Unknown);

    // writing A's row through B's scope is refused and changes nothing
    let mut forged = ctx.registry.get_tenant(&a).await.unwrap();
    forged.name = "pwned".into();
    forged.version += 1;
    let audit = tenantry_app::AuditRecord {
        at: forged.updated_at,
        actor: b.actor().clone(),
        tenant: Some(tid("tenant_b")),
        operation: "forged".into(),
        before: None,
        after: None,
        reason: None,
        request_id: None,
    };
    let r = ctx.store().update_tenant(&b, &forged, 1, &audit).await;
    assert!(matches!(r, Err(StoreError::NotFound(tenantry_app::Missing::Tenant(_)))), "{r:?}");
    assert_eq!(ctx.registry.get_tenant(&a).await.unwrap().name, "Tenant tenant_a");

    // audit: B's trail holds only B's entries
    let b_audit = ctx.registry.tenant_audit(&b, 100).await.unwrap();
    assert!(!b_audit.is_empty());
    assert!(b_audit.iter().all(|e| e.entry.record.tenant == Some(tid("tenant_b"))), "{b_audit:?}");
    assert!(b_audit.iter().all(|e| e.entry.record.operation != "forged"));
}

pub async fn health_is_scored_and_stored(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "legal", "gold").await;
    let scope = ctx.admin.act_in(tid("legal"));
    let signals = HealthSignals::new(600.0, 0.02, 0.95, 0.85).unwrap();
    let (t, report) = ctx.registry.record_health(&scope, signals).await.unwrap();
    assert_eq!(report.score, 70.0);
    assert_eq!(ctx.registry.get_tenant(&scope).await.unwrap().health_score, Some(70.0));
    assert_eq!(t.health_updated_at, Some(ctx.clock.now()));
}

pub async fn statistics_count_by_status_tier_and_health(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    for (id, t) in [("a1", "gold"), ("a2", "gold"), ("a3", "silver")] {
        create(&ctx, id, t).await;
    }
    ctx.registry.transition(&ctx.admin.act_in(tid("a3")), TenantStatus::Suspended, "why", None, None).await.unwrap();
    let s = HealthSignals::new(1200.0, 0.10, 0.80, 0.95).unwrap();
    ctx.registry.record_health(&ctx.admin.act_in(tid("a1")), s).await.unwrap();
    let stats = ctx.registry.statistics(&ctx.admin).await.unwrap();
    assert_eq!(stats.total, 3);
    let last = ctx.registry.recent_audit(&ctx.admin, 1).await.unwrap();
    assert_eq!(last[0].record.operation, "platform.read.statistics", "platform reads are audited");
    assert_eq!(last[0].record.actor, *ctx.admin.actor());
    let pairs = |v: &[(String, i64)]| v.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(",");
    assert_eq!(pairs(&stats.by_status), "active=2,suspended=1");
    assert_eq!(pairs(&stats.by_tier), "gold=2,silver=1");
    assert_eq!(pairs(&stats.by_health), "critical=1,unknown=2");
}

/// The store's own constraints refuse invalid rows even when the application layer is bypassed.
pub async fn store_constraints_refuse_invalid_rows(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    create(&ctx, "ops", "gold").await;
    let scope = ctx.admin.act_in(tid("ops"));
    let current = ctx.registry.get_tenant(&scope).await.unwrap();
    let audit = tenantry_app::AuditRecord {
        at: current.updated_at,
        actor: ctx.admin.actor().clone(),
        tenant: Some(tid("ops")),
        operation: "bypass".into(),
        before: None,
        after: None,
        reason: None,
        request_id: None,
    };
    let mut bad_sla = current.clone();
    bad_sla.limits.sla_target = 1.5;
    bad_sla.version += 1;
    let r = ctx.store().update_tenant(&scope, &bad_sla, current.version, &audit).await;
    assert!(matches!(r, Err(StoreError::ConstraintViolated(_))), "{r:?}");
    let mut bad_users = current.clone();
    bad_users.limits.max_users = 0;
    bad_users.version += 1;
    let r = ctx.store().update_tenant(&scope, &bad_users, current.version, &audit).await;
    assert!(matches!(r, Err(StoreError::ConstraintViolated(_))), "{r:?}");
    let mut bad_archive = current.clone();
    bad_archive.status = TenantStatus::Archived; // archived without a retention date
    bad_archive.version += 1;
    let r = ctx.store().update_tenant(&scope, &bad_archive, current.version, &audit).await;
    assert!(matches!(r, Err(StoreError::ConstraintViolated(_))), "{r:?}");
    assert_eq!(ctx.registry.get_tenant(&scope).await.unwrap(), current, "nothing was written");
    let ops: Vec<String> = ctx
        .registry
        .tenant_audit(&scope, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.record.operation)
        .filter(|op| !op.ends_with(".read"))
        .collect();
    assert_eq!(ops, ["tenant.create", "tenant.place"], "no audit entry for a refused write");
}

/// Users, memberships and keys: round trips, and a tenant scope only ever touches its own
/// tenant's memberships.
/// `max_users` holds when members are added, exactly under concurrent additions, and when an
/// invitation is accepted; a role change of an existing member is not an addition.
pub async fn max_users_holds_when_members_are_added(store: Arc<dyn Store>) {
    let ctx = Ctx::new(store).await;
    let mut new = NewTenant::minimal(tid("small-co"), "Small", tier("gold"));
    new.limits.max_users = Some(3);
    ctx.registry.create_tenant(&ctx.admin, new).await.unwrap();
    let dir = &ctx.app.directory;
    let users: Vec<tenantry_domain::UserId> =
        (0..41).map(|i| tenantry_domain::UserId::parse(&format!("member{i}")).unwrap()).collect();
    for u in &users {
        dir.create_user(&ctx.admin, u.clone(), u.as_str()).await.unwrap();
    }
    let scope = ctx.admin.act_in(tid("small-co"));
    let mut adds = tokio::task::JoinSet::new();
    for u in &users[..40] {
        let (dir, scope, u) = (dir.clone(), scope.clone(), u.clone());
        adds.spawn(async move { dir.put_member(&scope, &u, tenantry_domain::Role::Admin).await });
    }
    let (mut added, mut refused) = (0, 0);
    while let Some(result) = adds.join_next().await {
        match result.unwrap() {
            Ok(_) => added += 1,
            Err(AppError::QuotaExceeded(q)) => {
                assert_eq!(q.resource, tenantry_domain::QuotaResource::Users);
                assert_eq!((q.limit, q.current, q.requested), (3, 3, 1), "{q:?}");
                refused += 1;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((added, refused), (3, 37), "exactly max_users members under concurrent additions");
    let members = dir.list_members(&scope).await.unwrap();
    assert_eq!(members.len(), 3);
    // a role change is not an addition
    let first = members[0].user.clone();
    dir.put_member(&scope, &first, tenantry_domain::Role::Viewer).await.expect("role change at the limit");
    // an invitation can be made, but not accepted while the tenant is full
    let admin_id = members.iter().map(|m| m.user.clone()).find(|u| *u != first).unwrap();
    let token = dir.create_key(&ctx.admin, tenantry_app::KeyOwner::User(admin_id), "k", None).await.unwrap().token;
    let admin = dir.authenticate(&token).await.unwrap().tenant(&tid("small-co")).unwrap();
    let invited = dir.put_member(&admin, &users[40], tenantry_domain::Role::Viewer).await.unwrap();
    assert!(matches!(invited, tenantry_app::MemberChange::Invited(_)));
    let token =
        dir.create_key(&ctx.admin, tenantry_app::KeyOwner::User(users[40].clone()), "k", None).await.unwrap().token;
    let newcomer = dir.authenticate(&token).await.unwrap();
    let full = dir.accept_invitation(&newcomer, &tid("small-co")).await.unwrap_err();
    assert_eq!(full.code(), ErrorCode::QuotaExceeded, "{full}");
    // room again after a removal
    dir.remove_member(&scope, &first).await.unwrap();
    dir.accept_invitation(&newcomer, &tid("small-co")).await.expect("the invitation is still open");
    assert_eq!(dir.list_members(&scope).await.unwrap().len(), 3);
}

pub async fn identity_round_trips_and_stays_in_scope(store: Arc<dyn Store>) {
    use tenantry_app::KeyOwner;
    use tenantry_domain::{Role, UserId};
    let ctx = Ctx::new(store.clone()).await;
    let dir = ctx.app.directory.clone();
    create(&ctx, "alpha", "gold").await;
    create(&ctx, "beta", "gold").await;
    let alice = UserId::parse("alice.johnson").unwrap();
    let user = dir.create_user(&ctx.admin, alice.clone(), "Alice Johnson").await.unwrap();
    assert_eq!(dir.get_user(&ctx.admin, &alice).await.unwrap(), user);
    assert_eq!(dir.create_user(&ctx.admin, alice.clone(), "Again").await.unwrap_err().code(), ErrorCode::AlreadyExists);

    let in_alpha = ctx.admin.act_in(tid("alpha"));
    let in_beta = ctx.admin.act_in(tid("beta"));
    dir.put_member(&in_alpha, &alice, Role::Analyst).await.unwrap();
    dir.put_member(&in_alpha, &alice, Role::Admin).await.unwrap(); // a role change, not a second row
    let members = dir.list_members(&in_alpha).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].tenant.as_str(), members[0].role), ("alpha", Role::Admin));
    assert!(dir.list_members(&in_beta).await.unwrap().is_empty(), "beta sees none of alpha's members");
    // removing from beta does not touch alpha
    assert_eq!(dir.remove_member(&in_beta, &alice).await.unwrap_err().code(), ErrorCode::MemberNotFound);
    assert_eq!(dir.memberships_of(&ctx.admin, &alice).await.unwrap().len(), 1);
    let ghost = UserId::parse("ghost").unwrap();
    assert_eq!(dir.put_member(&in_alpha, &ghost, Role::Viewer).await.unwrap_err().code(), ErrorCode::UserNotFound);

    let issued = dir.create_key(&ctx.admin, KeyOwner::User(alice.clone()), "laptop", None).await.unwrap();
    let principal = dir.authenticate(&issued.token).await.unwrap();
    assert_eq!(principal.id(), &alice);
    assert_eq!(principal.memberships(), [(tid("alpha"), Role::Admin)]);
    let listed = dir.list_keys(&ctx.admin, Some(&alice)).await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&issued.key));
    assert_ne!(listed[0].digest, issued.token, "only the digest is stored");
    dir.revoke_key(&ctx.admin, &issued.key.id).await.unwrap();
    assert_eq!(dir.authenticate(&issued.token).await.unwrap_err().code(), ErrorCode::Unauthenticated);
    assert!(dir.list_keys(&ctx.admin, None).await.unwrap()[0].revoked_at.is_some());
    assert_eq!(dir.authenticate("tnt_unknown_token").await.unwrap_err().code(), ErrorCode::Unauthenticated);
    dir.remove_member(&in_alpha, &alice).await.unwrap();
    assert!(dir.memberships_of(&ctx.admin, &alice).await.unwrap().is_empty());
    // every change above is in the audit log with its actor, and no entry carries the token
    let recent = ctx.registry.recent_audit(&ctx.admin, 100).await.unwrap();
    for op in ["user.create", "member.put", "member.remove", "key.create", "key.revoke"] {
        assert!(recent.iter().any(|e| e.record.operation == op && e.record.actor.id == "contract"), "{op}");
    }
    let dump = format!("{recent:?}");
    assert!(!dump.contains(&issued.token) && !dump.contains(&issued.key.digest), "no secret in the audit log");
}

/// Generates one `#[tokio::test]` per contract case. `$make` is an async expression yielding
/// `Some(fresh, empty, migrated Arc<dyn Store>)`, or `None` when the backend is not configured
/// outside CI (a backend must never answer `None` when `CI=true`).
#[macro_export]
macro_rules! contract_suite {
    ($make:expr) => {
        $crate::contract_suite!(@cases $make;
            builtin_tiers_are_seeded,
            operator_adds_a_tier,
            tenant_round_trips_every_attribute,
            create_refuses_duplicates_and_unknown_tiers,
            list_filters_and_paginates,
            update_uses_optimistic_concurrency,
            unversioned_updates_racing_all_apply,
            tier_change_applies_new_defaults,
            lifecycle_follows_the_machine_and_is_audited,
            flags_follow_the_hierarchy,
            the_kill_switch_disables_a_flag_everywhere,
            a_tenant_scope_never_reaches_another_tenant,
            health_is_scored_and_stored,
            statistics_count_by_status_tier_and_health,
            store_constraints_refuse_invalid_rows,
            identity_round_trips_and_stays_in_scope,
            tenant_flag_writes_stay_in_their_tenant,
            a_tenants_history_holds_nothing_of_other_tenants,
            max_users_holds_when_members_are_added,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make else { return };
                $crate::$case(store).await;
            }
        )*
    };
}
