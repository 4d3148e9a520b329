//! The registry use-cases: create, read, update and move tenants along their lifecycle; set and
//! evaluate flags; manage tiers; record health. Each write is one store call that commits the
//! change together with its audit entry, or nothing.

use std::sync::Arc;

use tenantry_domain::flags::{StaleReason, stale_flags};
use tenantry_domain::{
    Evaluation, FlagDefinition, FlagKey, FlagMeta, FlagRule, FlagScope, FlagSet, FlagValue, HealthReport,
    HealthSignals, NewTenant, Permission, Tenant, TenantPatch, TenantStatus, Tier, TierName,
};

use crate::access::{Authority, PlatformScope, TenantScope};
use crate::cache::{ConfigCache, InvalidationTarget};
use crate::error::{AppError, StoreError};
use crate::operations::{AuditOp, PlatformRead};
use crate::ports::{AuditEntry, AuditRecord, Clock, FlagRow, FlagWriter, Page, Statistics, Store, TenantFilter};
use crate::snapshot::tenant_snapshot;

pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// What the runtime evaluation path answers.
#[derive(Debug, Clone)]
pub struct RuntimeEvaluation {
    pub evaluations: Vec<(FlagKey, Evaluation)>,
    /// Served from the last snapshot because the store is unavailable.
    pub stale: bool,
}
pub const MAX_PAGE_SIZE: u32 = 1000;

/// How many times a write without a caller's version is tried when concurrent writers keep
/// winning the race; then it answers `concurrent_update`.
pub const UNVERSIONED_ATTEMPTS: u32 = 8;

/// What a change to a tenant computed: its next state, how the audit log records it, and what
/// else the caller wants back.
struct Change<T> {
    next: Tenant,
    operation: AuditOp,
    reason: Option<String>,
    outcome: T,
}

/// The registry service. Cheap to clone; shells hold one per process.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: ConfigCache,
    data_plane: Option<crate::dataplane::DataPlane>,
}

impl Registry {
    /// Serves the runtime evaluation path from `cache` and invalidates it after every write. Build
    /// the services with [`crate::App::build`], which wires one cache into all of them.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cache: ConfigCache) -> Self {
        Self { store, clock, cache, data_plane: None }
    }

    /// Places every new tenant on the vector index pool as it is registered (capacity alerts
    /// fire then, so the next signup never waits for an index).
    pub fn with_data_plane(mut self, data_plane: crate::dataplane::DataPlane) -> Self {
        self.data_plane = Some(data_plane);
        self
    }

    pub fn cache(&self) -> &ConfigCache {
        &self.cache
    }

    async fn invalidate(&self, target: InvalidationTarget) {
        self.cache.invalidate(target).await;
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Platform-wide reads go through the platform path, so they are recorded too: who looked at
    /// every tenant, and when.
    async fn audit_platform_read(
        &self,
        access: &PlatformScope,
        operation: crate::AuditOp,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        let record = AuditRecord::platform_read(access, self.clock.now(), operation, detail);
        Ok(self.store.append_audit(access, &record).await?)
    }

    /// The most recent audit entries of every scope (platform view).
    pub async fn recent_audit(&self, access: &PlatformScope, limit: u32) -> Result<Vec<AuditEntry>, AppError> {
        Ok(self.store.recent_audit(access, limit).await?)
    }

    async fn tier(&self, name: &TierName) -> Result<Tier, AppError> {
        self.store.get_tier(name).await?.ok_or_else(|| AppError::TierNotFound(name.clone()))
    }

    // ---- tiers ---------------------------------------------------------------------------------

    pub async fn list_tiers(&self) -> Result<Vec<Tier>, AppError> {
        Ok(self.store.list_tiers().await?)
    }

    pub async fn get_tier(&self, name: &TierName) -> Result<Tier, AppError> {
        self.tier(name).await
    }

    pub async fn create_tier(&self, access: &PlatformScope, tier: Tier) -> Result<Tier, AppError> {
        let audit = AuditRecord::platform(access, self.clock.now(), AuditOp::TierCreate).change(
            None,
            Some(serde_json::json!({
                "name": tier.name.as_str(), "rank": tier.rank, "isolation": tier.isolation.as_str(),
                "retention_days": tier.retention_days,
            })),
        );
        self.store.insert_tier(access, &tier, &audit).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::AlreadyExists(format!("tier {}", tier.name)),
            other => other.into(),
        })?;
        self.invalidate(InvalidationTarget::All).await;
        Ok(tier)
    }

    // ---- tenants -------------------------------------------------------------------------------

    pub async fn create_tenant(&self, access: &PlatformScope, new: NewTenant) -> Result<Tenant, AppError> {
        let tier = self.tier(&new.tier).await?;
        let now = self.clock.now();
        let tenant = Tenant::create(new, &tier, now)?;
        let audit = AuditRecord::by(access.actor(), access.request_id(), Some(&tenant.id), now, AuditOp::TenantCreate)
            .change(None, Some(tenant_snapshot(&tenant)));
        self.store.insert_tenant(access, &tenant, &audit).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::AlreadyExists(format!("tenant {}", tenant.id)),
            other => other.into(),
        })?;
        if let Some(data_plane) = &self.data_plane {
            // The tenant is committed; a failed placement is retried on its first data request.
            if let Err(e) = data_plane.place(access, &tenant).await {
                tracing::warn!(tenant = tenant.id.as_str(), error = %e, "placement failed; it will be retried on first use");
            }
        }
        Ok(tenant)
    }

    /// Reads a tenant (recorded as `tenant.read`).
    pub async fn get_tenant(&self, scope: &TenantScope) -> Result<Tenant, AppError> {
        scope.require(Permission::ReadTenant)?;
        let tenant = self.load(scope).await?;
        self.audit_tenant_read(scope, AuditOp::TenantRead, serde_json::json!({"version": tenant.version})).await?;
        Ok(tenant)
    }

    /// The tenants `user` can act in, with their role in each, narrowed by status and tier: a
    /// platform administrator may ask for any user, anyone else only for themselves. Each tenant
    /// is read in its own scope (under its RLS context) and the read is recorded in that
    /// tenant's audit history, as any read of a tenant by a principal is.
    pub async fn tenants_of_user(
        &self,
        principal: &crate::Principal,
        user: &tenantry_domain::UserId,
        status: Option<TenantStatus>,
        tier: Option<&TierName>,
    ) -> Result<Vec<(Tenant, tenantry_domain::Role)>, AppError> {
        let memberships: Vec<(tenantry_domain::TenantId, tenantry_domain::Role)> = if principal.is_platform_admin() {
            let access = principal.platform()?;
            let memberships =
                crate::directory::read_memberships(self.store.as_ref(), self.clock.now(), &access, user).await?;
            memberships.into_iter().map(|m| (m.tenant, m.role)).collect()
        } else if principal.id() == user {
            principal.memberships()
        } else {
            return Err(AppError::Forbidden("you may list only your own tenants".to_owned()));
        };
        let mut tenants = Vec::new();
        for (tenant, role) in memberships {
            let t = self.get_tenant(&principal.tenant(&tenant)?).await?;
            if status.is_none_or(|s| s == t.status) && tier.is_none_or(|tier| *tier == t.tier) {
                tenants.push((t, role));
            }
        }
        Ok(tenants)
    }

    async fn load(&self, scope: &TenantScope) -> Result<Tenant, AppError> {
        self.store.get_tenant(scope).await?.ok_or_else(|| AppError::TenantNotFound(scope.tenant().clone()))
    }

    /// Records a read by a principal inside a tenant's scope.
    async fn audit_tenant_read(
        &self,
        scope: &TenantScope,
        operation: crate::AuditOp,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        let record = AuditRecord::tenant(scope, self.clock.now(), operation).change(None, Some(detail));
        Ok(self.store.append_tenant_audit(scope, &record).await?)
    }

    pub async fn list_tenants(
        &self,
        access: &PlatformScope,
        mut filter: TenantFilter,
    ) -> Result<Page<Tenant>, AppError> {
        if filter.limit == 0 {
            filter.limit = DEFAULT_PAGE_SIZE;
        }
        if filter.limit > MAX_PAGE_SIZE {
            return Err(AppError::Invalid(format!("limit must be at most {MAX_PAGE_SIZE}")));
        }
        let items = self.store.list_tenants(access, &filter).await?;
        let detail = serde_json::json!({
            "status": filter.status.map(|s| s.as_str()), "tier": filter.tier.as_ref().map(|t| t.as_str()),
            "after": filter.after.as_ref().map(|t| t.as_str()), "limit": filter.limit, "returned": items.len(),
        });
        self.audit_platform_read(access, AuditOp::PlatformRead(PlatformRead::Tenants), detail).await?;
        let next_cursor =
            (items.len() == filter.limit as usize).then(|| items.last().map(|t| t.id.to_string())).flatten();
        Ok(Page { items, next_cursor })
    }

    /// Writes `next` over `current` with optimistic concurrency, translating store outcomes.
    async fn write(
        &self,
        scope: &TenantScope,
        current: &Tenant,
        next: &Tenant,
        operation: crate::AuditOp,
        reason: Option<String>,
    ) -> Result<(), AppError> {
        let audit = AuditRecord::by(scope.actor(), scope.request_id(), Some(&current.id), next.updated_at, operation)
            .change(Some(tenant_snapshot(current)), Some(tenant_snapshot(next)))
            .because(reason);
        self.store.update_tenant(scope, next, current.version, &audit).await.map_err(|e| match e {
            StoreError::VersionConflict { current: stored } => {
                AppError::VersionConflict { tenant: current.id.clone(), expected: current.version, current: stored }
            }
            other => other.into(),
        })?;
        self.invalidate(InvalidationTarget::Tenant(current.id.clone())).await;
        Ok(())
    }

    /// Reads the tenant and its tier, lets `change` compute its next state, and writes it with optimistic
    /// concurrency. With `expected_version` (the caller's `If-Match`) a tenant that moved on is the
    /// caller's failed precondition: `version_conflict`. Without one the change applies to
    /// whatever is current, so a write that lost a race is tried again from a fresh read, up to
    /// [`UNVERSIONED_ATTEMPTS`] times; losing every try is `concurrent_update`.
    async fn change_tenant<T>(
        &self,
        scope: &TenantScope,
        expected_version: Option<i64>,
        change: impl Fn(&Tenant, &Tier) -> Result<Change<T>, AppError>,
    ) -> Result<(Tenant, T), AppError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.load(scope).await?;
            Self::check_expected(&current, expected_version)?;
            let tier = self.tier(&current.tier).await?;
            let Change { next, operation, reason, outcome } = change(&current, &tier)?;
            match self.write(scope, &current, &next, operation, reason).await {
                Ok(()) => return Ok((next, outcome)),
                Err(AppError::VersionConflict { tenant, .. }) if expected_version.is_none() => {
                    if attempt >= UNVERSIONED_ATTEMPTS {
                        return Err(AppError::ConcurrentUpdate(tenant));
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    fn check_expected(tenant: &Tenant, expected_version: Option<i64>) -> Result<(), AppError> {
        match expected_version {
            Some(expected) if expected != tenant.version => {
                Err(AppError::VersionConflict { tenant: tenant.id.clone(), expected, current: tenant.version })
            }
            _ => Ok(()),
        }
    }

    /// Updates attributes. With `expected_version`, refuses if the tenant moved on since it was read.
    pub async fn update_tenant(
        &self,
        scope: &TenantScope,
        patch: TenantPatch,
        expected_version: Option<i64>,
    ) -> Result<Tenant, AppError> {
        scope.require(Permission::UpdateProfile)?;
        let platform_fields = patch.platform_fields();
        if !platform_fields.is_empty() {
            scope.require_platform(&format!("changing {}", platform_fields.join(", ")))?;
        }
        let new_tier = match &patch.tier {
            Some(name) => Some(self.tier(name).await?),
            None => None,
        };
        let change = |current: &Tenant, current_tier: &Tier| {
            let next = current.apply_patch(&patch, current_tier, new_tier.as_ref(), self.clock.now())?;
            Ok(Change { next, operation: AuditOp::TenantUpdate, reason: None, outcome: () })
        };
        Ok(self.change_tenant(scope, expected_version, change).await?.0)
    }

    /// Moves a tenant along the lifecycle. Archiving starts the retention period: the tier's
    /// `retention_days` unless `retention_days` overrides it.
    pub async fn transition(
        &self,
        scope: &TenantScope,
        target: TenantStatus,
        reason: &str,
        retention_days: Option<u32>,
        expected_version: Option<i64>,
    ) -> Result<Tenant, AppError> {
        scope.require_platform("changing a tenant's lifecycle status")?;
        let change = |current: &Tenant, tier: &Tier| {
            let retention = retention_days.unwrap_or(tier.retention_days);
            let (next, transition) = current.transition(target, scope.actor(), reason, retention, self.clock.now())?;
            let operation = AuditOp::TenantTransition(transition.to);
            Ok(Change { next, operation, reason: Some(transition.reason), outcome: () })
        };
        Ok(self.change_tenant(scope, expected_version, change).await?.0)
    }

    pub async fn record_health(
        &self,
        scope: &TenantScope,
        signals: HealthSignals,
    ) -> Result<(Tenant, HealthReport), AppError> {
        scope.require(Permission::RecordHealth)?;
        let change = |current: &Tenant, _tier: &Tier| {
            let (next, report) = current.record_health(&signals, self.clock.now())?;
            Ok(Change { next, operation: AuditOp::TenantHealth, reason: None, outcome: report })
        };
        self.change_tenant(scope, None, change).await
    }

    pub async fn statistics(&self, access: &PlatformScope) -> Result<Statistics, AppError> {
        let stats = self.store.statistics(access).await?;
        self.audit_platform_read(
            access,
            AuditOp::PlatformRead(PlatformRead::Statistics),
            serde_json::json!({"total": stats.total}),
        )
        .await?;
        Ok(stats)
    }

    /// The tenant's audit trail as the tenant sees it, oldest first (the read itself is recorded
    /// after it).
    pub async fn tenant_audit(
        &self,
        scope: &TenantScope,
        limit: u32,
    ) -> Result<Vec<crate::ports::TenantAuditEntry>, AppError> {
        scope.require(Permission::ReadAudit)?;
        let filter = crate::ports::AuditFilter { limit, ..Default::default() };
        let entries = self.store.tenant_audit(scope, &filter).await?;
        self.audit_tenant_read(scope, AuditOp::AuditRead, serde_json::json!({"returned": entries.len()})).await?;
        Ok(entries)
    }

    // ---- flags ---------------------------------------------------------------------------------

    /// Checks that the tier or tenant a flag scope names exists.
    async fn check_scope(&self, access: &PlatformScope, scope: &FlagScope) -> Result<(), AppError> {
        match scope {
            FlagScope::Global => Ok(()),
            FlagScope::Tier(t) => self.tier(t).await.map(|_| ()),
            FlagScope::Tenant(t) => self.load(&access.act_in(t.clone())).await.map(|_| ()),
        }
    }

    /// The audit entry of a flag change: setting `value`, or with `None`, removing the flag.
    fn flag_audit(
        &self,
        actor: &tenantry_domain::Actor,
        request_id: Option<&str>,
        scope: &FlagScope,
        key: &FlagKey,
        value: Option<(&FlagRule, &FlagMeta)>,
    ) -> AuditRecord {
        let address =
            serde_json::json!({"scope": scope.level().as_str(), "scope_id": scope.scope_id(), "key": key.as_str()});
        let (operation, before, after) = match value {
            Some((rule, meta)) => {
                let mut after = address;
                after["value"] = rule.value.to_json();
                if let Some(p) = rule.rollout {
                    after["rollout_percent"] = p.into();
                }
                if let Some(d) = &meta.description {
                    after["description"] = d.as_str().into();
                }
                if let Some(o) = &meta.owner {
                    after["owner"] = o.as_str().into();
                }
                if let Some(e) = meta.expires_at {
                    after["expires_at"] = e.map(tenantry_domain::tenant::format_time).into();
                }
                (AuditOp::FlagSet, None, Some(after))
            }
            None => (AuditOp::FlagDelete, Some(address), None),
        };
        AuditRecord::by(actor, request_id, scope.tenant(), self.clock.now(), operation).change(before, after)
    }

    /// Sets `value` for every tenant of `scope`.
    pub async fn set_flag(
        &self,
        access: &PlatformScope,
        scope: FlagScope,
        key: FlagKey,
        value: FlagValue,
    ) -> Result<(), AppError> {
        self.set_flag_rule(access, scope, key, FlagRule::all(value), FlagMeta::default()).await
    }

    /// Sets a rule (value, optional rollout) at `scope`, defining the flag if new; `meta` updates
    /// its description, owner and expiry.
    pub async fn set_flag_rule(
        &self,
        access: &PlatformScope,
        scope: FlagScope,
        key: FlagKey,
        rule: FlagRule,
        meta: FlagMeta,
    ) -> Result<(), AppError> {
        if let FlagScope::Tenant(t) = &scope {
            return self.set_tenant_flag_rule(&access.act_in(t.clone()), key, rule, meta, None).await;
        }
        check_rule(&rule, &meta)?;
        self.check_scope(access, &scope).await?;
        let audit = self.flag_audit(access.actor(), access.request_id(), &scope, &key, Some((&rule, &meta)));
        self.store.set_flag(access, &scope, &key, &rule, &meta, &audit).await?;
        self.invalidate(InvalidationTarget::All).await;
        Ok(())
    }

    /// The kill switch: `enabled = false` makes the flag evaluate to `Disabled` for every tenant
    /// (clients use their code default) without touching its values; `true` restores them.
    /// Takes effect on every replica through the invalidation bus.
    pub async fn set_flag_enabled(
        &self,
        access: &PlatformScope,
        key: FlagKey,
        enabled: bool,
        reason: Option<String>,
    ) -> Result<(), AppError> {
        let operation = if enabled { AuditOp::FlagEnable } else { AuditOp::FlagDisable };
        let audit = AuditRecord::platform(access, self.clock.now(), operation)
            .change(
                Some(serde_json::json!({"key": key.as_str(), "enabled": !enabled})),
                Some(serde_json::json!({"key": key.as_str(), "enabled": enabled})),
            )
            .because(reason);
        self.store.set_flag_enabled(access, &key, enabled, &audit).await?;
        self.invalidate(InvalidationTarget::All).await;
        Ok(())
    }

    /// Every flag definition (type, description, owner, expiry, version).
    pub async fn flag_definitions(&self, access: &PlatformScope) -> Result<Vec<FlagDefinition>, AppError> {
        let defs = self.store.flag_definitions(access).await?;
        self.audit_platform_read(
            access,
            AuditOp::PlatformRead(PlatformRead::FlagDefinitions),
            serde_json::json!({"returned": defs.len()}),
        )
        .await?;
        Ok(defs)
    }

    /// Flags older than `max_age`, past their expiry, or evaluating the same for every tenant.
    pub async fn stale_flags(
        &self,
        access: &PlatformScope,
        max_age: time::Duration,
    ) -> Result<Vec<(FlagDefinition, Vec<StaleReason>)>, AppError> {
        let defs = self.store.flag_definitions(access).await?;
        let rows = self.store.list_flags(access).await?;
        let mut set = FlagSet::new();
        for r in rows {
            set.set_rule(r.scope, r.key, FlagRule { value: r.value, rollout: r.rollout });
        }
        let tiers: Vec<TierName> = self.store.list_tiers().await?.into_iter().map(|t| t.name).collect();
        let report = stale_flags(&defs, &set, &tiers, self.clock.now(), max_age);
        self.audit_platform_read(
            access,
            AuditOp::PlatformRead(PlatformRead::StaleFlags),
            serde_json::json!({"returned": report.len()}),
        )
        .await?;
        Ok(report)
    }

    pub async fn delete_flag(&self, access: &PlatformScope, scope: FlagScope, key: FlagKey) -> Result<(), AppError> {
        if let FlagScope::Tenant(t) = &scope {
            return self.delete_tenant_flag(&access.act_in(t.clone()), key).await;
        }
        let audit = self.flag_audit(access.actor(), access.request_id(), &scope, &key, None);
        self.store.delete_flag(access, &scope, &key, &audit).await?;
        self.invalidate(InvalidationTarget::All).await;
        Ok(())
    }

    /// Sets a tenant-level override, inside the tenant's own scope (platform or the tenant's admin).
    pub async fn set_tenant_flag(&self, scope: &TenantScope, key: FlagKey, value: FlagValue) -> Result<(), AppError> {
        self.set_tenant_flag_rule(scope, key, FlagRule::all(value), FlagMeta::default(), None).await
    }

    /// Sets the scope's tenant-level value of a flag. A platform principal writes the platform's
    /// definition and may mark the value `platform_set` (an entitlement; `None` keeps the mark as
    /// it is). The tenant's admin writes a value of a platform flag's type (not its description,
    /// owner or expiry, and not over a platform-set value), or defines a key of the tenant's own:
    /// nothing they do changes what another tenant sees.
    pub async fn set_tenant_flag_rule(
        &self,
        scope: &TenantScope,
        key: FlagKey,
        rule: FlagRule,
        meta: FlagMeta,
        platform_set: Option<bool>,
    ) -> Result<(), AppError> {
        scope.require(Permission::ManageTenantFlags)?;
        check_rule(&rule, &meta)?;
        let writer = flag_writer(scope, platform_set)?;
        self.load(scope).await?.ensure_modifiable("flag changes")?;
        let flag_scope = FlagScope::Tenant(scope.tenant().clone());
        let mut audit = self.flag_audit(scope.actor(), scope.request_id(), &flag_scope, &key, Some((&rule, &meta)));
        if let (Some(set), Some(serde_json::Value::Object(after))) = (platform_set, audit.after.as_mut()) {
            after.insert("platform_set".to_owned(), serde_json::Value::Bool(set));
        }
        self.store.set_tenant_flag(scope, &key, &rule, &meta, writer, &audit).await?;
        self.invalidate_flag_write(scope, writer).await;
        Ok(())
    }

    pub async fn delete_tenant_flag(&self, scope: &TenantScope, key: FlagKey) -> Result<(), AppError> {
        scope.require(Permission::ManageTenantFlags)?;
        let writer = flag_writer(scope, None)?;
        self.load(scope).await?.ensure_modifiable("flag changes")?;
        let flag_scope = FlagScope::Tenant(scope.tenant().clone());
        let audit = self.flag_audit(scope.actor(), scope.request_id(), &flag_scope, &key, None);
        self.store.delete_tenant_flag(scope, &key, writer, &audit).await?;
        self.invalidate_flag_write(scope, writer).await;
        Ok(())
    }

    /// A platform write re-versions the platform's definition, which every tenant's snapshot
    /// carries; a tenant admin's write changes that tenant's snapshot only.
    async fn invalidate_flag_write(&self, scope: &TenantScope, writer: FlagWriter) {
        match writer {
            FlagWriter::Platform { .. } => self.invalidate(InvalidationTarget::All).await,
            FlagWriter::Tenant => self.invalidate(InvalidationTarget::Tenant(scope.tenant().clone())).await,
        }
    }

    /// Evaluates one flag for the scope's tenant: value and the level that decided it.
    pub async fn evaluate_flag(&self, scope: &TenantScope, key: &FlagKey) -> Result<Evaluation, AppError> {
        scope.require(Permission::EvaluateFlags)?;
        let tenant = self.load(scope).await?;
        let flags = self.store.flags_for_tenant(scope).await?;
        let evaluation = flags.evaluate(key, &tenant.id, &tenant.tier);
        self.audit_tenant_read(
            scope,
            AuditOp::FlagEvaluate,
            serde_json::json!({"key": key.as_str(), "reason": evaluation.reason()}),
        )
        .await?;
        Ok(evaluation)
    }

    /// The runtime evaluation path (OFREP): like `evaluate_flag`/`evaluate_all_flags`, but a tenant
    /// that is not active is refused (`tenant_inactive`). `key: None` evaluates every flag.
    ///
    /// Served from the snapshot cache: no store round trip while it is warm (and no audit entry
    /// per evaluation: the runtime path is counted in metrics instead); `stale` says the snapshot
    /// was served because the store is unavailable.
    pub async fn evaluate_for_runtime(
        &self,
        scope: &TenantScope,
        key: Option<&FlagKey>,
    ) -> Result<RuntimeEvaluation, AppError> {
        scope.require(Permission::EvaluateFlags)?;
        let cached = self.cache.get(scope).await?;
        let (tenant, flags, stale) = (cached.snapshot.tenant.clone(), cached.snapshot.flags.clone(), cached.stale);
        if tenant.status != TenantStatus::Active {
            return Err(AppError::TenantInactive { tenant: tenant.id, status: tenant.status });
        }
        let evaluations = match key {
            Some(k) => vec![(k.clone(), flags.evaluate(k, &tenant.id, &tenant.tier))],
            None => flags.evaluate_all(&tenant.id, &tenant.tier),
        };
        Ok(RuntimeEvaluation { evaluations, stale })
    }

    /// Evaluates every defined flag for the scope's tenant.
    pub async fn evaluate_all_flags(&self, scope: &TenantScope) -> Result<Vec<(FlagKey, Evaluation)>, AppError> {
        scope.require(Permission::EvaluateFlags)?;
        let tenant = self.load(scope).await?;
        let flags = self.store.flags_for_tenant(scope).await?;
        let all = flags.evaluate_all(&tenant.id, &tenant.tier);
        self.audit_tenant_read(scope, AuditOp::FlagEvaluateAll, serde_json::json!({"returned": all.len()})).await?;
        Ok(all)
    }

    pub async fn list_flags(&self, access: &PlatformScope) -> Result<Vec<FlagRow>, AppError> {
        let rows = self.store.list_flags(access).await?;
        self.audit_platform_read(
            access,
            AuditOp::PlatformRead(PlatformRead::Flags),
            serde_json::json!({"returned": rows.len()}),
        )
        .await?;
        Ok(rows)
    }
}

/// Who a tenant-level flag write acts for: only a platform principal may mark entitlements.
fn flag_writer(scope: &TenantScope, platform_set: Option<bool>) -> Result<FlagWriter, AppError> {
    match scope.authority() {
        Authority::Platform => Ok(FlagWriter::Platform { platform_set }),
        Authority::Member(_) if platform_set.is_some() => {
            Err(AppError::Forbidden("only platform administrators mark a value as platform-set".to_owned()))
        }
        Authority::Member(_) => Ok(FlagWriter::Tenant),
    }
}

fn check_rule(rule: &FlagRule, meta: &FlagMeta) -> Result<(), AppError> {
    if rule.rollout.is_some_and(|p| p > 100) {
        return Err(AppError::Invalid("a rollout percentage is between 0 and 100".to_owned()));
    }
    Ok(meta.validate()?)
}
