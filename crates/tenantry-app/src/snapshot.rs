//! The JSON a tenant is recorded as in audit entries (`before`/`after`). Owned here, not by a
//! store or a shell, because it is part of the audit trail's meaning: field names are stable.

use serde_json::{Value, json};
use tenantry_domain::Tenant;
use tenantry_domain::tenant::format_time;

/// The tenant's columns, each limit under its field name.
pub fn tenant_snapshot(t: &Tenant) -> Value {
    let mut snapshot = json!({
        "tenant_id": t.id.as_str(),
        "name": t.name,
        "billing_email": t.billing_email,
        "owner": t.owner,
        "tier": t.tier.as_str(),
        "explicit_limits": t.limit_overrides.explicit_fields(),
        "cost_center": t.cost_center,
        "monthly_budget_minor": t.monthly_budget.as_ref().map(|m| m.minor_units()),
        "budget_currency": t.monthly_budget.as_ref().map(|m| m.currency().as_str()),
        "budget_action": t.budget_action.as_str(),
        "status": t.status.as_str(),
        "status_reason": t.status_reason,
        "status_changed_at": format_time(t.status_changed_at),
        "retention_until": t.retention_until.map(format_time),
        "health_score": t.health_score,
        "health_updated_at": t.health_updated_at.map(format_time),
        "compliance_tags": t.compliance_tags.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        "data_region": t.data_region.as_str(),
        "metadata": t.metadata,
        "version": t.version,
        "created_at": format_time(t.created_at),
        "updated_at": format_time(t.updated_at),
    });
    if let Value::Object(fields) = &mut snapshot {
        fields.extend(t.limits.entries().map(|(field, value)| (field.as_str().to_owned(), value.to_json())));
    }
    snapshot
}
