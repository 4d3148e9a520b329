//! The server side of the OpenFeature Remote Evaluation Protocol (OFREP v1), so that a stock
//! OpenFeature SDK with its OFREP provider evaluates Tenantry flags with no code of ours.
//!
//! The tenant is the evaluation context's `targetingKey`; the bearer key must be allowed to
//! evaluate flags in that tenant. Reasons map as `Evaluation::openfeature_reason` says; errors use
//! OFREP's shapes (`errorCode`: `PARSE_ERROR`, `TARGETING_KEY_MISSING`, `INVALID_CONTEXT`,
//! `FLAG_NOT_FOUND`, `GENERAL`). A defined flag that no level applies to for this tenant answers
//! `FLAG_NOT_FOUND` too, so the SDK falls back to the code default.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use tenantry_app::AppError;
use tenantry_domain::{Evaluation, FlagKey, TenantId};

use crate::AppState;
use crate::extract::{Auth, P};
use crate::problem::ApiError;

/// A successful evaluation (OFREP `evaluationSuccess`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfrepSuccess {
    pub key: String,
    /// STATIC | TARGETING_MATCH | SPLIT | DEFAULT | DISABLED
    pub reason: String,
    /// The level that decided: `tenant`, `tier` or `global` (`disabled` for a disabled flag).
    pub variant: String,
    /// Absent for a disabled flag (OFREP: the client falls back to its default).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub value: Option<Value>,
    /// `version` (number), `level` and `tenantry_reason` (strings).
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// A failed evaluation (OFREP `evaluationFailure` / `flagNotFound`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepFailure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// PARSE_ERROR | TARGETING_KEY_MISSING | INVALID_CONTEXT | FLAG_NOT_FOUND | GENERAL
    pub error_code: String,
    pub error_details: String,
}

fn failure(status: StatusCode, key: Option<&str>, code: &str, details: impl Into<String>) -> Response {
    let body = OfrepFailure { key: key.map(str::to_owned), error_code: code.to_owned(), error_details: details.into() };
    (status, axum::Json(body)).into_response()
}

/// Reads `{"context": {"targetingKey": "<tenant>", ...}}`; an OFREP error response otherwise.
fn tenant_from_body(bytes: &[u8], key: Option<&str>) -> Result<TenantId, Box<Response>> {
    let bad = |code: &str, details: String| Box::new(failure(StatusCode::BAD_REQUEST, key, code, details));
    let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(bytes).map_err(|e| bad("PARSE_ERROR", format!("the body is not JSON: {e}")))?
    };
    let context = match body.get("context") {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(bad("INVALID_CONTEXT", "context must be an object".to_owned())),
    };
    match context.get("targetingKey") {
        None | Some(Value::Null) => {
            Err(bad("TARGETING_KEY_MISSING", "set the evaluation context's targetingKey to the tenant id".to_owned()))
        }
        Some(Value::String(t)) => {
            TenantId::parse(t).map_err(|e| bad("INVALID_CONTEXT", format!("targetingKey is not a tenant id: {e}")))
        }
        Some(_) => Err(bad("INVALID_CONTEXT", "targetingKey must be a string".to_owned())),
    }
}

/// Authorization and store errors in OFREP form (401/403 keep the problem document).
fn app_failure(e: AppError, key: Option<&str>) -> Response {
    match &e {
        AppError::Unauthenticated(_) | AppError::Forbidden(_) => ApiError::from(e).into_response(),
        AppError::TenantNotFound(_) | AppError::Invalid(_) => {
            failure(StatusCode::BAD_REQUEST, key, "INVALID_CONTEXT", e.to_string())
        }
        AppError::TenantInactive { .. } => failure(StatusCode::FORBIDDEN, key, "GENERAL", e.to_string()),
        AppError::Unavailable(_) => failure(StatusCode::SERVICE_UNAVAILABLE, key, "GENERAL", e.to_string()),
        _ => {
            let status = ApiError::from(e).status();
            failure(status, key, "GENERAL", "the flag could not be evaluated")
        }
    }
}

fn success(key: &FlagKey, e: &Evaluation) -> Option<OfrepSuccess> {
    match e {
        Evaluation::Resolved { value, level, version, .. } => Some(OfrepSuccess {
            key: key.to_string(),
            reason: e.openfeature_reason().to_owned(),
            variant: level.as_str().to_owned(),
            value: Some(value.to_json()),
            metadata: json!({"version": version, "level": level.as_str(), "tenantry_reason": e.reason()}),
        }),
        Evaluation::Disabled { version } => Some(OfrepSuccess {
            key: key.to_string(),
            reason: e.openfeature_reason().to_owned(),
            variant: "disabled".to_owned(),
            value: None,
            metadata: json!({"version": version, "tenantry_reason": e.reason()}),
        }),
        Evaluation::Unknown => None,
    }
}

fn not_found(key: &FlagKey, tenant: &TenantId) -> Value {
    json!({
        "key": key.as_str(), "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": format!("flag {key} has no value for tenant {tenant}"),
    })
}

/// OFREP single flag evaluation.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "ofrep", security(("bearer" = [])),
    params(("key" = String, Path)), request_body(content = Object, description = "{\"context\": {\"targetingKey\": \"<tenant id>\"}}"),
    responses((status = 200, body = OfrepSuccess), (status = 400, body = OfrepFailure), (status = 404, body = OfrepFailure),
              (status = 401), (status = 403, body = OfrepFailure, description = "the tenant is not active (OFREP form), or not allowed (problem)"),
              (status = 503, body = OfrepFailure, description = "the store is unavailable and no snapshot may be served")))]
pub async fn evaluate_flag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    P(key): P<String>,
    body: Bytes,
) -> Response {
    let tenant = match tenant_from_body(&body, Some(&key)) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    let Ok(flag) = FlagKey::parse(&key) else {
        return failure(StatusCode::NOT_FOUND, Some(&key), "FLAG_NOT_FOUND", "no flag has that key");
    };
    let scope = match principal.tenant(&tenant) {
        Ok(s) => s,
        Err(e) => return app_failure(e, Some(&key)),
    };
    tracing::Span::current().record("tenant_id", tenant.as_str());
    state.metrics.observe_tenant(tenant.as_str());
    match state.registry.evaluate_for_runtime(&scope, Some(&flag)).await {
        Ok(result) => {
            let response = match result.evaluations.first().and_then(|(k, e)| success(k, e)) {
                Some(ok) => (StatusCode::OK, axum::Json(ok)).into_response(),
                None => (StatusCode::NOT_FOUND, axum::Json(not_found(&flag, &tenant))).into_response(),
            };
            mark_stale(response, result.stale)
        }
        Err(e) => app_failure(e, Some(&key)),
    }
}

/// OFREP bulk evaluation: every flag for the tenant, with an ETag; `If-None-Match` → 304.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "ofrep", security(("bearer" = [])),
    request_body(content = Object, description = "{\"context\": {\"targetingKey\": \"<tenant id>\"}}"),
    responses((status = 200, description = "{\"flags\": [...]} with an ETag header"), (status = 304),
              (status = 400, body = OfrepFailure), (status = 401),
              (status = 403, body = OfrepFailure, description = "the tenant is not active (OFREP form), or not allowed (problem)"),
              (status = 503, body = OfrepFailure, description = "the store is unavailable and no snapshot may be served")))]
pub async fn evaluate_all(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = match tenant_from_body(&body, None) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    let scope = match principal.tenant(&tenant) {
        Ok(s) => s,
        Err(e) => return app_failure(e, None),
    };
    tracing::Span::current().record("tenant_id", tenant.as_str());
    state.metrics.observe_tenant(tenant.as_str());
    let result = match state.registry.evaluate_for_runtime(&scope, None).await {
        Ok(r) => r,
        Err(e) => return app_failure(e, None),
    };
    let flags: Vec<Value> = result
        .evaluations
        .iter()
        .map(|(k, e)| match success(k, e) {
            Some(ok) => serde_json::to_value(ok).unwrap_or(Value::Null),
            None => not_found(k, &tenant),
        })
        .collect();
    let body = json!({"flags": flags});
    let text = body.to_string();
    let etag = format!("\"{}\"", &tenantry_domain::audit::to_hex(&sha_of(text.as_bytes()))[..32]);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], text).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    mark_stale(response, result.stale)
}

/// Marks an answer served from the last snapshot while the store is unavailable.
pub fn mark_stale(mut response: Response, stale: bool) -> Response {
    if stale {
        let headers = response.headers_mut();
        headers.insert("x-tenantry-stale", HeaderValue::from_static("true"));
        headers.insert(header::WARNING, HeaderValue::from_static("110 tenantry \"Response is Stale\""));
    }
    response
}

fn sha_of(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// OFREP provider configuration (any authenticated principal).
#[utoipa::path(get, path = "/ofrep/v1/configuration", tag = "ofrep", security(("bearer" = [])),
    responses((status = 200, description = "OFREP configurationResponse"), (status = 401)))]
pub async fn configuration(Auth(_): Auth) -> axum::Json<Value> {
    axum::Json(json!({
        "name": "tenantry",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": 1000}},
            "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
        },
    }))
}
