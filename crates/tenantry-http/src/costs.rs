//! The cost ledger over HTTP: reports and chargeback (platform), a tenant's own month (its admins
//! and reviewers), the price book, fixed costs, bills, reconciliation and budget checks
//! (platform). Metering of the data plane's requests is the `meter_requests` layer.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use tenantry_app::costs::{fixed_json, meters_json, price_json};
use tenantry_domain::cost::Meter;
use tenantry_domain::pricing::{Allocation, Bill, FixedCost, Month, Price, chargeback, parse_day};
use tenantry_domain::{Currency, Label, Money, TenantId};

use crate::AppState;
use crate::dto::invalid;
use crate::extract::{Body, OptionalBody, P, PlatformAccess, Q, TenantAccess};
use crate::problem::{ApiError, Problem};

type ApiResult<T> = Result<T, ApiError>;

/// A JSON document whose shape the README's cost section describes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct CostDocument(pub serde_json::Value);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonthQuery {
    month: String,
    currency: Option<String>,
}

fn month_and_currency(q: &MonthQuery) -> ApiResult<(Month, Option<Currency>)> {
    let month = Month::parse(&q.month).map_err(invalid)?;
    let currency = q.currency.as_deref().map(Currency::parse).transpose().map_err(invalid)?;
    Ok((month, currency))
}

fn document(value: impl Serialize) -> ApiResult<axum::Json<CostDocument>> {
    serde_json::to_value(value)
        .map(|v| axum::Json(CostDocument(v)))
        .map_err(|e| ApiError::from(tenantry_app::AppError::Unexpected(e.into())))
}

/// The month's costs per tenant: meters, variable cost, fixed shares, total, budget variance
/// (platform administrators).
#[utoipa::path(get, path = "/costs", tag = "costs", security(("bearer" = [])),
    params(("month" = String, Query, description = "YYYY-MM (UTC)"), ("currency" = Option<String>, Query)),
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn report(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Q(q): Q<MonthQuery>,
) -> ApiResult<axum::Json<CostDocument>> {
    let (month, currency) = month_and_currency(&q)?;
    document(state.costs.report(&access, month, currency).await?)
}

/// The month's costs by cost center (platform administrators).
#[utoipa::path(get, path = "/costs/chargeback", tag = "costs", security(("bearer" = [])),
    params(("month" = String, Query, description = "YYYY-MM (UTC)"), ("currency" = Option<String>, Query)),
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn chargeback_report(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Q(q): Q<MonthQuery>,
) -> ApiResult<axum::Json<CostDocument>> {
    let (month, currency) = month_and_currency(&q)?;
    let report = state.costs.report(&access, month, currency).await?;
    document(serde_json::json!({
        "month": report.month, "currency": report.currency, "cost_centers": chargeback(&report),
        "total_minor": report.total_minor,
    }))
}

/// One tenant's month (the tenant's admins and reviewers).
#[utoipa::path(get, path = "/tenants/{tenant_id}/costs", tag = "costs", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("month" = String, Query, description = "YYYY-MM (UTC)"),
           ("currency" = Option<String>, Query)),
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn tenant_costs(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Q(q): Q<MonthQuery>,
) -> ApiResult<axum::Json<CostDocument>> {
    let (month, currency) = month_and_currency(&q)?;
    document(state.costs.tenant_report(&scope, month, currency).await?)
}

/// The meters, their units and what prices are quoted per.
#[utoipa::path(get, path = "/costs/meters", tag = "costs", security(("bearer" = [])),
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn meters(PlatformAccess(_): PlatformAccess) -> ApiResult<axum::Json<CostDocument>> {
    document(serde_json::json!({"meters": meters_json()}))
}

/// Every price version (platform administrators).
#[utoipa::path(get, path = "/costs/prices", tag = "costs", security(("bearer" = [])),
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn prices(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<CostDocument>> {
    let prices = state.costs.prices(&access).await?;
    document(serde_json::json!({"prices": prices.iter().map(price_json).collect::<Vec<_>>()}))
}

/// A new price version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    /// One of the meters (`GET /costs/meters`).
    pub meter: String,
    /// For per-model meters; absent: every model without a price of its own.
    pub model: Option<String>,
    pub provider: String,
    pub currency: String,
    /// A decimal string, per the meter's price unit (e.g. `"0.0001"` per 1K tokens).
    pub unit_price: String,
    /// `YYYY-MM-DD` (UTC).
    pub effective_from: String,
}

impl PriceBody {
    pub fn parse(self) -> Result<Price, tenantry_domain::Invalid> {
        let label =
            |field: &str, v: &str| Label::parse(v).map_err(|e| tenantry_domain::Invalid::new(format!("{field}: {e}")));
        Price::new(
            Meter::parse(&self.meter)?,
            self.model.as_deref().map(|m| label("model", m)).transpose()?,
            label("provider", &self.provider)?,
            Currency::parse(&self.currency)?,
            Price::parse_unit_price(&self.unit_price)?,
            parse_day("effective_from", &self.effective_from)?,
        )
    }
}

/// Adds a price version (platform administrators). Prices already in effect for past days are
/// not rewritten: a new version applies from its day on.
#[utoipa::path(post, path = "/costs/prices", tag = "costs", security(("bearer" = [])), request_body = PriceBody,
    responses((status = 201, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn set_price(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Body(body): Body<PriceBody>,
) -> ApiResult<(StatusCode, axum::Json<CostDocument>)> {
    let price = body.parse().map_err(invalid)?;
    state.costs.set_price(&access, price.clone()).await?;
    Ok((StatusCode::CREATED, document(price_json(&price))?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetBody {
    /// `YYYY-MM-DD` (UTC).
    pub effective_from: String,
}

/// Loads a shipped price book: `seed-002-usd` or `seed-004-inr` (platform administrators).
#[utoipa::path(post, path = "/costs/prices/presets/{preset}", tag = "costs", security(("bearer" = [])),
    params(("preset" = String, Path)), request_body = PresetBody,
    responses((status = 201, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn load_preset(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    P(preset): P<String>,
    Body(body): Body<PresetBody>,
) -> ApiResult<(StatusCode, axum::Json<CostDocument>)> {
    let from = parse_day("effective_from", &body.effective_from).map_err(invalid)?;
    let prices = state.costs.load_preset(&access, &preset, from).await?;
    Ok((
        StatusCode::CREATED,
        document(serde_json::json!({"prices": prices.iter().map(price_json).collect::<Vec<_>>()}))?,
    ))
}

/// Every fixed cost item (platform administrators).
#[utoipa::path(get, path = "/costs/fixed", tag = "costs", security(("bearer" = [])),
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn fixed_costs(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<CostDocument>> {
    let items = state.costs.fixed_costs(&access).await?;
    document(serde_json::json!({"fixed_costs": items.iter().map(fixed_json).collect::<Vec<_>>()}))
}

/// A monthly fixed cost item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedCostBody {
    pub provider: String,
    /// Per month (per index with `per_index`), a decimal with at most two places.
    pub amount: String,
    pub currency: String,
    #[serde(default)]
    pub per_index: bool,
    /// `proportional` (default), `meter:<meter>`, `even`, `weights:<tenant>=<n>,…`, `tenant:<tenant>`.
    pub allocation: Option<String>,
    /// First month, `YYYY-MM`.
    pub from: String,
    /// Last month, `YYYY-MM`; absent: open-ended.
    pub until: Option<String>,
}

impl FixedCostBody {
    pub fn parse(self, name: &str) -> Result<FixedCost, tenantry_domain::Invalid> {
        let label =
            |field: &str, v: &str| Label::parse(v).map_err(|e| tenantry_domain::Invalid::new(format!("{field}: {e}")));
        Ok(FixedCost {
            name: label("name", name)?,
            provider: label("provider", &self.provider)?,
            amount: Money::parse_decimal(&self.amount, Currency::parse(&self.currency)?)?,
            per_index: self.per_index,
            allocation: self
                .allocation
                .as_deref()
                .map(Allocation::parse)
                .transpose()?
                .unwrap_or(Allocation::Proportional),
            from: Month::parse(&self.from)?,
            until: self.until.as_deref().map(Month::parse).transpose()?,
        })
    }
}

/// Creates or replaces a fixed cost item (platform administrators).
#[utoipa::path(put, path = "/costs/fixed/{item}", tag = "costs", security(("bearer" = [])),
    params(("item" = String, Path)), request_body = FixedCostBody,
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn put_fixed_cost(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    P(item): P<String>,
    Body(body): Body<FixedCostBody>,
) -> ApiResult<axum::Json<CostDocument>> {
    let item = body.parse(&item).map_err(invalid)?;
    state.costs.put_fixed_cost(&access, item.clone()).await?;
    document(fixed_json(&item))
}

/// Removes a fixed cost item (platform administrators).
#[utoipa::path(delete, path = "/costs/fixed/{item}", tag = "costs", security(("bearer" = [])),
    params(("item" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn delete_fixed_cost(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    P(item): P<String>,
) -> ApiResult<StatusCode> {
    let name = Label::parse(&item).map_err(invalid)?;
    state.costs.delete_fixed_cost(&access, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One provider's bill for a month.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillBody {
    pub provider: String,
    /// `YYYY-MM`
    pub month: String,
    pub currency: String,
    /// A decimal with at most two places.
    pub amount: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillsBody {
    pub bills: Vec<BillBody>,
}

/// Imports actual bills; a provider's bill for a month replaces the one imported before
/// (platform administrators).
#[utoipa::path(post, path = "/costs/bills", tag = "costs", security(("bearer" = [])), request_body = BillsBody,
    responses((status = 201, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn import_bills(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Body(body): Body<BillsBody>,
) -> ApiResult<(StatusCode, axum::Json<CostDocument>)> {
    let mut bills: Vec<Bill> = Vec::with_capacity(body.bills.len());
    for (i, b) in body.bills.into_iter().enumerate() {
        let at = |e: tenantry_domain::Invalid| invalid(format!("bills[{i}]: {}", e.reason()));
        let bill = Bill {
            provider: Label::parse(&b.provider).map_err(|e| invalid(format!("bills[{i}].provider: {e}")))?,
            month: Month::parse(&b.month).map_err(at)?,
            amount: Money::parse_decimal(&b.amount, Currency::parse(&b.currency).map_err(at)?).map_err(at)?,
        };
        bills.push(bill);
    }
    let n = state.costs.import_bills(&access, bills).await?;
    Ok((StatusCode::CREATED, document(serde_json::json!({"imported": n}))?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileBody {
    /// `YYYY-MM`
    pub month: String,
    pub currency: Option<String>,
}

/// Reconciles a month's allocated costs with its imported bills and records the result: per
/// provider and in total, ≤5% pass, ≤10% warn, beyond that fail (platform administrators).
#[utoipa::path(post, path = "/costs/reconcile", tag = "costs", security(("bearer" = [])), request_body = ReconcileBody,
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn reconcile(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Body(body): Body<ReconcileBody>,
) -> ApiResult<axum::Json<CostDocument>> {
    let q = MonthQuery { month: body.month, currency: body.currency };
    let (month, currency) = month_and_currency(&q)?;
    let (id, result) = state.costs.reconcile(&access, month, currency).await?;
    document(serde_json::json!({"id": id, "reconciliation": result}))
}

/// Optional body of a budget check.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetCheckBody {
    /// Why the check was asked for (logged).
    pub reason: Option<String>,
}

/// Checks every tenant's spend against its budget now; returns the alerts raised by this check
/// (each threshold alerts once per month) (platform administrators).
#[utoipa::path(post, path = "/costs/budgets/check", tag = "costs", security(("bearer" = [])),
    request_body = Option<BudgetCheckBody>,
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn check_budgets(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    OptionalBody(body): OptionalBody<BudgetCheckBody>,
) -> ApiResult<axum::Json<CostDocument>> {
    if let Some(reason) = body.reason.as_deref() {
        tracing::info!(reason, "budget check requested");
    }
    document(serde_json::json!({"alerts": state.costs.check_budgets(&access).await?}))
}

/// Meters a data-plane request: the work's own events (gathered while the handler runs) and one
/// API call for an answered request (status below 400), recorded together before the answer
/// leaves. If they cannot be recorded the request fails with 503: no 2xx without its usage. An
/// ingest records its usage, API call included, in the documents' own transaction.
pub async fn meter_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let tenant = tenant_of(req.uri().path());
    let started = std::time::Instant::now();
    let (response, collected) = tenantry_app::metering::collect(next.run(req)).await;
    let mut events = collected.events;
    if response.status().as_u16() < 400
        && !collected.call_billed
        && let Some(tenant) = tenant
    {
        // the data plane measures its own work (query, ingest); the other requests' server
        // time is the handler's
        let handler_micros = (!events.iter().any(|e| e.meter == Meter::ComputeMicros))
            .then(|| u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
        match answered(tenant, state.data_clock_now(), handler_micros) {
            Ok(more) => events.extend(more),
            Err(e) => return e.into_response(),
        }
    }
    match state.metering.record(events).await {
        Ok(()) => response,
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn tenant_of(path: &str) -> Option<TenantId> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("tenants"), Some(id)) => TenantId::parse(id).ok(),
        _ => None,
    }
}

/// An answered request's API call, and its server time when the work did not measure its own.
fn answered(
    tenant: TenantId,
    at: time::OffsetDateTime,
    compute_micros: Option<u64>,
) -> Result<Vec<tenantry_domain::cost::UsageEvent>, ApiError> {
    let op = tenantry_app::metering::operation_id()?;
    tenantry_app::metering::OperationUsage::new(tenant, op, at)
        .add(Meter::ApiCalls, 1, None)
        .and_then(|u| u.add(Meter::ComputeMicros, compute_micros.unwrap_or(0), None))
        .map(tenantry_app::metering::OperationUsage::into_events)
        .map_err(invalid)
}

/// The four readiness checks with a verdict each and in sum (platform administrators). Always 200:
/// the verdict is in the body (`pass`, `warn`, `skipped` or `fail`).
#[utoipa::path(get, path = "/readiness", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = CostDocument), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn readiness(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<CostDocument>> {
    let checks = state.readiness.run(&access).await?;
    let verdict = tenantry_domain::readiness::summary(&checks);
    document(serde_json::json!({"verdict": verdict, "checks": checks}))
}
