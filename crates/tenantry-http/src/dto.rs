//! Request and response bodies: the seed's field names (`tenant_id`, `tenant_name`, `feature_name`,
//! ...). Requests refuse unknown fields; every value is parsed into a domain type before use.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use tenantry_app::ErrorCode;
use tenantry_app::{ApiKey, AuditEntry, Statistics};
use tenantry_domain::limits;
use tenantry_domain::tenant::format_time;
use tenantry_domain::timestamp::parse_time;
use tenantry_domain::{
    BudgetAction, Currency, Evaluation, FlagKey, HealthReport, Label, LimitField, LimitKind, LimitOverrides, Limits,
    Membership, Money, Tenant, TenantId, User,
};

use crate::problem::ApiError;

pub(crate) fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, e.to_string())
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

// ---- tenants -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    /// Decimal amount, e.g. "250000.00".
    pub amount: String,
    /// ISO 4217 code, e.g. "INR".
    pub currency: String,
}

impl MoneyBody {
    fn parse(&self) -> Result<Money, ApiError> {
        let currency = Currency::parse(&self.currency).map_err(invalid)?;
        Money::parse_decimal(&self.amount, currency).map_err(invalid)
    }
}

/// The limit fields shared by create and update; absent fields follow the tier's defaults.
/// One member per [`LimitField`]: the schema is built from the list, not written here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct LimitsBody(pub LimitOverrides);

impl PartialSchema for LimitsBody {
    fn schema() -> RefOr<Schema> {
        limits_schema(false)
    }
}

impl ToSchema for LimitsBody {}

/// A tenant's effective limits (or a tier's defaults), one member per [`LimitField`].
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct LimitsView(pub Limits);

impl PartialSchema for LimitsView {
    fn schema() -> RefOr<Schema> {
        limits_schema(true)
    }
}

impl ToSchema for LimitsView {}

/// The object schema of the limits: every member optional and nullable in a request, every member
/// present in a response. Ranges come from each limit's kind.
fn limits_schema(response: bool) -> RefOr<Schema> {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat, SchemaType, Type};
    let mut object = ObjectBuilder::new();
    for field in LimitField::ALL {
        let (kind, format) = match field.kind() {
            LimitKind::Count => (Type::Integer, Some(KnownFormat::Int64)),
            LimitKind::Fraction => (Type::Number, Some(KnownFormat::Double)),
            LimitKind::Label => (Type::String, None),
        };
        let schema_type = if response { SchemaType::new(kind) } else { SchemaType::from_iter([kind, Type::Null]) };
        let mut property = ObjectBuilder::new()
            .schema_type(schema_type)
            .format(format.map(SchemaFormat::KnownFormat))
            .description(Some(field.description()));
        property = match field.kind() {
            LimitKind::Count => property.minimum(Some(1)).maximum(Some(limits::MAX_COUNT)),
            LimitKind::Fraction => property.exclusive_minimum(Some(0)).maximum(Some(1)),
            LimitKind::Label => property,
        };
        object = object.property(field.as_str(), property);
        if response {
            object = object.required(field.as_str());
        }
    }
    RefOr::T(Schema::Object(object.build()))
}

fn labels(values: &[String]) -> Result<BTreeSet<Label>, ApiError> {
    values.iter().map(|v| Label::parse(v).map_err(invalid)).collect()
}

/// `POST /tenants`: the seed's body, plus the optional attributes.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    pub tenant_id: String,
    pub tenant_name: String,
    pub tier: String,
    #[serde(flatten)]
    #[schema(inline)]
    pub limits: LimitsBody,
    pub billing_email: Option<String>,
    pub owner: Option<String>,
    pub cost_center: Option<String>,
    pub monthly_budget: Option<MoneyBody>,
    /// `alert` (default) or `block`: refuse billable requests once the month's budget is spent.
    pub budget_action: Option<String>,
    #[serde(default)]
    pub compliance_tags: Vec<String>,
    pub data_region: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

impl CreateTenantBody {
    pub fn parse(&self) -> Result<tenantry_domain::NewTenant, ApiError> {
        Ok(tenantry_domain::NewTenant {
            id: TenantId::parse(&self.tenant_id).map_err(invalid)?,
            name: self.tenant_name.clone(),
            tier: tenantry_domain::TierName::parse(&self.tier).map_err(invalid)?,
            billing_email: self.billing_email.clone(),
            owner: self.owner.clone(),
            limits: self.limits.0.clone(),
            cost_center: self.cost_center.clone(),
            monthly_budget: self.monthly_budget.as_ref().map(MoneyBody::parse).transpose()?,
            budget_action: self
                .budget_action
                .as_deref()
                .map(BudgetAction::parse)
                .transpose()
                .map_err(invalid)?
                .unwrap_or_default(),
            compliance_tags: labels(&self.compliance_tags)?,
            data_region: self.data_region.as_deref().map(Label::parse).transpose().map_err(invalid)?,
            metadata: self.metadata.clone().unwrap_or_else(|| serde_json::json!({})),
        })
    }
}

/// `PATCH /tenants/{tenant_id}`: only the fields given change; `null` clears an optional field.
/// Tier, limits, billing, compliance and region need a platform administrator.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenantBody {
    pub tenant_name: Option<String>,
    pub tier: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub billing_email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub owner: Option<Option<String>>,
    #[serde(flatten)]
    #[schema(inline)]
    pub limits: LimitsBody,
    /// Limit fields to reset to the tier's default.
    #[serde(default)]
    pub reset_limits: Vec<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub cost_center: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<MoneyBody>)]
    pub monthly_budget: Option<Option<MoneyBody>>,
    /// `alert` or `block`.
    pub budget_action: Option<String>,
    pub compliance_tags: Option<Vec<String>>,
    pub data_region: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

impl PatchTenantBody {
    pub fn parse(&self) -> Result<tenantry_domain::TenantPatch, ApiError> {
        Ok(tenantry_domain::TenantPatch {
            name: self.tenant_name.clone(),
            tier: self.tier.as_deref().map(tenantry_domain::TierName::parse).transpose().map_err(invalid)?,
            billing_email: self.billing_email.clone(),
            owner: self.owner.clone(),
            limits: self.limits.0.clone(),
            reset_limits: self
                .reset_limits
                .iter()
                .map(|name| LimitField::parse(name).map_err(|e| invalid(format!("cannot reset: {e}"))))
                .collect::<Result<_, _>>()?,
            cost_center: self.cost_center.clone(),
            monthly_budget: match &self.monthly_budget {
                None => None,
                Some(None) => Some(None),
                Some(Some(m)) => Some(Some(m.parse()?)),
            },
            budget_action: self.budget_action.as_deref().map(BudgetAction::parse).transpose().map_err(invalid)?,
            compliance_tags: self.compliance_tags.as_deref().map(labels).transpose()?,
            data_region: self.data_region.as_deref().map(Label::parse).transpose().map_err(invalid)?,
            metadata: self.metadata.clone(),
        })
    }
}

/// Optional body of the lifecycle actions.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// Why (recorded in the audit log). Defaults to a sentence naming the endpoint.
    pub reason: Option<String>,
    /// Archive only: override the tier's retention period.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteTenantQuery {
    /// Why (recorded in the audit log).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTenantsQuery {
    /// active | suspended | migrating | archived | deleted
    pub status: Option<String>,
    pub tier: Option<String>,
    /// List the tenants this user can act in (a user may ask for themselves; admins for anyone).
    pub user_id: Option<String>,
    /// Cursor: the `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MoneyView {
    pub amount: String,
    pub currency: String,
}

/// A tenant, with the seed's field names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantView {
    pub tenant_id: String,
    pub tenant_name: String,
    pub tier: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub status_changed_at: String,
    pub retention_until: Option<String>,
    pub billing_email: Option<String>,
    pub owner: Option<String>,
    #[serde(flatten)]
    #[schema(inline)]
    pub limits: LimitsView,
    /// Limits set for this tenant; the others follow the tier's defaults.
    pub explicit_limits: Vec<String>,
    pub cost_center: Option<String>,
    pub monthly_budget: Option<MoneyView>,
    /// `alert` or `block`.
    pub budget_action: String,
    pub health_score: Option<f64>,
    pub health_updated_at: Option<String>,
    pub compliance_tags: Vec<String>,
    pub data_region: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Only in `GET /tenants?user_id=`: the user's role in this tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        TenantView {
            tenant_id: t.id.to_string(),
            tenant_name: t.name.clone(),
            tier: t.tier.to_string(),
            status: t.status.as_str().to_owned(),
            status_reason: t.status_reason.clone(),
            status_changed_at: format_time(t.status_changed_at),
            retention_until: t.retention_until.map(format_time),
            billing_email: t.billing_email.clone(),
            owner: t.owner.clone(),
            limits: LimitsView(t.limits.clone()),
            explicit_limits: t.limit_overrides.explicit_fields().into_iter().map(|f| f.as_str().to_owned()).collect(),
            cost_center: t.cost_center.clone(),
            monthly_budget: t
                .monthly_budget
                .as_ref()
                .map(|m| MoneyView { amount: m.amount_string(), currency: m.currency().as_str().to_owned() }),
            budget_action: t.budget_action.as_str().to_owned(),
            health_score: t.health_score,
            health_updated_at: t.health_updated_at.map(format_time),
            compliance_tags: t.compliance_tags.iter().map(|l| l.to_string()).collect(),
            data_region: t.data_region.to_string(),
            metadata: t.metadata.clone(),
            version: t.version,
            created_at: format_time(t.created_at),
            updated_at: format_time(t.updated_at),
            role: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantListView {
    pub tenants: Vec<TenantView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

// ---- health, statistics, history ---------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthBody {
    /// p95 latency in milliseconds.
    pub latency_p95: f64,
    pub error_rate: f64,
    pub query_success_rate: f64,
    pub storage_utilization: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PenaltiesView {
    pub latency: f64,
    pub error_rate: f64,
    pub query_success_rate: f64,
    pub storage_utilization: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthView {
    pub tenant_id: String,
    pub health_score: f64,
    /// healthy | warning | critical
    pub health_class: String,
    pub penalties: PenaltiesView,
}

impl HealthView {
    pub fn new(tenant: &Tenant, r: &HealthReport) -> Self {
        HealthView {
            tenant_id: tenant.id.to_string(),
            health_score: r.score,
            health_class: r.class.as_str().to_owned(),
            penalties: PenaltiesView {
                latency: r.latency_penalty,
                error_rate: r.error_penalty,
                query_success_rate: r.success_penalty,
                storage_utilization: r.storage_penalty,
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatisticsView {
    pub total_tenants: i64,
    #[schema(value_type = Object)]
    pub by_status: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Object)]
    pub by_tier: serde_json::Map<String, serde_json::Value>,
    /// healthy / warning / critical / unknown (no score yet)
    #[schema(value_type = Object)]
    pub health_distribution: serde_json::Map<String, serde_json::Value>,
}

impl From<&Statistics> for StatisticsView {
    fn from(s: &Statistics) -> Self {
        let obj = |v: &[(String, i64)]| v.iter().map(|(k, n)| (k.clone(), serde_json::json!(n))).collect();
        StatisticsView {
            total_tenants: s.total,
            by_status: obj(&s.by_status),
            by_tier: obj(&s.by_tier),
            health_distribution: obj(&s.by_health),
        }
    }
}

/// One audit entry. In the platform's view, with everything an outside verifier needs to
/// recompute its hash and check its signature (see `tenantry_domain::audit` for the canonical
/// encoding). In a tenant's view (a tenant's reviewers and admins), `seq` is the entry's position
/// in the tenant's history and `prev_hash` the hash of the tenant's previous entry: nothing there
/// tells how much other tenants did (the hashes chain through the whole log, which the platform
/// verifies).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// The global sequence number, or in a tenant's view the position in its history.
    pub seq: i64,
    pub at: String,
    /// `at` as microseconds since the Unix epoch (the hashed form).
    pub at_micros: i64,
    /// `<kind>:<id>`, e.g. `platform_admin:ops` or `user:alice.johnson`
    pub actor: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub tenant_id: Option<String>,
    pub operation: String,
    pub reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
    /// Hash of the previous entry (hex; in a tenant's view, of the tenant's previous entry).
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    pub key_id: Option<String>,
    /// Ed25519 signature (hex) over `"tenantry-entry-v1" || hash`.
    pub signature: Option<String>,
}

impl From<&AuditEntry> for AuditEntryView {
    fn from(e: &AuditEntry) -> Self {
        let seal = e.seal.as_ref();
        AuditEntryView {
            seq: e.seq,
            at: format_time(e.record.at),
            at_micros: tenantry_app::audit::micros(e.record.at),
            actor: e.record.actor.to_string(),
            actor_kind: e.record.actor.kind.as_str().to_owned(),
            actor_id: e.record.actor.id.clone(),
            tenant_id: e.record.tenant.as_ref().map(|t| t.to_string()),
            operation: e.record.operation.clone(),
            reason: e.record.reason.clone(),
            before: e.record.before.clone(),
            after: e.record.after.clone(),
            request_id: e.record.request_id.clone(),
            prev_hash: seal.map(|s| s.prev_hash.clone()),
            hash: seal.map(|s| s.hash.clone()),
            key_id: seal.and_then(|s| s.key_id.clone()),
            signature: seal.and_then(|s| s.signature.clone()),
        }
    }
}

impl From<&tenantry_app::TenantAuditEntry> for AuditEntryView {
    fn from(e: &tenantry_app::TenantAuditEntry) -> Self {
        AuditEntryView { seq: e.position, prev_hash: e.previous_hash.clone(), ..AuditEntryView::from(&e.entry) }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this tenant's entries (required for tenant users: a tenant they review or administer).
    pub tenant_id: Option<String>,
    /// Only entries at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only entries after this sequence number (the `next_after_seq` of the previous page).
    pub after_seq: Option<i64>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPageView {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after_seq` for the next page; absent on the last page.
    pub next_after_seq: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many entries, 1..=1000 (default 100).
    pub limit: Option<u32>,
}

// ---- flags -------------------------------------------------------------------------------------

/// `POST /feature-flags`: the seed's body. Give `enabled` (boolean flag) or `value` (any JSON
/// value: boolean, string, number or object), not both.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFlagBody {
    pub feature_name: String,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<Value>)]
    pub value: Option<serde_json::Value>,
    /// global | tier | tenant
    pub scope: String,
    /// The tier name or tenant id; absent for global.
    pub scope_id: Option<String>,
    /// Apply the value to this percentage of the scope's tenants only (0..=100), chosen by a
    /// stable hash of (flag, tenant): raising it only adds tenants.
    pub rollout_percentage: Option<u8>,
    /// Kept with the flag's definition (absent: unchanged).
    pub description: Option<String>,
    pub owner: Option<String>,
    /// RFC 3339; past it the flag shows in the stale report. `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Option<String>>,
    /// Tenant scope, platform administrators only: `true` makes the value an entitlement the
    /// tenant's admins cannot change or remove, `false` lifts that (absent: unchanged).
    pub platform_set: Option<bool>,
}

impl SetFlagBody {
    pub fn meta(&self) -> Result<tenantry_domain::FlagMeta, ApiError> {
        let expires_at = match &self.expires_at {
            None => None,
            Some(None) => Some(None),
            Some(Some(t)) => Some(Some(parse_time("expires_at", t).map_err(invalid)?)),
        };
        Ok(tenantry_domain::FlagMeta { description: self.description.clone(), owner: self.owner.clone(), expires_at })
    }
}

/// A flag's definition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagDefinitionView {
    pub feature_name: String,
    /// boolean | string | number | object
    pub kind: String,
    pub description: String,
    pub owner: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub version: i64,
    pub updated_at: String,
    /// The kill switch: `false` means the flag evaluates to DISABLED for every tenant.
    pub enabled: bool,
}

impl From<&tenantry_domain::FlagDefinition> for FlagDefinitionView {
    fn from(d: &tenantry_domain::FlagDefinition) -> Self {
        FlagDefinitionView {
            feature_name: d.key.to_string(),
            kind: d.kind.as_str().to_owned(),
            description: d.description.clone(),
            owner: d.owner.clone(),
            created_at: format_time(d.created_at),
            expires_at: d.expires_at.map(format_time),
            version: d.version,
            updated_at: format_time(d.updated_at),
            enabled: d.enabled,
        }
    }
}

/// The kill switch's new state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KillSwitchView {
    pub feature_name: String,
    pub enabled: bool,
}

/// Optional body of the kill switch endpoints.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchBody {
    /// Why (recorded in the audit log).
    pub reason: Option<String>,
}

/// A flag on the stale report, with why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaleFlagView {
    #[serde(flatten)]
    pub definition: FlagDefinitionView,
    /// older_than_max_age | past_expiry | same_for_every_tenant
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StaleQuery {
    /// Flags older than this many days are stale (default 90).
    pub max_age_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteFlagQuery {
    pub feature_name: String,
    /// global | tier | tenant
    pub scope: String,
    pub scope_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagView {
    pub feature_name: String,
    pub scope: String,
    pub scope_id: Option<String>,
    /// Any JSON value: the flag's type (boolean, string, number or object).
    #[schema(value_type = Value)]
    pub value: serde_json::Value,
    pub enabled: Option<bool>,
    pub rollout_percentage: Option<u8>,
    pub updated_at: Option<String>,
}

/// A flag evaluated for a tenant: the value and the level that decided it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationView {
    pub tenant_id: String,
    pub feature_name: String,
    /// Whether any level defines the flag.
    pub known: bool,
    /// Any JSON value (the flag's type); null for an unknown or disabled flag.
    #[schema(value_type = Option<Value>)]
    pub value: Option<serde_json::Value>,
    /// The value when it is a boolean.
    pub enabled: Option<bool>,
    /// tenant_override | tier_default | global_default | unknown_flag | flag_disabled
    pub reason: String,
    /// tenant | tier | global
    pub level: Option<String>,
    /// The OpenFeature reason: TARGETING_MATCH, SPLIT (percentage rollout), STATIC, DEFAULT,
    /// DISABLED.
    pub openfeature_reason: String,
    /// The flag's version (grows with every change to any of its values).
    pub version: Option<i64>,
}

impl EvaluationView {
    pub fn new(tenant: &TenantId, key: &FlagKey, e: &Evaluation) -> Self {
        let (known, value, enabled, level, version) = match e {
            Evaluation::Resolved { value, level, version, .. } => {
                (true, Some(value.to_json()), value.as_bool(), Some(level.as_str().to_owned()), Some(*version))
            }
            Evaluation::Unknown => (false, None, None, None, None),
            Evaluation::Disabled { version } => (true, None, None, None, Some(*version)),
        };
        EvaluationView {
            tenant_id: tenant.to_string(),
            feature_name: key.to_string(),
            known,
            value,
            enabled,
            reason: e.reason().to_owned(),
            level,
            openfeature_reason: e.openfeature_reason().to_owned(),
            version,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationsView {
    pub tenant_id: String,
    pub flags: Vec<EvaluationView>,
}

// ---- tiers -------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierView {
    pub name: String,
    pub rank: i32,
    pub description: String,
    #[serde(flatten)]
    #[schema(inline)]
    pub limits: LimitsView,
    /// shared_namespace | dedicated_index
    pub isolation: String,
    pub retention_days: u32,
}

impl From<&tenantry_domain::Tier> for TierView {
    fn from(t: &tenantry_domain::Tier) -> Self {
        TierView {
            name: t.name.to_string(),
            rank: t.rank,
            description: t.description.clone(),
            limits: LimitsView(t.default_limits.clone()),
            isolation: t.isolation.as_str().to_owned(),
            retention_days: t.retention_days,
        }
    }
}

// ---- users, members, keys ----------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    /// e.g. `alice.johnson`
    pub user_id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MembershipView {
    pub tenant_id: String,
    pub user_id: String,
    /// admin | analyst | reviewer | viewer
    pub role: String,
    pub created_at: String,
}

/// An invitation to a tenant, waiting for the user to accept it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationView {
    pub tenant_id: String,
    pub user_id: String,
    /// admin | analyst | reviewer | viewer
    pub role: String,
    /// Always `invited`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
}

impl From<&tenantry_domain::Invitation> for InvitationView {
    fn from(i: &tenantry_domain::Invitation) -> Self {
        InvitationView {
            tenant_id: i.tenant.to_string(),
            user_id: i.user.to_string(),
            role: i.role.as_str().to_owned(),
            status: "invited".to_owned(),
            created_at: format_time(i.created_at),
            expires_at: format_time(i.expires_at),
        }
    }
}

impl From<&Membership> for MembershipView {
    fn from(m: &Membership) -> Self {
        MembershipView {
            tenant_id: m.tenant.to_string(),
            user_id: m.user.to_string(),
            role: m.role.as_str().to_owned(),
            created_at: format_time(m.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub user_id: String,
    pub display_name: String,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            user_id: u.id.to_string(),
            display_name: u.display_name.clone(),
            created_at: format_time(u.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WhoAmIView {
    pub user_id: String,
    /// platform_admin | user
    pub kind: String,
    pub key_id: String,
    pub memberships: Vec<RoleView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleView {
    pub tenant_id: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMemberBody {
    pub user_id: String,
    /// admin | analyst | reviewer | viewer
    pub role: String,
}

/// `POST /keys`: a key for a user (`user_id`) or a platform administrator (`platform_admin`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    pub user_id: Option<String>,
    /// The administrator's name, recorded as the actor of everything done with the key.
    pub platform_admin: Option<String>,
    #[serde(default)]
    pub name: String,
    /// RFC 3339 time after which the key stops working.
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    pub key_id: String,
    /// platform_admin | user
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        KeyView {
            key_id: k.id.to_string(),
            owner_kind: k.owner.kind().to_owned(),
            owner_id: k.owner.id().to_string(),
            name: k.name.clone(),
            created_at: format_time(k.created_at),
            expires_at: k.expires_at.map(format_time),
            revoked_at: k.revoked_at.map(format_time),
        }
    }
}

/// A new key: `token` is shown here once and never again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedKeyView {
    pub token: String,
    #[serde(flatten)]
    pub key: KeyView,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListKeysQuery {
    /// Only the keys of this user or administrator.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}
