//! Errors as `application/problem+json` (RFC 9457), each with a stable machine `code`
//! ([`ErrorCode`]): the HTTP status of every code is decided here ([`describe`]) and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use tenantry_app::{AppError, ErrorCode};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The HTTP status and title of every code: exhaustive, so a new code does not compile until it
/// has both.
pub fn describe(code: ErrorCode) -> (StatusCode, &'static str) {
    use ErrorCode as C;
    match code {
        C::MalformedRequest => (StatusCode::BAD_REQUEST, "The request could not be parsed"),
        C::Unauthenticated => (StatusCode::UNAUTHORIZED, "Authentication required"),
        C::Forbidden => (StatusCode::FORBIDDEN, "Not allowed"),
        C::RouteNotFound => (StatusCode::NOT_FOUND, "No such route"),
        C::TenantNotFound => (StatusCode::NOT_FOUND, "Tenant not found"),
        C::DocumentNotFound => (StatusCode::NOT_FOUND, "Document not found"),
        C::QuotaExceeded => (StatusCode::FORBIDDEN, "Quota exceeded"),
        C::BudgetExceeded => (StatusCode::PAYMENT_REQUIRED, "Budget spent"),
        C::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        C::TierNotFound => (StatusCode::NOT_FOUND, "Tier not found"),
        C::FlagNotFound => (StatusCode::NOT_FOUND, "Flag not found"),
        C::UserNotFound => (StatusCode::NOT_FOUND, "User not found"),
        C::MemberNotFound => (StatusCode::NOT_FOUND, "Membership not found"),
        C::InvitationNotFound => (StatusCode::NOT_FOUND, "Invitation not found"),
        C::KeyNotFound => (StatusCode::NOT_FOUND, "API key not found"),
        C::FixedCostNotFound => (StatusCode::NOT_FOUND, "Fixed cost not found"),
        C::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        C::TenantInactive => (StatusCode::LOCKED, "Tenant is not active"),
        C::AlreadyExists => (StatusCode::CONFLICT, "Already exists"),
        C::InvalidTransition => (StatusCode::CONFLICT, "Invalid lifecycle transition"),
        C::RetentionActive => (StatusCode::CONFLICT, "Retention period still running"),
        C::VersionConflict => (StatusCode::PRECONDITION_FAILED, "Version conflict"),
        C::ConcurrentUpdate => (StatusCode::CONFLICT, "Concurrent update"),
        C::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
        C::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
        C::InvalidInput => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid input"),
        C::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
        C::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "Store unavailable"),
        C::EmbeddingUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "Embedding provider unavailable"),
        C::RequestTimeout => (StatusCode::SERVICE_UNAVAILABLE, "Request timed out"),
        C::ProviderFailed => (StatusCode::BAD_GATEWAY, "Language-model provider failed"),
        C::ProviderUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "Language-model provider unavailable"),
        C::ProviderTimeout => (StatusCode::GATEWAY_TIMEOUT, "Language-model provider timed out"),
    }
}

/// The problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:tenantry:problem:<code>`
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// A sentence a person can act on.
    pub detail: String,
    /// Stable machine code (see the table in the README).
    pub code: String,
    /// `quota_exceeded`: which limit (`documents`, `storage_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `quota_exceeded`: the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// `quota_exceeded`: current usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    /// `quota_exceeded`: what the request would add.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<i64>,
    /// `rate_limited`: seconds to wait (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// An error response. Build one from an [`AppError`] or with [`ApiError::new`].
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    quota: Option<tenantry_domain::QuotaExceeded>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), quota: None, retry_after: None }
    }

    pub fn status(&self) -> StatusCode {
        describe(self.code).0
    }

    pub fn problem(&self) -> Problem {
        let (status, title) = describe(self.code);
        Problem {
            problem_type: format!("urn:tenantry:problem:{}", self.code),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
            resource: self.quota.map(|q| q.resource.as_str().to_owned()),
            limit: self.quota.map(|q| q.limit),
            current: self.quota.map(|q| q.current),
            requested: self.quota.map(|q| q.requested),
            retry_after_seconds: self.retry_after,
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match &e {
            AppError::Unexpected(source) => tracing::error!(error = ?source, "unexpected error"),
            AppError::Unavailable(source) => tracing::warn!(error = ?source, "store unavailable"),
            AppError::EmbeddingUnavailable(source) => tracing::warn!(error = ?source, "embedding provider unavailable"),
            AppError::Provider(source) => tracing::warn!(error = %source, "language-model provider failed"),
            _ => {}
        }
        let mut error = ApiError::new(e.code(), e.to_string());
        match e {
            AppError::QuotaExceeded(q) => error.quota = Some(q),
            AppError::RateLimited { retry_after_secs, .. } => error.retry_after = Some(retry_after_secs),
            _ => {}
        }
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = self.status();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tenantry\""));
        }
        response
    }
}

/// The code the HTTP layer uses for a bare status produced below the handlers (routing, limits).
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 => ErrorCode::MalformedRequest,
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::RouteNotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 | 504 => ErrorCode::RequestTimeout,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::InvalidInput,
        503 => ErrorCode::StoreUnavailable,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_status_becomes_the_code_of_the_same_status() {
        let cases = [
            (400, 400),
            (401, 401),
            (403, 403),
            (404, 404),
            (405, 405),
            (408, 503),
            (413, 413),
            (415, 415),
            (418, 500),
            (422, 422),
            (500, 500),
            (503, 503),
            (504, 503),
        ];
        for (status, expected) in cases {
            let code = code_for_status(StatusCode::from_u16(status).unwrap());
            assert_eq!(describe(code).0.as_u16(), expected, "{status} -> {code}");
        }
        assert_eq!(ApiError::new(ErrorCode::Forbidden, "x").status(), StatusCode::FORBIDDEN);
        assert_eq!(ApiError::new(ErrorCode::VersionConflict, "x").status(), StatusCode::PRECONDITION_FAILED);
    }
}
