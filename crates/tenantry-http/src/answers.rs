//! Answers and answer configuration over HTTP: a tenant's resolved configuration, its versions,
//! changes, rollback and template preview (its members read, its admins change), `ask` (whole or
//! as server-sent events), and the platform's and tiers' layers (platform administrators).

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use tenantry_app::answers::version_json;
use tenantry_app::{AppError, AskRequest};
use tenantry_domain::TierName;
use tenantry_domain::rag::{ConfigScope, RagSettings};

use crate::AppState;
use crate::dto::invalid;
use crate::extract::{Body, P, PlatformAccess, Q, TenantAccess};
use crate::problem::{ApiError, Problem};

type ApiResult<T> = Result<T, ApiError>;

/// A JSON document whose shape the README's answers section describes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct AnswerDocument(pub Value);

fn doc(value: Value) -> axum::Json<AnswerDocument> {
    axum::Json(AnswerDocument(value))
}

/// A new version of a configuration layer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    /// The layer's fields (`provider`, `model`, `top_k`, `temperature`, `max_tokens`, `rerank`,
    /// `rerank_depth`, `filter`, `template`, `max_answer_chars`); fields left out are inherited.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// The version this change was made from; if the layer has moved on, 412 `version_conflict`.
    pub expected_version: Option<u32>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version whose settings become current again (as a new version).
    pub version: u32,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    pub question: String,
    /// A template to try; the configured one when absent.
    pub template: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    pub question: String,
    /// Metadata filter (overrides the configured one).
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Chunks to answer from (overrides the configured `top_k`).
    pub top_k: Option<u32>,
}

fn settings(value: &Value) -> ApiResult<RagSettings> {
    RagSettings::from_json(value).map_err(invalid)
}

fn config_json(tenant: &str, config: &tenantry_domain::rag::RagConfig) -> Value {
    json!({"tenant_id": tenant, "version": config.version, "config": config.to_json()})
}

/// The tenant's answer configuration, each field with the level that decided it (every member).
#[utoipa::path(get, path = "/tenants/{tenant_id}/config", tag = "answers", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn show_config(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let config = state.answers.config(&scope).await?;
    Ok(doc(config_json(scope.tenant().as_str(), &config)))
}

/// Replaces the tenant's layer as a new version (tenant admins). A configuration that cannot
/// answer (a model its provider does not offer or without prices) is refused whole.
#[utoipa::path(put, path = "/tenants/{tenant_id}/config", tag = "answers", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = ConfigBody,
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
              (status = 422, body = Problem)))]
pub async fn set_config(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Body(body): Body<ConfigBody>,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let layer = settings(&body.settings)?;
    let (_, config) = state.answers.set_tenant_config(&scope, layer, body.expected_version, body.reason).await?;
    Ok(doc(config_json(scope.tenant().as_str(), &config)))
}

/// Every version of the tenant's layer, oldest first, with author and reason (every member).
#[utoipa::path(get, path = "/tenants/{tenant_id}/config/versions", tag = "answers", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn config_versions(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let versions = state.answers.tenant_versions(&scope).await?;
    Ok(doc(
        json!({"tenant_id": scope.tenant().as_str(), "versions": versions.iter().map(version_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: u32,
    to: u32,
}

/// The fields that differ between two versions of the tenant's layer (0: the empty layer before
/// the first version), each with its value in both (`null`: not set, inherited) (every member).
#[utoipa::path(get, path = "/tenants/{tenant_id}/config/diff", tag = "answers", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("from" = u32, Query), ("to" = u32, Query)),
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn config_diff(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Q(q): Q<DiffQuery>,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let changes: Vec<Value> = state
        .answers
        .tenant_diff(&scope, q.from, q.to)
        .await?
        .into_iter()
        .map(|(field, from, to)| json!({"field": field, "from": from, "to": to}))
        .collect();
    Ok(doc(json!({"tenant_id": scope.tenant().as_str(), "from": q.from, "to": q.to, "changes": changes})))
}

/// Makes an earlier version's settings current again, as a new version (tenant admins).
#[utoipa::path(post, path = "/tenants/{tenant_id}/config/rollback", tag = "answers", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = RollbackBody,
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn rollback_config(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Body(body): Body<RollbackBody>,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let (_, config) = state.answers.rollback_tenant(&scope, body.version, body.reason).await?;
    Ok(doc(config_json(scope.tenant().as_str(), &config)))
}

/// The prompt a provider would receive for `question` with a template (given or configured)
/// over sample passages (every member).
#[utoipa::path(post, path = "/tenants/{tenant_id}/config/preview", tag = "answers", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = PreviewBody,
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn preview(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Body(body): Body<PreviewBody>,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let prompt = state.answers.preview(&scope, body.template, &body.question).await?;
    Ok(doc(json!({"system": prompt.system, "user": prompt.user})))
}

/// Answers a question from the tenant's documents with its configuration (members who may
/// query). With `Accept: text/event-stream`: `delta` events carry the text as it is generated,
/// then one `answer` event the whole answer (or one `error` event with a problem).
#[utoipa::path(post, path = "/tenants/{tenant_id}/ask", tag = "answers", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = AskBody,
    responses((status = 200, description = "The answer (JSON), or its server-sent events",
               content((AnswerDocument = "application/json"), (String = "text/event-stream"))),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 402, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
              (status = 423, body = Problem), (status = 429, body = Problem), (status = 502, body = Problem),
              (status = 503, body = Problem), (status = 504, body = Problem)))]
pub async fn ask(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    headers: HeaderMap,
    Body(body): Body<AskBody>,
) -> ApiResult<Response> {
    let request = AskRequest { question: body.question, filter: body.filter, top_k: body.top_k };
    let wants_stream =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"));
    if !wants_stream {
        let answer = state.answers.ask(&scope, request, None).await?;
        return Ok(doc(answer.to_json()).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let answers = state.answers.clone();
    let task = tokio::spawn(async move { answers.ask(&scope, request, Some(tx)).await });
    let stream = futures_util::stream::unfold(Some((rx, Some(task))), |state| async move {
        let (mut rx, task) = state?;
        if let Some(text) = rx.recv().await {
            let event = format!("event: delta\ndata: {}\n\n", json!({"text": text}));
            return Some((Ok::<_, Infallible>(event), Some((rx, task))));
        }
        let task = task?;
        let event = match task.await {
            Ok(Ok(answer)) => format!("event: answer\ndata: {}\n\n", answer.to_json()),
            Ok(Err(e)) => format!("event: error\ndata: {}\n\n", problem_json(ApiError::from(e))),
            Err(e) => format!(
                "event: error\ndata: {}\n\n",
                problem_json(ApiError::from(AppError::Unexpected(anyhow::anyhow!("the answer task failed: {e}"))))
            ),
        };
        Some((Ok(event), None))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(axum::body::Body::from_stream(stream))
        .map_err(|e| ApiError::from(AppError::Unexpected(e.into())))
}

fn problem_json(e: ApiError) -> Value {
    serde_json::to_value(e.problem()).unwrap_or(Value::Null)
}

/// A platform or tier layer: its current version and every version (platform administrators).
fn layer_json(scope: &ConfigScope, versions: &[tenantry_domain::rag::ConfigVersion]) -> Value {
    json!({
        "scope": scope.label(),
        "version": versions.last().map_or(0, |v| v.version),
        "settings": versions.last().map_or(json!({}), |v| v.settings.to_json()),
        "versions": versions.iter().map(version_json).collect::<Vec<_>>(),
    })
}

/// The platform's answer-configuration layer and its versions (platform administrators).
#[utoipa::path(get, path = "/config/platform", tag = "answers", security(("bearer" = [])),
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn platform_config(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let versions = state.answers.default_versions(&access, &ConfigScope::Platform).await?;
    let mut out = layer_json(&ConfigScope::Platform, &versions);
    out["providers"] = json!(
        state
            .answers
            .providers()
            .catalogue()
            .into_iter()
            .map(|(name, models)| json!({"name": name, "models": models}))
            .collect::<Vec<_>>()
    );
    Ok(doc(out))
}

/// Replaces the platform's layer as a new version (platform administrators).
#[utoipa::path(put, path = "/config/platform", tag = "answers", security(("bearer" = [])), request_body = ConfigBody,
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn set_platform_config(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    Body(body): Body<ConfigBody>,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let layer = settings(&body.settings)?;
    state.answers.set_default_config(&access, ConfigScope::Platform, layer, body.expected_version, body.reason).await?;
    let versions = state.answers.default_versions(&access, &ConfigScope::Platform).await?;
    Ok(doc(layer_json(&ConfigScope::Platform, &versions)))
}

fn tier_scope(name: &str) -> ApiResult<ConfigScope> {
    Ok(ConfigScope::Tier(TierName::parse(name).map_err(invalid)?))
}

/// A tier's answer-configuration layer and its versions (platform administrators).
#[utoipa::path(get, path = "/config/tiers/{name}", tag = "answers", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn tier_config(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    P(name): P<String>,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let scope = tier_scope(&name)?;
    let versions = state.answers.default_versions(&access, &scope).await?;
    Ok(doc(layer_json(&scope, &versions)))
}

/// Replaces a tier's layer as a new version (platform administrators).
#[utoipa::path(put, path = "/config/tiers/{name}", tag = "answers", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = ConfigBody,
    responses((status = 200, body = AnswerDocument), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn set_tier_config(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
    P(name): P<String>,
    Body(body): Body<ConfigBody>,
) -> ApiResult<axum::Json<AnswerDocument>> {
    let scope = tier_scope(&name)?;
    let layer = settings(&body.settings)?;
    state.answers.set_default_config(&access, scope.clone(), layer, body.expected_version, body.reason).await?;
    let versions = state.answers.default_versions(&access, &scope).await?;
    Ok(doc(layer_json(&scope, &versions)))
}
