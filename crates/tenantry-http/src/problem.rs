//! Errors as `application/problem+json` (RFC 9457), each with a stable machine `code` from one
//! table ([`CODES`]): the HTTP status of every code is decided here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use tenantry_app::AppError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Every error code the API returns, with its HTTP status and title. Exhaustive: a test checks
/// that every `AppError` code and every code the HTTP layer itself produces is listed.
pub const CODES: &[(&str, u16, &str)] = &[
    ("malformed_request", 400, "The request could not be parsed"),
    ("unauthenticated", 401, "Authentication required"),
    ("forbidden", 403, "Not allowed"),
    ("route_not_found", 404, "No such route"),
    ("tenant_not_found", 404, "Tenant not found"),
    ("document_not_found", 404, "Document not found"),
    ("quota_exceeded", 403, "Quota exceeded"),
    ("rate_limited", 429, "Too many requests"),
    ("tier_not_found", 404, "Tier not found"),
    ("flag_not_found", 404, "Flag not found"),
    ("user_not_found", 404, "User not found"),
    ("member_not_found", 404, "Membership not found"),
    ("key_not_found", 404, "API key not found"),
    ("method_not_allowed", 405, "Method not allowed"),
    ("tenant_inactive", 423, "Tenant is not active"),
    ("already_exists", 409, "Already exists"),
    ("invalid_transition", 409, "Invalid lifecycle transition"),
    ("retention_active", 409, "Retention period still running"),
    ("version_conflict", 412, "Version conflict"),
    ("payload_too_large", 413, "Request body too large"),
    ("unsupported_media_type", 415, "Unsupported media type"),
    ("invalid_input", 422, "Invalid input"),
    ("internal", 500, "Internal error"),
    ("store_unavailable", 503, "Store unavailable"),
    ("embedding_unavailable", 503, "Embedding provider unavailable"),
    ("request_timeout", 503, "Request timed out"),
];

fn lookup(code: &str) -> (StatusCode, &'static str) {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, status, title)| (StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), *title))
        .unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))
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
    pub code: &'static str,
    pub detail: String,
    quota: Option<tenantry_domain::QuotaExceeded>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), quota: None, retry_after: None }
    }

    pub fn status(&self) -> StatusCode {
        lookup(self.code).0
    }

    pub fn problem(&self) -> Problem {
        let (status, title) = lookup(self.code);
        Problem {
            problem_type: format!("urn:tenantry:problem:{}", self.code),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
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
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "malformed_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "route_not_found",
        405 => "method_not_allowed",
        408 | 504 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_input",
        503 => "store_unavailable",
        _ => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_application_code_once() {
        for code in AppError::CODES {
            assert!(CODES.iter().any(|(c, _, _)| *c == code), "{code} has no HTTP status");
        }
        let mut codes: Vec<&str> = CODES.iter().map(|(c, _, _)| *c).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "a code is listed twice");
    }

    #[test]
    fn every_status_the_layer_maps_has_a_listed_code() {
        for status in 400..600u16 {
            let code = code_for_status(StatusCode::from_u16(status).unwrap());
            assert!(CODES.iter().any(|(c, _, _)| *c == code), "{status} -> {code}");
        }
        assert_eq!(ApiError::new("forbidden", "x").status(), StatusCode::FORBIDDEN);
        assert_eq!(ApiError::new("version_conflict", "x").status(), StatusCode::PRECONDITION_FAILED);
    }
}
