//! The tenant: the registry's single source of truth about one customer or business unit.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use crate::actor::Actor;
use crate::health::{HealthReport, HealthSignals};
use crate::ids::{IdError, Label, TenantId, TierName};
use crate::invalid::Invalid;
use crate::lifecycle::{LifecycleError, TenantStatus};
pub use crate::limits::{LimitField, LimitOverrides, Limits};
use crate::money::{BudgetAction, Money};
use crate::tier::Tier;

/// RFC 3339 in UTC, the one textual time format of the registry.
pub fn format_time(t: OffsetDateTime) -> String {
    t.checked_to_offset(time::UtcOffset::UTC)
        .and_then(|u| u.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.unix_timestamp().to_string())
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Limit(#[from] Invalid),
    #[error("tenant {tenant} is {status}: {what} is only possible while it is active, suspended or migrating")]
    NotModifiable { tenant: TenantId, status: TenantStatus, what: &'static str },
}

fn invalid(msg: impl Into<String>) -> TenantError {
    TenantError::Invalid(msg.into())
}

fn check_email(email: &str) -> Result<(), TenantError> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err(invalid(format!("billing_email {email:?} is not a valid e-mail address"))) }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), TenantError> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if value.chars().count() > max || value.chars().any(|c| c.is_control()) {
        return Err(invalid(format!("{field} must be at most {max} characters with no control characters")));
    }
    Ok(())
}

fn check_metadata(metadata: &serde_json::Value) -> Result<(), TenantError> {
    if !metadata.is_object() {
        return Err(invalid("metadata must be a JSON object"));
    }
    if metadata.to_string().len() > 64 * 1024 {
        return Err(invalid("metadata must be at most 64 KiB of JSON"));
    }
    Ok(())
}

/// What it takes to create a tenant. Unset limits come from the tier.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    pub id: TenantId,
    pub name: String,
    pub tier: TierName,
    pub billing_email: Option<String>,
    pub owner: Option<String>,
    pub limits: LimitOverrides,
    pub cost_center: Option<String>,
    pub monthly_budget: Option<Money>,
    pub budget_action: BudgetAction,
    pub compliance_tags: BTreeSet<Label>,
    pub data_region: Option<Label>,
    pub metadata: serde_json::Value,
}

impl NewTenant {
    /// A tenant with just an id, name and tier; every other field defaulted.
    pub fn minimal(id: TenantId, name: impl Into<String>, tier: TierName) -> Self {
        NewTenant {
            id,
            name: name.into(),
            tier,
            billing_email: None,
            owner: None,
            limits: LimitOverrides::default(),
            cost_center: None,
            monthly_budget: None,
            budget_action: BudgetAction::Alert,
            compliance_tags: BTreeSet::new(),
            data_region: None,
            metadata: serde_json::json!({}),
        }
    }
}

/// A change to a tenant's attributes. Outer `None` = leave as is; for nullable fields
/// `Some(None)` clears. Lifecycle and health have their own operations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub tier: Option<TierName>,
    pub billing_email: Option<Option<String>>,
    pub owner: Option<Option<String>>,
    pub limits: LimitOverrides,
    /// Limit fields to reset to the tier default.
    pub reset_limits: Vec<LimitField>,
    pub cost_center: Option<Option<String>>,
    pub monthly_budget: Option<Option<Money>>,
    pub budget_action: Option<BudgetAction>,
    pub compliance_tags: Option<BTreeSet<Label>>,
    pub data_region: Option<Label>,
    pub metadata: Option<serde_json::Value>,
}

impl TenantPatch {
    pub fn is_empty(&self) -> bool {
        *self == TenantPatch::default()
    }

    /// The fields this patch sets that only the platform may change: tier, limits, billing,
    /// compliance and region. A tenant's own admin may change the rest (name, contacts, metadata).
    pub fn platform_fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.tier.is_some() {
            fields.push("tier");
        }
        fields.extend(self.limits.explicit_fields().into_iter().map(LimitField::as_str));
        if !self.reset_limits.is_empty() {
            fields.push("reset_limits");
        }
        if self.cost_center.is_some() {
            fields.push("cost_center");
        }
        if self.monthly_budget.is_some() {
            fields.push("monthly_budget");
        }
        if self.budget_action.is_some() {
            fields.push("budget_action");
        }
        if self.compliance_tags.is_some() {
            fields.push("compliance_tags");
        }
        if self.data_region.is_some() {
            fields.push("data_region");
        }
        fields
    }
}

/// One tenant. Invariants: limits are valid; `status` was only ever reached through allowed
/// transitions; `retention_until` is set exactly when the tenant has been archived; `version`
/// grows by one on every change (optimistic concurrency).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub billing_email: Option<String>,
    pub owner: Option<String>,
    pub tier: TierName,
    pub limits: Limits,
    pub limit_overrides: LimitOverrides,
    pub cost_center: Option<String>,
    pub monthly_budget: Option<Money>,
    #[serde(default)]
    pub budget_action: BudgetAction,
    pub status: TenantStatus,
    pub status_reason: Option<String>,
    pub status_changed_at: OffsetDateTime,
    pub retention_until: Option<OffsetDateTime>,
    pub health_score: Option<f64>,
    pub health_updated_at: Option<OffsetDateTime>,
    pub compliance_tags: BTreeSet<Label>,
    pub data_region: Label,
    pub metadata: serde_json::Value,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A lifecycle move, as recorded: who, why, from where to where, when.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub tenant: TenantId,
    pub from: TenantStatus,
    pub to: TenantStatus,
    pub actor: Actor,
    pub reason: String,
    pub at: OffsetDateTime,
}

pub const DEFAULT_REGION: &str = "default";

impl Tenant {
    /// Creates an active tenant of `tier`. `tier` must be the catalog entry named by `new.tier`.
    pub fn create(new: NewTenant, tier: &Tier, now: OffsetDateTime) -> Result<Tenant, TenantError> {
        if new.tier != tier.name {
            return Err(invalid(format!("tier {} does not match the catalog entry {}", new.tier, tier.name)));
        }
        check_text("name", &new.name, 200)?;
        if let Some(e) = &new.billing_email {
            check_email(e)?;
        }
        if let Some(o) = &new.owner {
            check_text("owner", o, 200)?;
        }
        if let Some(c) = &new.cost_center {
            check_text("cost_center", c, 64)?;
        }
        check_metadata(&new.metadata)?;
        let limits = new.limits.resolve_over(&tier.default_limits);
        limits.validate()?;
        Ok(Tenant {
            id: new.id,
            name: new.name,
            billing_email: new.billing_email,
            owner: new.owner,
            tier: new.tier,
            limits,
            limit_overrides: new.limits,
            cost_center: new.cost_center,
            monthly_budget: new.monthly_budget,
            budget_action: new.budget_action,
            status: TenantStatus::Active,
            status_reason: Some("created".to_owned()),
            status_changed_at: now,
            retention_until: None,
            health_score: None,
            health_updated_at: None,
            compliance_tags: new.compliance_tags,
            data_region: new
                .data_region
                .unwrap_or_else(|| Label::parse(DEFAULT_REGION).expect("the default region is a valid label")),
            metadata: new.metadata,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// Refuses changes (`what`) to an archived or deleted tenant.
    pub fn ensure_modifiable(&self, what: &'static str) -> Result<(), TenantError> {
        match self.status {
            TenantStatus::Archived | TenantStatus::Deleted => {
                Err(TenantError::NotModifiable { tenant: self.id.clone(), status: self.status, what })
            }
            _ => Ok(()),
        }
    }

    /// Applies a patch. `new_tier` must be given (the catalog entry) when the patch changes tier.
    pub fn apply_patch(
        &self,
        patch: &TenantPatch,
        current_tier: &Tier,
        new_tier: Option<&Tier>,
        now: OffsetDateTime,
    ) -> Result<Tenant, TenantError> {
        self.ensure_modifiable("changing attributes")?;
        if patch.is_empty() {
            return Err(invalid("nothing to update: give at least one field to change"));
        }
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            check_text("name", name, 200)?;
            next.name = name.clone();
        }
        if let Some(e) = &patch.billing_email {
            if let Some(e) = e {
                check_email(e)?;
            }
            next.billing_email = e.clone();
        }
        if let Some(o) = &patch.owner {
            if let Some(o) = o {
                check_text("owner", o, 200)?;
            }
            next.owner = o.clone();
        }
        if let Some(c) = &patch.cost_center {
            if let Some(c) = c {
                check_text("cost_center", c, 64)?;
            }
            next.cost_center = c.clone();
        }
        if let Some(b) = &patch.monthly_budget {
            next.monthly_budget = b.clone();
        }
        if let Some(a) = patch.budget_action {
            next.budget_action = a;
        }
        if let Some(tags) = &patch.compliance_tags {
            next.compliance_tags = tags.clone();
        }
        if let Some(region) = &patch.data_region {
            next.data_region = region.clone();
        }
        if let Some(m) = &patch.metadata {
            check_metadata(m)?;
            next.metadata = m.clone();
        }
        let tier = match (&patch.tier, new_tier) {
            (Some(name), Some(t)) if *name == t.name => t,
            (Some(name), _) => {
                return Err(invalid(format!("tier {name} was not resolved from the catalog")));
            }
            (None, _) => current_tier,
        };
        next.tier = tier.name.clone();
        let mut overrides = self.limit_overrides.merged(&patch.limits);
        for field in &patch.reset_limits {
            overrides.set(*field, None)?;
        }
        next.limits = overrides.resolve_over(&tier.default_limits);
        next.limits.validate()?;
        next.limit_overrides = overrides;
        next.version = self.version + 1;
        next.updated_at = now;
        Ok(next)
    }

    /// Moves the tenant along the lifecycle. Archiving starts the retention period
    /// (`retention_days`, usually the tier's); deletion is refused while it runs.
    pub fn transition(
        &self,
        target: TenantStatus,
        actor: &Actor,
        reason: &str,
        retention_days: u32,
        now: OffsetDateTime,
    ) -> Result<(Tenant, Transition), TenantError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(LifecycleError::MissingReason.into());
        }
        check_text("reason", reason, 1000)?;
        if !self.status.can_transition_to(target) {
            return Err(LifecycleError::InvalidTransition { from: self.status, to: target }.into());
        }
        if target == TenantStatus::Deleted
            && let Some(until) = self.retention_until
            && now < until
        {
            return Err(LifecycleError::RetentionActive { retention_until: until }.into());
        }
        let mut next = self.clone();
        next.status = target;
        next.status_reason = Some(reason.to_owned());
        next.status_changed_at = now;
        if target == TenantStatus::Archived {
            next.retention_until = Some(crate::timestamp::days_after("retention_days", now, retention_days)?);
        }
        next.version = self.version + 1;
        next.updated_at = now;
        let transition = Transition {
            tenant: self.id.clone(),
            from: self.status,
            to: target,
            actor: actor.clone(),
            reason: reason.to_owned(),
            at: now,
        };
        Ok((next, transition))
    }

    /// Records a health measurement.
    pub fn record_health(
        &self,
        signals: &HealthSignals,
        now: OffsetDateTime,
    ) -> Result<(Tenant, HealthReport), TenantError> {
        self.ensure_modifiable("recording health")?;
        let report = signals.score();
        let mut next = self.clone();
        next.health_score = Some(report.score);
        next.health_updated_at = Some(now);
        next.version = self.version + 1;
        next.updated_at = now;
        Ok((next, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::ActorKind;
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::datetime;

    fn tiers() -> Vec<Tier> {
        Tier::builtin_catalog()
    }
    fn tier(name: &str) -> Tier {
        tiers().into_iter().find(|t| t.name.as_str() == name).unwrap()
    }
    fn new_tenant(id: &str, tier_name: &str) -> NewTenant {
        NewTenant::minimal(TenantId::parse(id).unwrap(), "Test", TierName::parse(tier_name).unwrap())
    }
    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn limits_default_from_tier_and_explicit_values_override() {
        let mut new = new_tenant("finance_dept", "platinum");
        new.limits.max_users = Some(100);
        let t = Tenant::create(new, &tier("platinum"), NOW).unwrap();
        assert_eq!(t.limits.max_users, 100);
        assert_eq!(t.limits.max_documents, tier("platinum").default_limits.max_documents);
        assert_eq!(t.limit_overrides.explicit_fields(), [LimitField::MaxUsers]);
        assert_eq!(t.status, TenantStatus::Active);
        assert_eq!(t.version, 1);
    }

    #[test]
    fn tier_change_follows_new_defaults_but_keeps_overrides() {
        let mut new = new_tenant("hr", "silver");
        new.limits.max_users = Some(7);
        let t = Tenant::create(new, &tier("silver"), NOW).unwrap();
        let patch = TenantPatch { tier: Some(TierName::parse("gold").unwrap()), ..Default::default() };
        let up = t.apply_patch(&patch, &tier("silver"), Some(&tier("gold")), NOW).unwrap();
        assert_eq!(up.limits.max_users, 7);
        assert_eq!(up.limits.max_documents, tier("gold").default_limits.max_documents);
        assert_eq!(up.version, 2);
        let reset = TenantPatch { reset_limits: vec![LimitField::MaxUsers], ..Default::default() };
        let up2 = up.apply_patch(&reset, &tier("gold"), None, NOW).unwrap();
        assert_eq!(up2.limits.max_users, tier("gold").default_limits.max_users);
    }

    #[test]
    fn invalid_attributes_are_refused() {
        type Mutation = Box<dyn Fn(&mut NewTenant)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("name", Box::new(|n| n.name = "  ".into())),
            ("billing_email", Box::new(|n| n.billing_email = Some("nope".into()))),
            ("sla_target", Box::new(|n| n.limits.sla_target = Some(1.5))),
            ("max_users", Box::new(|n| n.limits.max_users = Some(0))),
            ("metadata", Box::new(|n| n.metadata = serde_json::json!([1]))),
        ];
        for (field, mutate) in cases {
            let mut new = new_tenant("acme", "gold");
            mutate(&mut new);
            let err = Tenant::create(new, &tier("gold"), NOW).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn retention_blocks_early_deletion() {
        let actor = Actor::new(ActorKind::Operator, "test");
        let t = Tenant::create(new_tenant("legal", "gold"), &tier("gold"), NOW).unwrap();
        let (t, _) = t.transition(TenantStatus::Suspended, &actor, "audit", 30, NOW).unwrap();
        let (t, _) = t.transition(TenantStatus::Archived, &actor, "closed", 30, NOW).unwrap();
        assert_eq!(t.retention_until, Some(NOW + Duration::days(30)));
        let early = t.transition(TenantStatus::Deleted, &actor, "purge", 30, NOW + Duration::days(29));
        assert!(matches!(early, Err(TenantError::Lifecycle(LifecycleError::RetentionActive { .. }))));
        let (t, _) = t.transition(TenantStatus::Deleted, &actor, "purge", 30, NOW + Duration::days(30)).unwrap();
        assert_eq!(t.status, TenantStatus::Deleted);
        assert!(
            t.apply_patch(&TenantPatch { name: Some("x".into()), ..Default::default() }, &tier("gold"), None, NOW)
                .is_err()
        );
    }

    #[test]
    fn transition_needs_a_reason() {
        let actor = Actor::new(ActorKind::Operator, "test");
        let t = Tenant::create(new_tenant("legal", "gold"), &tier("gold"), NOW).unwrap();
        assert!(matches!(
            t.transition(TenantStatus::Suspended, &actor, " ", 0, NOW),
            Err(TenantError::Lifecycle(LifecycleError::MissingReason))
        ));
    }

    proptest! {
        /// Driving `Tenant::transition` with random targets: every accepted move is an edge of the
        /// machine, every refused one is not, the version grows by one per accepted move, and
        /// nothing leaves `deleted`.
        #[test]
        fn transitions_only_follow_the_machine(targets in proptest::collection::vec(0usize..5, 0..48)) {
            let actor = Actor::new(ActorKind::System, "prop");
            let mut t = Tenant::create(new_tenant("prop", "bronze"), &tier("bronze"), NOW).unwrap();
            for i in targets {
                let target = TenantStatus::ALL[i];
                let before = t.status;
                match t.transition(target, &actor, "prop", 0, NOW) {
                    Ok((next, tr)) => {
                        prop_assert!(before.can_transition_to(target));
                        prop_assert_eq!((tr.from, tr.to), (before, target));
                        prop_assert_eq!(next.version, t.version + 1);
                        t = next;
                    }
                    Err(_) => prop_assert!(!before.can_transition_to(target)),
                }
                if before == TenantStatus::Deleted {
                    prop_assert_eq!(t.status, TenantStatus::Deleted);
                }
            }
        }
    }
}
