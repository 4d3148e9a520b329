//! Errors of the application layer: each a refusal a person can act on, or `Unexpected`.

use tenantry_domain::{FlagKey, KeyId, LifecycleError, TenantError, TenantId, TierName, UserId};

/// Every machine code Tenantry answers with — the application's refusals and the few the shells
/// produce themselves (a body that does not parse, a route that does not exist, a timeout). One
/// list: the HTTP layer maps each to one status by an exhaustive match, the CLI prints
/// [`ErrorCode::as_str`] in `--json` errors, the README's table lists them. A code that is not
/// here cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MalformedRequest,
    Unauthenticated,
    Forbidden,
    RouteNotFound,
    TenantNotFound,
    DocumentNotFound,
    TierNotFound,
    FlagNotFound,
    UserNotFound,
    MemberNotFound,
    InvitationNotFound,
    KeyNotFound,
    FixedCostNotFound,
    QuotaExceeded,
    BudgetExceeded,
    RateLimited,
    MethodNotAllowed,
    TenantInactive,
    AlreadyExists,
    InvalidTransition,
    RetentionActive,
    VersionConflict,
    ConcurrentUpdate,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidInput,
    Internal,
    StoreUnavailable,
    EmbeddingUnavailable,
    RequestTimeout,
    ProviderFailed,
    ProviderUnavailable,
    ProviderTimeout,
}

impl ErrorCode {
    /// Every code, in the order of the README's table.
    pub const ALL: [ErrorCode; 33] = [
        ErrorCode::MalformedRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::RouteNotFound,
        ErrorCode::TenantNotFound,
        ErrorCode::DocumentNotFound,
        ErrorCode::TierNotFound,
        ErrorCode::FlagNotFound,
        ErrorCode::UserNotFound,
        ErrorCode::MemberNotFound,
        ErrorCode::InvitationNotFound,
        ErrorCode::KeyNotFound,
        ErrorCode::FixedCostNotFound,
        ErrorCode::QuotaExceeded,
        ErrorCode::BudgetExceeded,
        ErrorCode::RateLimited,
        ErrorCode::MethodNotAllowed,
        ErrorCode::TenantInactive,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidTransition,
        ErrorCode::RetentionActive,
        ErrorCode::VersionConflict,
        ErrorCode::ConcurrentUpdate,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidInput,
        ErrorCode::Internal,
        ErrorCode::StoreUnavailable,
        ErrorCode::EmbeddingUnavailable,
        ErrorCode::RequestTimeout,
        ErrorCode::ProviderFailed,
        ErrorCode::ProviderUnavailable,
        ErrorCode::ProviderTimeout,
    ];

    /// The stable wire form (snake_case); never changes once released.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::TenantNotFound => "tenant_not_found",
            ErrorCode::DocumentNotFound => "document_not_found",
            ErrorCode::TierNotFound => "tier_not_found",
            ErrorCode::FlagNotFound => "flag_not_found",
            ErrorCode::UserNotFound => "user_not_found",
            ErrorCode::MemberNotFound => "member_not_found",
            ErrorCode::InvitationNotFound => "invitation_not_found",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::FixedCostNotFound => "fixed_cost_not_found",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::TenantInactive => "tenant_inactive",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::RetentionActive => "retention_active",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::ConcurrentUpdate => "concurrent_update",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Internal => "internal",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::EmbeddingUnavailable => "embedding_unavailable",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::ProviderFailed => "provider_failed",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderTimeout => "provider_timeout",
        }
    }

    /// The code with this wire form, if there is one.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a store found missing, named, so that the application answers with the entity without
/// translating `not found` at each call site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    Tenant(TenantId),
    User(UserId),
    Member {
        tenant: TenantId,
        user: UserId,
    },
    /// No open (unexpired) invitation of the user to the tenant.
    Invitation {
        tenant: TenantId,
        user: UserId,
    },
    Key(KeyId),
    Document(tenantry_domain::DocumentId),
    /// No value of the flag at the scope a removal named.
    FlagValue(FlagKey),
    /// No definition of the flag at all (it never had a value).
    FlagDefinition(FlagKey),
    /// The tenant has no placement on the index pool.
    Placement(TenantId),
    FixedCost(tenantry_domain::Label),
}

/// What a store adapter reports. Adapters map their own constraint names onto these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("version conflict: the stored version is {current}")]
    VersionConflict { current: i64 },
    #[error("not found: {0:?}")]
    NotFound(Missing),
    #[error("{0}")]
    ConstraintViolated(String),
    /// The caller may not make this change (the sentence says why), e.g. a platform-set value.
    #[error("{0}")]
    Refused(String),
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
    #[error("user {user} has no open invitation to tenant {tenant} (invitations expire after 7 days)")]
    InvitationNotFound { tenant: TenantId, user: UserId },
    #[error("API key {0} does not exist")]
    KeyNotFound(KeyId),
    #[error("document {0} does not exist")]
    DocumentNotFound(tenantry_domain::DocumentId),
    #[error("fixed cost {0} does not exist: list them with `tenantry cost fixed list`")]
    FixedCostNotFound(tenantry_domain::Label),
    #[error(transparent)]
    QuotaExceeded(tenantry_domain::QuotaExceeded),
    /// The tenant blocks on its budget and this request would pass it.
    #[error(
        "tenant {tenant} has spent {spent} of its {budget} {currency} budget this month (including requests in flight); \
         billable requests are refused until next month or a larger budget"
    )]
    BudgetExceeded { tenant: TenantId, spent: String, budget: String, currency: String },
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
    /// A change without a version kept losing to concurrent writers (see
    /// `registry::UNVERSIONED_ATTEMPTS`).
    #[error("tenant {0} kept changing under concurrent writers; try again")]
    ConcurrentUpdate(TenantId),
    #[error(transparent)]
    InvalidTransition(LifecycleError),
    #[error("{0}")]
    Invalid(String),
    #[error("the store is unavailable; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    #[error("the embedding provider is unavailable: {0:#}")]
    EmbeddingUnavailable(anyhow::Error),
    /// A configuration changed since the caller read it (answer configuration versions).
    #[error("the {scope} configuration is at version {current}, not {expected}: re-read it and retry")]
    ConfigConflict { scope: String, expected: u32, current: u32 },
    /// The language-model provider failed.
    #[error(transparent)]
    Provider(crate::generation::ProviderError),
    #[error("unexpected internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl AppError {
    /// A stable machine code for this error, used by the CLI's `--json` errors and the HTTP API.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::TenantNotFound(_) => ErrorCode::TenantNotFound,
            AppError::TierNotFound(_) => ErrorCode::TierNotFound,
            AppError::FlagNotFound(..) => ErrorCode::FlagNotFound,
            AppError::TenantInactive { .. } => ErrorCode::TenantInactive,
            AppError::UserNotFound(_) => ErrorCode::UserNotFound,
            AppError::DocumentNotFound(_) => ErrorCode::DocumentNotFound,
            AppError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            AppError::BudgetExceeded { .. } => ErrorCode::BudgetExceeded,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::MemberNotFound { .. } => ErrorCode::MemberNotFound,
            AppError::InvitationNotFound { .. } => ErrorCode::InvitationNotFound,
            AppError::KeyNotFound(_) => ErrorCode::KeyNotFound,
            AppError::FixedCostNotFound(_) => ErrorCode::FixedCostNotFound,
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            AppError::VersionConflict { .. } => ErrorCode::VersionConflict,
            AppError::ConcurrentUpdate(_) => ErrorCode::ConcurrentUpdate,
            AppError::InvalidTransition(LifecycleError::RetentionActive { .. }) => ErrorCode::RetentionActive,
            AppError::InvalidTransition(_) => ErrorCode::InvalidTransition,
            AppError::Invalid(_) => ErrorCode::InvalidInput,
            AppError::ConfigConflict { .. } => ErrorCode::VersionConflict,
            AppError::Provider(crate::generation::ProviderError::Failed { .. }) => ErrorCode::ProviderFailed,
            AppError::Provider(crate::generation::ProviderError::Unavailable { .. }) => ErrorCode::ProviderUnavailable,
            AppError::Provider(crate::generation::ProviderError::Timeout { .. }) => ErrorCode::ProviderTimeout,
            AppError::Unavailable(_) => ErrorCode::StoreUnavailable,
            AppError::EmbeddingUnavailable(_) => ErrorCode::EmbeddingUnavailable,
            AppError::Unexpected(_) => ErrorCode::Internal,
        }
    }
}

impl From<tenantry_domain::Invalid> for AppError {
    fn from(e: tenantry_domain::Invalid) -> Self {
        AppError::Invalid(e.reason().to_owned())
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
            StoreError::Refused(msg) => AppError::Forbidden(msg),
            StoreError::QuotaExceeded(q) => AppError::QuotaExceeded(q),
            StoreError::Unavailable(e) => AppError::Unavailable(e),
            StoreError::Unexpected(e) => AppError::Unexpected(e),
            StoreError::NotFound(missing) => match missing {
                Missing::Tenant(t) | Missing::Placement(t) => AppError::TenantNotFound(t),
                Missing::User(u) => AppError::UserNotFound(u),
                Missing::Member { tenant, user } => AppError::MemberNotFound { tenant, user },
                Missing::Invitation { tenant, user } => AppError::InvitationNotFound { tenant, user },
                Missing::Key(k) => AppError::KeyNotFound(k),
                Missing::Document(d) => AppError::DocumentNotFound(d),
                Missing::FixedCost(name) => AppError::FixedCostNotFound(name),
                Missing::FlagValue(k) => AppError::FlagNotFound(k, "at that scope"),
                Missing::FlagDefinition(k) => AppError::FlagNotFound(k, "at any level: define it with a value first"),
            },
            // callers translate this one with their context (the version the caller expected)
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
            AppError::InvitationNotFound { tenant: t.clone(), user: UserId::parse("u1").unwrap() },
            AppError::KeyNotFound(KeyId::parse("k1").unwrap()),
            AppError::FixedCostNotFound(tenantry_domain::Label::parse("lb").unwrap()),
            AppError::DocumentNotFound(tenantry_domain::DocumentId::from_random(1)),
            AppError::QuotaExceeded(tenantry_domain::QuotaExceeded {
                resource: tenantry_domain::QuotaResource::Documents,
                limit: 1,
                current: 1,
                requested: 1,
            }),
            AppError::RateLimited { message: "x".into(), retry_after_secs: 1 },
            AppError::BudgetExceeded {
                tenant: t.clone(),
                spent: "1".into(),
                budget: "1".into(),
                currency: "USD".into(),
            },
            AppError::Unauthenticated("x".into()),
            AppError::Forbidden("x".into()),
            AppError::AlreadyExists("x".into()),
            AppError::VersionConflict { tenant: t.clone(), expected: 1, current: 2 },
            AppError::ConcurrentUpdate(t),
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
            AppError::ConfigConflict { scope: "platform".into(), expected: 1, current: 2 },
            AppError::Provider(crate::generation::ProviderError::Failed { provider: "p".into(), detail: "x".into() }),
            AppError::Provider(crate::generation::ProviderError::Unavailable {
                provider: "p".into(),
                detail: "x".into(),
            }),
            AppError::Provider(crate::generation::ProviderError::Timeout { provider: "p".into(), secs: 1 }),
            AppError::Unexpected(anyhow::anyhow!("x")),
        ];
        // every application code is reachable from some error (the shells produce the rest)
        let seen: Vec<ErrorCode> = samples.iter().map(AppError::code).collect();
        let shells = [
            ErrorCode::MalformedRequest,
            ErrorCode::RouteNotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::RequestTimeout,
        ];
        for code in ErrorCode::ALL {
            assert!(
                seen.contains(&code) ^ shells.contains(&code),
                "{code}: produced by the app or by a shell, not both"
            );
        }
    }

    #[test]
    fn every_code_has_one_distinct_wire_form_that_parses_back() {
        let mut wire: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!(code.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
        }
        wire.sort_unstable();
        wire.dedup();
        assert_eq!(wire.len(), ErrorCode::ALL.len(), "a wire form is used twice");
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}
