//! Flat, storage-friendly forms of domain values: the adapters only move columns in and out of
//! these records.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use tenantry_domain::{
    BudgetAction, Currency, FlagKey, FlagLevel, FlagScope, FlagValue, Invalid, IsolationMode, Label, LimitField,
    LimitOverrides, LimitValue, Limits, Money, Tenant, TenantId, TenantStatus, Tier, TierName,
};

use tenantry_app::StoreError;

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("stored {what} is not valid: {err}"))
}

/// A tenant as one row of columns.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub tenant_id: String,
    pub name: String,
    pub billing_email: Option<String>,
    pub owner: Option<String>,
    pub tier: String,
    /// One value per limit, in [`LimitField::ALL`] order (the limit columns of the table).
    pub limits: Vec<Column>,
    /// JSON array of the limit field names set explicitly.
    pub explicit_limits: serde_json::Value,
    pub cost_center: Option<String>,
    pub monthly_budget_minor: Option<i64>,
    pub budget_currency: Option<String>,
    pub budget_action: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub status_changed_at: OffsetDateTime,
    pub retention_until: Option<OffsetDateTime>,
    pub health_score: Option<f64>,
    pub health_updated_at: Option<OffsetDateTime>,
    /// JSON array of labels.
    pub compliance_tags: serde_json::Value,
    pub data_region: String,
    pub metadata: serde_json::Value,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl From<&Tenant> for TenantRecord {
    fn from(t: &Tenant) -> Self {
        TenantRecord {
            tenant_id: t.id.to_string(),
            name: t.name.clone(),
            billing_email: t.billing_email.clone(),
            owner: t.owner.clone(),
            tier: t.tier.to_string(),
            limits: columns_of(&t.limits),
            explicit_limits: serde_json::json!(
                t.limit_overrides.explicit_fields().into_iter().map(LimitField::as_str).collect::<Vec<_>>()
            ),
            cost_center: t.cost_center.clone(),
            monthly_budget_minor: t.monthly_budget.as_ref().map(|m| m.minor_units()),
            budget_currency: t.monthly_budget.as_ref().map(|m| m.currency().as_str().to_owned()),
            budget_action: t.budget_action.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            status_reason: t.status_reason.clone(),
            status_changed_at: t.status_changed_at,
            retention_until: t.retention_until,
            health_score: t.health_score,
            health_updated_at: t.health_updated_at,
            compliance_tags: serde_json::json!(t.compliance_tags.iter().map(|l| l.as_str()).collect::<Vec<_>>()),
            data_region: t.data_region.to_string(),
            metadata: t.metadata.clone(),
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

fn string_list(what: &str, v: &serde_json::Value) -> Result<Vec<String>, StoreError> {
    serde_json::from_value(v.clone()).map_err(|e| corrupt(what, e))
}

impl TryFrom<TenantRecord> for Tenant {
    type Error = StoreError;

    fn try_from(r: TenantRecord) -> Result<Self, StoreError> {
        let limits = limits_of(r.limits)?;
        let explicit = string_list("explicit_limits", &r.explicit_limits)?
            .iter()
            .map(|name| LimitField::parse(name).map_err(|e| corrupt("explicit_limits", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let monthly_budget = match (r.monthly_budget_minor, r.budget_currency) {
            (Some(minor), Some(cur)) => Some(
                Money::new(minor, Currency::parse(&cur).map_err(|e| corrupt("currency", e))?)
                    .map_err(|e| corrupt("budget", e))?,
            ),
            _ => None,
        };
        let tags = string_list("compliance_tags", &r.compliance_tags)?
            .iter()
            .map(|t| Label::parse(t).map_err(|e| corrupt("compliance tag", e)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Tenant {
            id: TenantId::parse(&r.tenant_id).map_err(|e| corrupt("tenant_id", e))?,
            name: r.name,
            billing_email: r.billing_email,
            owner: r.owner,
            tier: TierName::parse(&r.tier).map_err(|e| corrupt("tier", e))?,
            limit_overrides: LimitOverrides::from_explicit(&limits, &explicit),
            limits,
            cost_center: r.cost_center,
            monthly_budget,
            budget_action: BudgetAction::parse(&r.budget_action).map_err(|e| corrupt("budget_action", e))?,
            status: TenantStatus::parse(&r.status).map_err(|e| corrupt("status", e))?,
            status_reason: r.status_reason,
            status_changed_at: r.status_changed_at,
            retention_until: r.retention_until,
            health_score: r.health_score,
            health_updated_at: r.health_updated_at,
            compliance_tags: tags,
            data_region: Label::parse(&r.data_region).map_err(|e| corrupt("data_region", e))?,
            metadata: r.metadata,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A tier as one row of columns.
#[derive(Debug, Clone, PartialEq)]
pub struct TierRecord {
    pub name: String,
    pub rank: i64,
    pub description: String,
    /// One value per limit, in [`LimitField::ALL`] order (the limit columns of the table).
    pub limits: Vec<Column>,
    pub isolation: String,
    pub retention_days: i64,
}

impl From<&Tier> for TierRecord {
    fn from(t: &Tier) -> Self {
        let l = &t.default_limits;
        TierRecord {
            name: t.name.to_string(),
            rank: i64::from(t.rank),
            description: t.description.clone(),
            limits: columns_of(l),
            isolation: t.isolation.as_str().to_owned(),
            retention_days: i64::from(t.retention_days),
        }
    }
}

impl TryFrom<TierRecord> for Tier {
    type Error = StoreError;

    fn try_from(r: TierRecord) -> Result<Self, StoreError> {
        Tier::new(
            TierName::parse(&r.name).map_err(|e| corrupt("tier name", e))?,
            i32::try_from(r.rank).map_err(|e| corrupt("tier rank", e))?,
            r.description,
            limits_of(r.limits)?,
            IsolationMode::parse(&r.isolation).map_err(|e| corrupt("isolation", e))?,
            u32::try_from(r.retention_days).map_err(|e| corrupt("retention_days", e))?,
        )
        .map_err(|e| corrupt("tier", e))
    }
}

/// One limit column's value, in the SQL type of the limit's [`LimitKind`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Int(i64),
    Float(f64),
    Text(String),
}

fn columns_of(limits: &Limits) -> Vec<Column> {
    limits
        .entries()
        .map(|(_, value)| match value {
            LimitValue::Count(n) => Column::Int(n),
            LimitValue::Fraction(x) => Column::Float(x),
            LimitValue::Label(l) => Column::Text(l.as_str().to_owned()),
        })
        .collect()
}

fn limits_of(columns: Vec<Column>) -> Result<Limits, StoreError> {
    if columns.len() != LimitField::ALL.len() {
        return Err(corrupt("limits", format!("{} columns for {} limits", columns.len(), LimitField::ALL.len())));
    }
    let mut columns = columns.into_iter();
    Limits::try_from_fn::<Invalid>(|field| {
        Ok(match columns.next() {
            Some(Column::Int(n)) => LimitValue::Count(n),
            Some(Column::Float(x)) => LimitValue::Fraction(x),
            Some(Column::Text(t)) => {
                LimitValue::Label(Label::parse(&t).map_err(|e| Invalid::new(format!("{field}: {e}")))?)
            }
            None => return Err(Invalid::new(format!("{field} has no column"))),
        })
    })
    .map_err(|e| corrupt("limits", e))
}

/// Reads the limit columns of a row, one per [`LimitField`], each in its kind's SQL type.
#[macro_export]
macro_rules! limit_columns_from_row {
    ($row:expr, $err:expr) => {{
        let mut columns = Vec::with_capacity(::tenantry_domain::LimitField::ALL.len());
        for field in ::tenantry_domain::LimitField::ALL {
            let name = field.as_str();
            columns.push(match field.kind() {
                ::tenantry_domain::LimitKind::Count => $crate::records::Column::Int($row.try_get(name).map_err($err)?),
                ::tenantry_domain::LimitKind::Fraction => {
                    $crate::records::Column::Float($row.try_get(name).map_err($err)?)
                }
                ::tenantry_domain::LimitKind::Label => $crate::records::Column::Text($row.try_get(name).map_err($err)?),
            });
        }
        columns
    }};
}

/// Binds limit columns (as read by [`limit_columns_from_row!`]) to a query, in order.
#[macro_export]
macro_rules! bind_limit_columns {
    ($query:expr, $columns:expr) => {{
        let mut query = $query;
        for column in $columns {
            query = match column {
                $crate::records::Column::Int(n) => query.bind(*n),
                $crate::records::Column::Float(x) => query.bind(*x),
                $crate::records::Column::Text(t) => query.bind(t.as_str()),
            };
        }
        query
    }};
}

/// Rebuilds a flag scope and value from stored columns (`scope`, `scope_id`, JSON value).
pub fn flag_from_columns(
    scope: &str,
    scope_id: &str,
    key: &str,
    value: serde_json::Value,
) -> Result<(FlagScope, FlagKey, FlagValue), StoreError> {
    let level = FlagLevel::parse(scope).map_err(|e| corrupt("flag scope", e))?;
    let scope = FlagScope::from_parts(level, Some(scope_id)).map_err(|e| corrupt("flag scope", e))?;
    let key = FlagKey::parse(key).map_err(|e| corrupt("flag key", e))?;
    let value = FlagValue::from_json(value).map_err(|e| corrupt("flag value", e))?;
    Ok((scope, key, value))
}

/// Reads a [`TenantRecord`] from a `sqlx` row. A macro because rows are typed per database; every
/// SQL backend maps the columns with this one definition.
#[macro_export]
macro_rules! tenant_record_from_row {
    ($row:expr, $err:expr) => {{
        use ::sqlx::Row as _;
        let row = $row;
        let json = |name: &str| -> Result<::serde_json::Value, _> {
            row.try_get::<::sqlx::types::Json<::serde_json::Value>, _>(name).map(|j| j.0).map_err($err)
        };
        $crate::records::TenantRecord {
            tenant_id: row.try_get("tenant_id").map_err($err)?,
            name: row.try_get("name").map_err($err)?,
            billing_email: row.try_get("billing_email").map_err($err)?,
            owner: row.try_get("owner").map_err($err)?,
            tier: row.try_get("tier").map_err($err)?,
            limits: $crate::limit_columns_from_row!(row, $err),
            explicit_limits: json("explicit_limits")?,
            cost_center: row.try_get("cost_center").map_err($err)?,
            monthly_budget_minor: row.try_get("monthly_budget_minor").map_err($err)?,
            budget_currency: row.try_get("budget_currency").map_err($err)?,
            budget_action: row.try_get("budget_action").map_err($err)?,
            status: row.try_get("status").map_err($err)?,
            status_reason: row.try_get("status_reason").map_err($err)?,
            status_changed_at: row.try_get("status_changed_at").map_err($err)?,
            retention_until: row.try_get("retention_until").map_err($err)?,
            health_score: row.try_get("health_score").map_err($err)?,
            health_updated_at: row.try_get("health_updated_at").map_err($err)?,
            compliance_tags: json("compliance_tags")?,
            data_region: row.try_get("data_region").map_err($err)?,
            metadata: json("metadata")?,
            version: row.try_get("version").map_err($err)?,
            created_at: row.try_get("created_at").map_err($err)?,
            updated_at: row.try_get("updated_at").map_err($err)?,
        }
    }};
}

/// Binds a [`TenantRecord`]'s columns, in the order of [`crate::sql::TENANT_COLUMNS`], to a query.
#[macro_export]
macro_rules! bind_tenant_record {
    ($query:expr, $r:expr) => {{
        let r = $r;
        let query = $query
            .bind(&r.tenant_id)
            .bind(&r.name)
            .bind(&r.billing_email)
            .bind(&r.owner)
            .bind(&r.tier)
            .bind(::sqlx::types::Json(&r.explicit_limits))
            .bind(&r.cost_center)
            .bind(r.monthly_budget_minor)
            .bind(&r.budget_currency)
            .bind(&r.budget_action)
            .bind(&r.status)
            .bind(&r.status_reason)
            .bind(r.status_changed_at)
            .bind(r.retention_until)
            .bind(r.health_score)
            .bind(r.health_updated_at)
            .bind(::sqlx::types::Json(&r.compliance_tags))
            .bind(&r.data_region)
            .bind(::sqlx::types::Json(&r.metadata))
            .bind(r.version)
            .bind(r.created_at)
            .bind(r.updated_at);
        $crate::bind_limit_columns!(query, &r.limits)
    }};
}

/// Reads a [`TierRecord`] from a `sqlx` row.
#[macro_export]
macro_rules! tier_record_from_row {
    ($row:expr, $err:expr) => {{
        use ::sqlx::Row as _;
        let row = $row;
        $crate::records::TierRecord {
            name: row.try_get("name").map_err($err)?,
            rank: row.try_get("rank").map_err($err)?,
            description: row.try_get("description").map_err($err)?,
            limits: $crate::limit_columns_from_row!(row, $err),
            isolation: row.try_get("isolation").map_err($err)?,
            retention_days: row.try_get("retention_days").map_err($err)?,
        }
    }};
}

/// Binds a [`TierRecord`]'s columns, in the order of [`crate::sql::TIER_COLUMNS`], to a query.
#[macro_export]
macro_rules! bind_tier_record {
    ($query:expr, $r:expr) => {{
        let r = $r;
        let query = $query.bind(&r.name).bind(r.rank).bind(&r.description).bind(&r.isolation).bind(r.retention_days);
        $crate::bind_limit_columns!(query, &r.limits)
    }};
}

/// Reads an [`AuditEntry`](tenantry_app::AuditEntry) from a `sqlx` row of `audit_log`.
#[macro_export]
macro_rules! audit_entry_from_row {
    ($row:expr, $err:expr) => {{
        use ::sqlx::Row as _;
        let row = $row;
        let corrupt = |what: String| ::tenantry_app::StoreError::Unexpected(::anyhow::anyhow!(what));
        let kind: String = row.try_get("actor_kind").map_err($err)?;
        let tenant: Option<String> = row.try_get("tenant_id").map_err($err)?;
        let json = |name: &str| -> Result<Option<::serde_json::Value>, _> {
            row.try_get::<Option<::sqlx::types::Json<::serde_json::Value>>, _>(name)
                .map(|j| j.map(|j| j.0))
                .map_err($err)
        };
        ::tenantry_app::AuditEntry {
            seq: row.try_get("seq").map_err($err)?,
            record: ::tenantry_app::AuditRecord {
                at: row.try_get("at").map_err($err)?,
                actor: ::tenantry_domain::Actor::new(
                    ::tenantry_domain::ActorKind::parse(&kind)
                        .ok_or_else(|| corrupt(format!("bad actor kind {kind}")))?,
                    row.try_get::<String, _>("actor_id").map_err($err)?,
                ),
                tenant: tenant
                    .as_deref()
                    .map(::tenantry_domain::TenantId::parse)
                    .transpose()
                    .map_err(|e| corrupt(e.to_string()))?,
                operation: row.try_get("operation").map_err($err)?,
                before: json("before")?,
                after: json("after")?,
                reason: row.try_get("reason").map_err($err)?,
                request_id: row.try_get("request_id").map_err($err)?,
            },
            seal: {
                let prev_hash: Option<String> = row.try_get("prev_hash").map_err($err)?;
                let hash: Option<String> = row.try_get("hash").map_err($err)?;
                match (prev_hash, hash) {
                    (Some(prev_hash), Some(hash)) => Some(::tenantry_app::ChainSeal {
                        prev_hash,
                        hash,
                        key_id: row.try_get("key_id").map_err($err)?,
                        signature: row.try_get("signature").map_err($err)?,
                    }),
                    // a half-sealed row is what tampering leaves: keep what is there so verify reports it
                    (Some(prev_hash), None) => Some(::tenantry_app::ChainSeal {
                        prev_hash,
                        hash: String::new(),
                        key_id: None,
                        signature: None,
                    }),
                    (None, Some(hash)) => Some(::tenantry_app::ChainSeal {
                        prev_hash: String::new(),
                        hash,
                        key_id: None,
                        signature: None,
                    }),
                    (None, None) => None,
                }
            },
        }
    }};
}

/// The columns of `flag_definitions` in [`FlagDefinitionColumns`] order.
#[macro_export]
macro_rules! flag_definition_columns {
    () => {
        "flag_key, kind, description, owner, created_at, expires_at, version, updated_at, enabled"
    };
}

pub type FlagDefinitionColumns =
    (String, String, String, Option<String>, OffsetDateTime, Option<OffsetDateTime>, i64, OffsetDateTime, bool);

pub fn flag_definition_from_columns(
    (key, kind, description, owner, created_at, expires_at, version, updated_at, enabled): FlagDefinitionColumns,
) -> Result<tenantry_domain::FlagDefinition, StoreError> {
    Ok(tenantry_domain::FlagDefinition {
        key: FlagKey::parse(&key).map_err(|e| corrupt("flag key", e))?,
        kind: tenantry_domain::FlagKind::parse(&kind).map_err(|e| corrupt("flag kind", e))?,
        description,
        owner,
        created_at,
        expires_at,
        version,
        updated_at,
        enabled,
    })
}

/// The refusal when a value's type differs from the flag's.
pub fn type_mismatch(key: &FlagKey, stored: Option<String>, given: tenantry_domain::FlagKind) -> StoreError {
    StoreError::ConstraintViolated(format!(
        "flag {key} is a {} flag; a {} value does not fit (remove the flag everywhere to redefine it)",
        stored.as_deref().unwrap_or("differently typed"),
        given.as_str()
    ))
}

/// Reads a stored rollout percentage.
pub fn rollout_from_column(value: Option<i64>) -> Result<Option<u8>, StoreError> {
    value.map(|p| u8::try_from(p).ok().filter(|p| *p <= 100).ok_or_else(|| corrupt("rollout", p))).transpose()
}
