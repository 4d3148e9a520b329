//! The handlers: parse the request into domain values, mint the scope the principal is entitled
//! to, call one use-case, shape the answer. Policy (who may do what) lives in `tenantry-app`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use tenantry_app::ErrorCode;
use tenantry_app::{KeyOwner, MemberChange, Principal, TenantFilter, TenantScope};
use tenantry_domain::timestamp::parse_time;
use tenantry_domain::{
    FlagKey, FlagLevel, FlagScope, FlagValue, HealthSignals, KeyId, Role, TenantId, TenantStatus, TierName, UserId,
};

use crate::AppState;
use crate::dto::*;
use crate::extract::{Auth, Body, IfMatch, OptionalBody, P, PlatformAccess, Q, TenantAccess, etag};
use crate::problem::{ApiError, Problem};

type ApiResult<T> = Result<T, ApiError>;

fn parse_tenant(raw: &str) -> ApiResult<TenantId> {
    TenantId::parse(raw).map_err(invalid)
}

fn parse_user(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).map_err(invalid)
}

/// The principal's scope in `raw` (refused for non-members), noted on the request's log span and
/// in the per-tenant request metric.
pub(crate) fn scope_in(state: &AppState, principal: &Principal, raw: &str) -> ApiResult<TenantScope> {
    let tenant = parse_tenant(raw)?;
    let scope = principal.tenant(&tenant)?;
    tracing::Span::current().record("tenant_id", tenant.as_str());
    state.metrics.observe_tenant(tenant.as_str());
    Ok(scope)
}

fn with_etag(status: StatusCode, view: TenantView) -> Response {
    let tag = etag(view.version);
    let mut response = (status, axum::Json(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

// ---- probes ------------------------------------------------------------------------------------

/// Liveness: the process is up. No credentials.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, body = StatusView)))]
pub async fn healthz() -> axum::Json<StatusView> {
    axum::Json(StatusView { status: "ok".to_owned(), store: None })
}

/// Readiness: the store answers. No credentials.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, body = StatusView), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<axum::Json<StatusView>> {
    state.registry.store().ping().await.map_err(|e| ApiError::from(tenantry_app::AppError::from(e)))?;
    Ok(axum::Json(StatusView { status: "ready".to_owned(), store: Some(state.registry.store().backend().to_owned()) }))
}

/// Prometheus metrics (platform administrators).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn metrics(State(state): State<AppState>, PlatformAccess(access): PlatformAccess) -> ApiResult<Response> {
    let store = state.registry.store();
    let indexes = state.data.index_pool(&access).await?;
    let data = crate::metrics::DataMetrics {
        alerts_fired: state.data.alerts_fired(),
        indexes: indexes
            .iter()
            .map(|u| {
                let view = crate::documents::IndexView::from(u);
                (view.name, view.kind, view.used, view.capacity)
            })
            .collect(),
        metering: {
            use std::sync::atomic::Ordering::Relaxed;
            let m = state.metering.stats();
            (m.events.load(Relaxed), m.flushes.load(Relaxed), m.failures.load(Relaxed))
        },
    };
    let text = state.metrics.render(store.pool_stats(), store.backend(), &data);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

// ---- tenants -----------------------------------------------------------------------------------

/// Create a tenant (platform administrators).
#[utoipa::path(post, path = "/tenants", tag = "tenants", security(("bearer" = [])), request_body = CreateTenantBody,
    responses((status = 201, body = TenantView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Body(body): Body<CreateTenantBody>,
) -> ApiResult<Response> {
    let new = body.parse()?;
    let tenant = state.registry.create_tenant(&access, new).await?;
    let mut response = with_etag(StatusCode::CREATED, TenantView::from(&tenant));
    if let Ok(location) = HeaderValue::from_str(&format!("/tenants/{}", tenant.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// List tenants (platform administrators), or with `user_id` the tenants a user can act in.
#[utoipa::path(get, path = "/tenants", tag = "tenants", security(("bearer" = [])), params(ListTenantsQuery),
    responses((status = 200, body = TenantListView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Q(query): Q<ListTenantsQuery>,
) -> ApiResult<axum::Json<TenantListView>> {
    let status = query.status.as_deref().map(TenantStatus::parse).transpose().map_err(invalid)?;
    let tier = query.tier.as_deref().map(TierName::parse).transpose().map_err(invalid)?;
    if let Some(user) = &query.user_id {
        let user = parse_user(user)?;
        let found = state.registry.tenants_of_user(&principal, &user, status, tier.as_ref()).await?;
        let tenants = found
            .iter()
            .map(|(t, role)| {
                state.metrics.observe_tenant(t.id.as_str());
                TenantView { role: Some(role.as_str().to_owned()), ..TenantView::from(t) }
            })
            .collect();
        return Ok(axum::Json(TenantListView { tenants, next_cursor: None }));
    }
    let access = principal.platform()?;
    let filter = TenantFilter {
        status,
        tier,
        after: query.after.as_deref().map(parse_tenant).transpose()?,
        limit: query.limit.unwrap_or(0),
    };
    if query.limit == Some(0) {
        return Err(ApiError::new(ErrorCode::InvalidInput, "limit must be between 1 and 1000"));
    }
    let page = state.registry.list_tenants(&access, filter).await?;
    Ok(axum::Json(TenantListView {
        tenants: page.items.iter().map(TenantView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read a tenant (any member; platform administrators).
#[utoipa::path(get, path = "/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = TenantView, headers(("ETag" = String))), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_tenant(State(state): State<AppState>, TenantAccess(scope): TenantAccess) -> ApiResult<Response> {
    let tenant = state.registry.get_tenant(&scope).await?;
    Ok(with_etag(StatusCode::OK, TenantView::from(&tenant)))
}

/// Update attributes. Tenant admins may change name, contacts and metadata; tier, limits, billing,
/// compliance and region need a platform administrator. `If-Match` makes it conditional.
#[utoipa::path(patch, path = "/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("If-Match" = Option<String>, Header, description = "ETag from a previous read")),
    request_body = PatchTenantBody,
    responses((status = 200, body = TenantView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
              (status = 422, body = Problem)))]
pub async fn patch_tenant(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    IfMatch(expected): IfMatch,
    Body(body): Body<PatchTenantBody>,
) -> ApiResult<Response> {
    let patch = body.parse()?;
    let tenant = state.registry.update_tenant(&scope, patch, expected).await?;
    Ok(with_etag(StatusCode::OK, TenantView::from(&tenant)))
}

async fn transition(
    state: AppState,
    principal: Principal,
    id: String,
    expected: Option<i64>,
    body: TransitionBody,
    target: TenantStatus,
) -> ApiResult<Response> {
    let scope = scope_in(&state, &principal, &id)?;
    if body.retention_days.is_some() && target != TenantStatus::Archived {
        return Err(ApiError::new(ErrorCode::InvalidInput, "retention_days applies only to archive"));
    }
    let reason = body.reason.unwrap_or_else(|| format!("{} through the API by {}", target.as_str(), principal.actor()));
    let tenant = state.registry.transition(&scope, target, &reason, body.retention_days, expected).await?;
    Ok(with_etag(StatusCode::OK, TenantView::from(&tenant)))
}

macro_rules! transition_handler {
    ($name:ident, $path:literal, $target:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "lifecycle", security(("bearer" = [])),
            params(("tenant_id" = String, Path), ("If-Match" = Option<String>, Header)),
            request_body(content = Option<TransitionBody>, description = "optional"),
            responses((status = 200, body = TenantView), (status = 401, body = Problem), (status = 403, body = Problem),
                      (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
        pub async fn $name(
            State(state): State<AppState>,
            Auth(principal): Auth,
            P(id): P<String>,
            IfMatch(expected): IfMatch,
            OptionalBody(body): OptionalBody<TransitionBody>,
        ) -> ApiResult<Response> {
            transition(state, principal, id, expected, body, $target).await
        }
    };
}

transition_handler!(
    suspend_tenant,
    "/tenants/{tenant_id}/suspend",
    TenantStatus::Suspended,
    "Suspend (platform administrators)."
);
transition_handler!(
    activate_tenant,
    "/tenants/{tenant_id}/activate",
    TenantStatus::Active,
    "Activate (platform administrators)."
);
transition_handler!(
    archive_tenant,
    "/tenants/{tenant_id}/archive",
    TenantStatus::Archived,
    "Archive, starting the retention period (platform administrators)."
);
transition_handler!(
    migrate_tenant,
    "/tenants/{tenant_id}/migrate",
    TenantStatus::Migrating,
    "Start a migration (platform administrators)."
);

/// Delete an archived tenant once its retention period is over (platform administrators).
#[utoipa::path(delete, path = "/tenants/{tenant_id}", tag = "lifecycle", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("If-Match" = Option<String>, Header), DeleteTenantQuery),
    responses((status = 200, body = TenantView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    Auth(principal): Auth,
    P(id): P<String>,
    IfMatch(expected): IfMatch,
    Q(query): Q<DeleteTenantQuery>,
) -> ApiResult<Response> {
    let body = TransitionBody { reason: query.reason, retention_days: None };
    transition(state, principal, id, expected, body, TenantStatus::Deleted).await
}

/// Record health signals; answers the score and class (analysts, admins, platform).
#[utoipa::path(post, path = "/tenants/{tenant_id}/health", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = HealthBody,
    responses((status = 200, body = HealthView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn record_health(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Body(body): Body<HealthBody>,
) -> ApiResult<axum::Json<HealthView>> {
    let signals =
        HealthSignals::new(body.latency_p95, body.error_rate, body.query_success_rate, body.storage_utilization)
            .map_err(invalid)?;
    let (tenant, report) = state.registry.record_health(&scope, signals).await?;
    Ok(axum::Json(HealthView::new(&tenant, &report)))
}

/// The tenant's audit trail, oldest first (reviewers, admins, platform).
#[utoipa::path(get, path = "/tenants/{tenant_id}/history", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = String, Path), LimitQuery),
    responses((status = 200, body = Vec<AuditEntryView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn tenant_history(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Q(query): Q<LimitQuery>,
) -> ApiResult<axum::Json<Vec<AuditEntryView>>> {
    let limit = bounded_limit(query.limit)?;
    let entries = state.registry.tenant_audit(&scope, limit).await?;
    Ok(axum::Json(entries.iter().map(AuditEntryView::from).collect()))
}

fn bounded_limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n),
        Some(_) => Err(ApiError::new(ErrorCode::InvalidInput, "limit must be between 1 and 1000")),
    }
}

/// Registry statistics (platform administrators).
#[utoipa::path(get, path = "/statistics", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = StatisticsView), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn statistics(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<StatisticsView>> {
    let stats = state.registry.statistics(&access).await?;
    Ok(axum::Json(StatisticsView::from(&stats)))
}

// ---- flags -------------------------------------------------------------------------------------

fn flag_scope(scope: &str, scope_id: Option<&str>) -> ApiResult<FlagScope> {
    let level = FlagLevel::parse(scope).map_err(invalid)?;
    FlagScope::from_parts(level, scope_id).map_err(invalid)
}

/// Set a flag at a scope. Global and tier scopes: platform administrators; tenant scope: also that
/// tenant's admins.
#[utoipa::path(post, path = "/feature-flags", tag = "flags", security(("bearer" = [])), request_body = SetFlagBody,
    responses((status = 200, body = FlagView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_flag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(body): Body<SetFlagBody>,
) -> ApiResult<axum::Json<FlagView>> {
    let key = FlagKey::parse(&body.feature_name).map_err(invalid)?;
    let value = match (body.enabled, body.value.clone()) {
        (Some(enabled), None) => FlagValue::Bool(enabled),
        (None, Some(v)) => FlagValue::from_json(v).map_err(invalid)?,
        _ => return Err(ApiError::new(ErrorCode::InvalidInput, "give exactly one of `enabled` (boolean) or `value`")),
    };
    let scope = flag_scope(&body.scope, body.scope_id.as_deref())?;
    let meta = body.meta()?;
    let rule = tenantry_domain::FlagRule { value: value.clone(), rollout: body.rollout_percentage };
    match &scope {
        FlagScope::Tenant(t) => {
            let tenant_scope = scope_in(&state, &principal, t.as_str())?;
            state.registry.set_tenant_flag_rule(&tenant_scope, key.clone(), rule, meta, body.platform_set).await?;
        }
        _ if body.platform_set.is_some() => {
            return Err(ApiError::new(ErrorCode::InvalidInput, "platform_set applies only to a tenant-scope value"));
        }
        _ => {
            let access = principal.platform()?;
            state.registry.set_flag_rule(&access, scope.clone(), key.clone(), rule, meta).await?;
        }
    }
    Ok(axum::Json(FlagView {
        feature_name: key.to_string(),
        scope: scope.level().as_str().to_owned(),
        scope_id: (!scope.scope_id().is_empty()).then(|| scope.scope_id().to_owned()),
        enabled: value.as_bool(),
        value: value.to_json(),
        rollout_percentage: body.rollout_percentage,
        updated_at: None,
    }))
}

/// Remove a flag's value at a scope (same permissions as setting it).
#[utoipa::path(delete, path = "/feature-flags", tag = "flags", security(("bearer" = [])), params(DeleteFlagQuery),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_flag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Q(query): Q<DeleteFlagQuery>,
) -> ApiResult<StatusCode> {
    let key = FlagKey::parse(&query.feature_name).map_err(invalid)?;
    let scope = flag_scope(&query.scope, query.scope_id.as_deref())?;
    match &scope {
        FlagScope::Tenant(t) => {
            let tenant_scope = scope_in(&state, &principal, t.as_str())?;
            state.registry.delete_tenant_flag(&tenant_scope, key).await?;
        }
        _ => {
            let access = principal.platform()?;
            state.registry.delete_flag(&access, scope, key).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Every flag value at every scope (platform administrators).
#[utoipa::path(get, path = "/feature-flags", tag = "flags", security(("bearer" = [])),
    responses((status = 200, body = Vec<FlagView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_flags(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<Vec<FlagView>>> {
    let rows = state.registry.list_flags(&access).await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| FlagView {
                feature_name: r.key.to_string(),
                scope: r.scope.level().as_str().to_owned(),
                scope_id: (!r.scope.scope_id().is_empty()).then(|| r.scope.scope_id().to_owned()),
                enabled: r.value.as_bool(),
                value: r.value.to_json(),
                rollout_percentage: r.rollout,
                updated_at: Some(tenantry_domain::tenant::format_time(r.updated_at)),
            })
            .collect(),
    ))
}

/// Every flag definition: type, description, owner, expiry, version (platform administrators).
#[utoipa::path(get, path = "/flag-definitions", tag = "flags", security(("bearer" = [])),
    responses((status = 200, body = Vec<FlagDefinitionView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn flag_definitions(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<FlagDefinitionView>>> {
    let access = principal.platform()?;
    Ok(axum::Json(state.registry.flag_definitions(&access).await?.iter().map(FlagDefinitionView::from).collect()))
}

async fn kill_switch(
    state: AppState,
    principal: tenantry_app::Principal,
    feature: String,
    body: KillSwitchBody,
    enabled: bool,
) -> ApiResult<axum::Json<KillSwitchView>> {
    let access = principal.platform()?;
    let key = FlagKey::parse(&feature).map_err(invalid)?;
    state.registry.set_flag_enabled(&access, key.clone(), enabled, body.reason).await?;
    Ok(axum::Json(KillSwitchView { feature_name: key.to_string(), enabled }))
}

/// Kill switch off: the flag evaluates to DISABLED for every tenant (OpenFeature clients use
/// their code default); its values are kept (platform administrators).
#[utoipa::path(post, path = "/flag-definitions/{feature}/disable", tag = "flags", security(("bearer" = [])),
    params(("feature" = String, Path)), request_body(content = Option<KillSwitchBody>, description = "optional"),
    responses((status = 200, body = KillSwitchView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn disable_flag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    P(feature): P<String>,
    OptionalBody(body): OptionalBody<KillSwitchBody>,
) -> ApiResult<axum::Json<KillSwitchView>> {
    kill_switch(state, principal, feature, body, false).await
}

/// Kill switch on again: the flag's values apply (platform administrators).
#[utoipa::path(post, path = "/flag-definitions/{feature}/enable", tag = "flags", security(("bearer" = [])),
    params(("feature" = String, Path)), request_body(content = Option<KillSwitchBody>, description = "optional"),
    responses((status = 200, body = KillSwitchView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn enable_flag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    P(feature): P<String>,
    OptionalBody(body): OptionalBody<KillSwitchBody>,
) -> ApiResult<axum::Json<KillSwitchView>> {
    kill_switch(state, principal, feature, body, true).await
}

/// The stale-flag report: flags older than `max_age_days` (default 90), past their expiry, or
/// evaluating the same for every tenant (platform administrators).
#[utoipa::path(get, path = "/flag-definitions/stale", tag = "flags", security(("bearer" = [])), params(StaleQuery),
    responses((status = 200, body = Vec<StaleFlagView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn stale_flags(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Q(query): Q<StaleQuery>,
) -> ApiResult<axum::Json<Vec<StaleFlagView>>> {
    let days = query.max_age_days.unwrap_or(90);
    if days > 36_500 {
        return Err(ApiError::new(ErrorCode::InvalidInput, "max_age_days must be at most 36500"));
    }
    let report = state.registry.stale_flags(&access, time::Duration::days(i64::from(days))).await?;
    Ok(axum::Json(
        report
            .iter()
            .map(|(d, reasons)| StaleFlagView {
                definition: FlagDefinitionView::from(d),
                reasons: reasons.iter().map(|r| r.as_str().to_owned()).collect(),
            })
            .collect(),
    ))
}

/// Evaluate every flag for a tenant (any member).
#[utoipa::path(get, path = "/feature-flags/{tenant_id}", tag = "flags", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = EvaluationsView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn evaluate_all(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
) -> ApiResult<axum::Json<EvaluationsView>> {
    let all = state.registry.evaluate_all_flags(&scope).await?;
    Ok(axum::Json(EvaluationsView {
        tenant_id: scope.tenant().to_string(),
        flags: all.iter().map(|(k, e)| EvaluationView::new(scope.tenant(), k, e)).collect(),
    }))
}

/// Evaluate one flag for a tenant: value and the level that decided it (any member).
#[utoipa::path(get, path = "/feature-flags/{tenant_id}/{feature}", tag = "flags", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("feature" = String, Path)),
    responses((status = 200, body = EvaluationView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn evaluate_flag(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    P((_, feature)): P<(String, String)>,
) -> ApiResult<axum::Json<EvaluationView>> {
    let key = FlagKey::parse(&feature).map_err(invalid)?;
    let evaluation = state.registry.evaluate_flag(&scope, &key).await?;
    Ok(axum::Json(EvaluationView::new(scope.tenant(), &key, &evaluation)))
}

// ---- tiers -------------------------------------------------------------------------------------

/// The tier catalog (any authenticated principal).
#[utoipa::path(get, path = "/tiers", tag = "tiers", security(("bearer" = [])),
    responses((status = 200, body = Vec<TierView>), (status = 401, body = Problem)))]
pub async fn list_tiers(State(state): State<AppState>, Auth(_): Auth) -> ApiResult<axum::Json<Vec<TierView>>> {
    Ok(axum::Json(state.registry.list_tiers().await?.iter().map(TierView::from).collect()))
}

/// One tier (any authenticated principal).
#[utoipa::path(get, path = "/tiers/{name}", tag = "tiers", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = TierView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_tier(
    State(state): State<AppState>,
    Auth(_): Auth,
    P(name): P<String>,
) -> ApiResult<axum::Json<TierView>> {
    let name = TierName::parse(&name).map_err(invalid)?;
    Ok(axum::Json(TierView::from(&state.registry.get_tier(&name).await?)))
}

// ---- users and members -------------------------------------------------------------------------

/// Who the key belongs to, with memberships.
#[utoipa::path(get, path = "/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = WhoAmIView), (status = 401, body = Problem)))]
pub async fn whoami(Auth(principal): Auth) -> axum::Json<WhoAmIView> {
    axum::Json(WhoAmIView {
        user_id: principal.id().to_string(),
        kind: if principal.is_platform_admin() { "platform_admin" } else { "user" }.to_owned(),
        key_id: principal.key().to_string(),
        memberships: principal
            .memberships()
            .into_iter()
            .map(|(t, r)| RoleView { tenant_id: t.to_string(), role: r.as_str().to_owned() })
            .collect(),
    })
}

/// Create a user (platform administrators).
#[utoipa::path(post, path = "/users", tag = "identity", security(("bearer" = [])), request_body = CreateUserBody,
    responses((status = 201, body = UserView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Body(body): Body<CreateUserBody>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let user = state.directory.create_user(&access, parse_user(&body.user_id)?, &body.display_name).await?;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&user))))
}

/// Every user (platform administrators).
#[utoipa::path(get, path = "/users", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_users(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<Vec<UserView>>> {
    Ok(axum::Json(state.directory.list_users(&access).await?.iter().map(UserView::from).collect()))
}

/// A tenant's members (the tenant's admins, platform).
#[utoipa::path(get, path = "/tenants/{tenant_id}/members", tag = "identity", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = Vec<MembershipView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_members(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
) -> ApiResult<axum::Json<Vec<MembershipView>>> {
    Ok(axum::Json(state.directory.list_members(&scope).await?.iter().map(MembershipView::from).collect()))
}

/// Add a user to a tenant or change their role. A platform administrator adds directly (200); a
/// tenant admin changes an existing member's role (200) or invites the user (202: they become a
/// member when they accept, and the answer is the same whether or not the user exists).
#[utoipa::path(post, path = "/tenants/{tenant_id}/members", tag = "identity", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = PutMemberBody,
    responses((status = 200, body = MembershipView), (status = 202, body = InvitationView),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_member(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Body(body): Body<PutMemberBody>,
) -> ApiResult<Response> {
    let user = parse_user(&body.user_id)?;
    let role = Role::parse(&body.role).map_err(invalid)?;
    Ok(match state.directory.put_member(&scope, &user, role).await? {
        MemberChange::Added(membership) => axum::Json(MembershipView::from(&membership)).into_response(),
        MemberChange::Invited(invitation) => {
            (StatusCode::ACCEPTED, axum::Json(InvitationView::from(&invitation))).into_response()
        }
    })
}

/// The caller's open invitations.
#[utoipa::path(get, path = "/me/invitations", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Vec<InvitationView>), (status = 401, body = Problem)))]
pub async fn my_invitations(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<InvitationView>>> {
    Ok(axum::Json(state.directory.invitations(&principal).await?.iter().map(InvitationView::from).collect()))
}

/// Accept an invitation: the caller becomes a member of the tenant with the invited role.
#[utoipa::path(post, path = "/me/invitations/{tenant_id}/accept", tag = "identity", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = MembershipView), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    Auth(principal): Auth,
    P(tenant): P<String>,
) -> ApiResult<axum::Json<MembershipView>> {
    let tenant = parse_tenant(&tenant)?;
    Ok(axum::Json(MembershipView::from(&state.directory.accept_invitation(&principal, &tenant).await?)))
}

/// Remove a user from a tenant (the tenant's admins, platform).
#[utoipa::path(delete, path = "/tenants/{tenant_id}/members/{user_id}", tag = "identity", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove_member(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    P((_, user)): P<(String, String)>,
) -> ApiResult<StatusCode> {
    state.directory.remove_member(&scope, &parse_user(&user)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- keys --------------------------------------------------------------------------------------

/// Issue an API key (platform administrators). The token is in this answer only.
#[utoipa::path(post, path = "/keys", tag = "identity", security(("bearer" = [])), request_body = CreateKeyBody,
    responses((status = 201, body = IssuedKeyView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_key(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Body(body): Body<CreateKeyBody>,
) -> ApiResult<(StatusCode, HeaderMap, axum::Json<IssuedKeyView>)> {
    let owner = match (&body.user_id, &body.platform_admin) {
        (Some(user), None) => KeyOwner::User(parse_user(user)?),
        (None, Some(admin)) => KeyOwner::PlatformAdmin(parse_user(admin)?),
        _ => return Err(ApiError::new(ErrorCode::InvalidInput, "give exactly one of `user_id` or `platform_admin`")),
    };
    let expires_at = body.expires_at.as_deref().map(|t| parse_time("expires_at", t)).transpose().map_err(invalid)?;
    let issued = state.directory.create_key(&access, owner, &body.name, expires_at).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((
        StatusCode::CREATED,
        headers,
        axum::Json(IssuedKeyView { token: issued.token, key: KeyView::from(&issued.key) }),
    ))
}

/// List API keys, never their secrets (platform administrators).
#[utoipa::path(get, path = "/keys", tag = "identity", security(("bearer" = [])), params(ListKeysQuery),
    responses((status = 200, body = Vec<KeyView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_keys(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Q(query): Q<ListKeysQuery>,
) -> ApiResult<axum::Json<Vec<KeyView>>> {
    let owner = query.owner.as_deref().map(parse_user).transpose()?;
    Ok(axum::Json(state.directory.list_keys(&access, owner.as_ref()).await?.iter().map(KeyView::from).collect()))
}

/// Revoke an API key; it stops working at once (platform administrators).
#[utoipa::path(delete, path = "/keys/{key_id}", tag = "identity", security(("bearer" = [])),
    params(("key_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    P(id): P<String>,
) -> ApiResult<StatusCode> {
    let id = KeyId::parse(&id).map_err(invalid)?;
    state.directory.revoke_key(&access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- audit -------------------------------------------------------------------------------------

/// Audit entries in sequence order, with their hashes and signatures. Platform administrators read
/// every entry (optionally one tenant's); a tenant's reviewers and admins read that tenant's.
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPageView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Q(query): Q<AuditQuery>,
) -> ApiResult<axum::Json<AuditPageView>> {
    let since = query.since.as_deref().map(|t| parse_time("since", t)).transpose().map_err(invalid)?;
    let limit = bounded_limit(query.limit)?;
    let after_seq = query.after_seq.unwrap_or(0).max(0);
    let tenant = query.tenant_id.as_deref().map(parse_tenant).transpose()?;
    let filter = tenantry_app::AuditFilter { after_seq, tenant: tenant.clone(), since, limit };
    let entries: Vec<AuditEntryView> = match (&tenant, principal.is_platform_admin()) {
        (_, true) => {
            state.auditor.entries(&principal.platform()?, filter).await?.iter().map(AuditEntryView::from).collect()
        }
        // a tenant's own view: positions in its history, not global sequence numbers
        (Some(t), false) => {
            let scope = scope_in(&state, &principal, t.as_str())?;
            state.auditor.tenant_entries(&scope, filter).await?.iter().map(AuditEntryView::from).collect()
        }
        (None, false) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "give tenant_id: you may read the audit log of your own tenants",
            ));
        }
    };
    let next_after_seq = (entries.len() == limit as usize).then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(axum::Json(AuditPageView { entries, next_after_seq }))
}
