//! Errors of the application layer: each a refusal a person can act on, or `Unexpected`.

use tenantry_domain::{FlagKey, KeyId, LifecycleError, TenantError, TenantId, TierName, UserId};

/// What a store adapter reports. Adapters map their own constraint names onto these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("version conflict: the stored version is {current}")]
    VersionConflict { current: i64 },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    ConstraintViolated(String),
    #[error(transparent)]
    QuotaExceeded(tenantry_domain::QuotaExceeded),
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("unexpected store failure")]
    Unexpected(#[source] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("tenant {0} does not exist")]
    TenantNotFound(TenantId),
    #[error("tier {0} does not exist: list tiers with `tenantry tier list`")]
    TierNotFound(TierName),
    /// The flag, and where it was looked for ("at that scope", "at any level").
    #[error("flag {0} has no value {1}")]
    FlagNotFound(FlagKey, &'static str),
    #[error("tenant {tenant} is {status}: it is refused until it is active again")]
    TenantInactive { tenant: TenantId, status: tenantry_domain::TenantStatus },
    #[error("user {0} does not exist")]
    UserNotFound(UserId),
    #[error("user {user} is not a member of tenant {tenant}")]
    MemberNotFound { tenant: TenantId, user: UserId },
    #[error("API key {0} does not exist")]
    KeyNotFound(KeyId),
    #[error("document {0} does not exist")]
    DocumentNotFound(tenantry_domain::DocumentId),
    #[error(transparent)]
    QuotaExceeded(tenantry_domain::QuotaExceeded),
    /// Too many requests: try again after `retry_after_secs`.
    #[error("{message}")]
    RateLimited { message: String, retry_after_secs: u64 },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error(
        "tenant {tenant} was changed concurrently: you expected version {expected}, it is at {current}; re-read it and retry"
    )]
    VersionConflict { tenant: TenantId, expected: i64, current: i64 },
    #[error(transparent)]
    InvalidTransition(LifecycleError),
    #[error("{0}")]
    Invalid(String),
    #[error("the store is unavailable; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    #[error("the embedding provider is unavailable: {0:#}")]
    EmbeddingUnavailable(anyhow::Error),
    #[error("unexpected internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl AppError {
    /// Every code [`AppError::code`] can return (the HTTP layer maps each to a status).
    pub const CODES: [&'static str; 20] = [
        "tenant_not_found",
        "document_not_found",
        "quota_exceeded",
        "rate_limited",
        "tenant_inactive",
        "tier_not_found",
        "flag_not_found",
        "user_not_found",
        "member_not_found",
        "key_not_found",
        "unauthenticated",
        "forbidden",
        "already_exists",
        "version_conflict",
        "retention_active",
        "invalid_transition",
        "invalid_input",
        "store_unavailable",
        "embedding_unavailable",
        "internal",
    ];

    /// A stable machine code for this error, used by the CLI's `--json` errors and the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::TenantNotFound(_) => "tenant_not_found",
            AppError::TierNotFound(_) => "tier_not_found",
            AppError::FlagNotFound(..) => "flag_not_found",
            AppError::TenantInactive { .. } => "tenant_inactive",
            AppError::UserNotFound(_) => "user_not_found",
            AppError::DocumentNotFound(_) => "document_not_found",
            AppError::QuotaExceeded(_) => "quota_exceeded",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::MemberNotFound { .. } => "member_not_found",
            AppError::KeyNotFound(_) => "key_not_found",
            AppError::Unauthenticated(_) => "unauthenticated",
            AppError::Forbidden(_) => "forbidden",
            AppError::AlreadyExists(_) => "already_exists",
            AppError::VersionConflict { .. } => "version_conflict",
            AppError::InvalidTransition(LifecycleError::RetentionActive { .. }) => "retention_active",
            AppError::InvalidTransition(_) => "invalid_transition",
            AppError::Invalid(_) => "invalid_input",
            AppError::Unavailable(_) => "store_unavailable",
            AppError::EmbeddingUnavailable(_) => "embedding_unavailable",
            AppError::Unexpected(_) => "internal",
        }
    }
}

impl From<TenantError> for AppError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::Lifecycle(LifecycleError::UnknownStatus(s)) => {
                AppError::Invalid(LifecycleError::UnknownStatus(s).to_string())
            }
            TenantError::Lifecycle(l) => AppError::InvalidTransition(l),
            other => AppError::Invalid(other.to_string()),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(what) => AppError::AlreadyExists(what),
            StoreError::ConstraintViolated(msg) => AppError::Invalid(msg),
            StoreError::QuotaExceeded(q) => AppError::QuotaExceeded(q),
            StoreError::Unavailable(e) => AppError::Unavailable(e),
            StoreError::Unexpected(e) => AppError::Unexpected(e),
            // callers translate these two with their context; reaching here is a bug in a caller
            StoreError::NotFound => AppError::Unexpected(anyhow::anyhow!("store reported not found without context")),
            StoreError::VersionConflict { current } => {
                AppError::Unexpected(anyhow::anyhow!("version conflict (current {current}) without context"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_domain::TenantStatus;

    #[test]
    fn every_variant_has_a_listed_code() {
        let t = TenantId::parse("t1").unwrap();
        let samples = [
            AppError::TenantNotFound(t.clone()),
            AppError::TierNotFound(TierName::parse("x").unwrap()),
            AppError::FlagNotFound(FlagKey::parse("f").unwrap(), "at that scope"),
            AppError::UserNotFound(UserId::parse("u1").unwrap()),
            AppError::TenantInactive { tenant: t.clone(), status: TenantStatus::Suspended },
            AppError::MemberNotFound { tenant: t.clone(), user: UserId::parse("u1").unwrap() },
            AppError::KeyNotFound(KeyId::parse("k1").unwrap()),
            AppError::DocumentNotFound(tenantry_domain::DocumentId::from_random(1)),
            AppError::QuotaExceeded(tenantry_domain::QuotaExceeded {
                resource: tenantry_domain::QuotaResource::Documents,
                limit: 1,
                current: 1,
                requested: 1,
            }),
            AppError::RateLimited { message: "x".into(), retry_after_secs: 1 },
            AppError::Unauthenticated("x".into()),
            AppError::Forbidden("x".into()),
            AppError::AlreadyExists("x".into()),
            AppError::VersionConflict { tenant: t, expected: 1, current: 2 },
            AppError::InvalidTransition(LifecycleError::RetentionActive {
                retention_until: time::OffsetDateTime::UNIX_EPOCH,
            }),
            AppError::InvalidTransition(LifecycleError::InvalidTransition {
                from: TenantStatus::Active,
                to: TenantStatus::Deleted,
            }),
            AppError::Invalid("x".into()),
            AppError::Unavailable(anyhow::anyhow!("x")),
            AppError::EmbeddingUnavailable(anyhow::anyhow!("x")),
            AppError::Unexpected(anyhow::anyhow!("x")),
        ];
        let mut seen: Vec<&str> = samples.iter().map(AppError::code).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut listed = AppError::CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(seen, listed);
    }
}
