//! Extractors that turn every malformed input into a problem response with a stable code, and the
//! authentication extractor.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use tenantry_app::ErrorCode;
use tenantry_app::Principal;
use tenantry_app::auth::bearer_token;

use crate::AppState;
use crate::problem::ApiError;

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::new(ErrorCode::InvalidInput, body_detail(&e.body_text())),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(ErrorCode::MalformedRequest, body_detail(&e.body_text())),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) => bytes_rejection(e),
        other => ApiError::new(ErrorCode::MalformedRequest, other.body_text()),
    }
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status().as_u16() == 413 {
        ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than this server accepts")
    } else {
        ApiError::new(ErrorCode::MalformedRequest, format!("the request body could not be read: {}", e.body_text()))
    }
}

/// serde's messages are precise ("unknown field `x`, expected one of ..."); keep them, minus axum's
/// generic prefix, and bounded.
fn body_detail(text: &str) -> String {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to parse the request body as JSON: "))
        .unwrap_or(text);
    let short: String = text.chars().take(300).collect();
    format!("the JSON body is not valid: {short}")
}

/// A JSON body (`Content-Type: application/json`), with unknown fields refused by the DTOs.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A JSON body that may be absent (empty): then `T::default()`. For action endpoints such as
/// `POST /tenants/{id}/suspend`, which the seed calls without a body.
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_json_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        let bytes = Bytes::from_request(req, state).await.map_err(bytes_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        if !has_json_type {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        serde_json::from_slice(&bytes).map(OptionalBody).map_err(|e| {
            let code = if e.is_syntax() || e.is_eof() { ErrorCode::MalformedRequest } else { ErrorCode::InvalidInput };
            ApiError::new(code, body_detail(&e.to_string()))
        })
    }
}

/// Query parameters; unknown parameters are refused by the DTOs.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Q(value)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    let text = e.body_text();
    let text = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
    ApiError::new(
        ErrorCode::MalformedRequest,
        format!("the query string is not valid: {}", text.chars().take(300).collect::<String>()),
    )
}

/// Path parameters (always strings here; the handlers parse them into ids).
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(P(value)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    ApiError::new(ErrorCode::MalformedRequest, format!("the URL path is not valid: {}", e.body_text()))
}

/// The authenticated principal behind `Authorization: Bearer <key>`.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "this endpoint needs an API key: send `Authorization: Bearer <key>`",
            )
        })?;
        let header = header.to_str().map_err(|_| {
            ApiError::new(ErrorCode::Unauthenticated, "the Authorization header must be printable ASCII")
        })?;
        let token = bearer_token(header)?;
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let principal = state.directory.authenticate(token).await?.with_request_id(request_id);
        tracing::Span::current().record("principal", tracing::field::display(principal.actor()));
        Ok(Auth(principal))
    }
}

/// The authenticated principal's scope in the tenant named by the route's `{tenant_id}`:
/// refused with 403 for a principal who is not a member (before any store call), 422 for an id
/// that does not parse. The tenant goes on the request's log span and its request metric.
pub struct TenantAccess(pub tenantry_app::TenantScope);

impl FromRequestParts<AppState> for TenantAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        let P(params) = P::<std::collections::HashMap<String, String>>::from_request_parts(parts, state).await?;
        let raw = params.get("tenant_id").ok_or_else(|| {
            tracing::error!("TenantAccess on a route without {{tenant_id}}");
            ApiError::new(ErrorCode::Internal, "this route has no tenant")
        })?;
        Ok(TenantAccess(crate::routes::scope_in(state, &principal, raw)?))
    }
}

/// The authenticated principal's platform scope: 403 for anyone but a platform administrator.
pub struct PlatformAccess(pub tenantry_app::PlatformScope);

impl FromRequestParts<AppState> for PlatformAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        Ok(PlatformAccess(principal.platform()?))
    }
}

/// The version a client expects (`If-Match: "<version>"`), for optimistic concurrency.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let inner = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        inner.parse::<i64>().map(|v| IfMatch(Some(v))).map_err(|_| {
            ApiError::new(
                ErrorCode::MalformedRequest,
                "If-Match must be the tenant's ETag, a quoted version number such as \"3\"",
            )
        })
    }
}

/// The ETag of a tenant version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}
