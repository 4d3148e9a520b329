//! Access scopes: the only way to reach tenant data. A `TenantScope` names exactly one tenant, the
//! actor acting in it and the authority it acts with; a `PlatformScope` is the explicit, separately
//! named path for platform-wide operations (create/list tenants, statistics, flags, tiers, users,
//! keys). Both carry their actor, so every call is attributed. A store cannot build either.
//!
//! Minting paths (grep for them to review every path with power). Every constructor is
//! crate-private; outside this crate a scope comes only from:
//! - [`crate::App::operator`]: whoever built the composition root over a store (the CLI, tests,
//!   benches) holds that store's credentials, so it may act as the platform operator. The HTTP
//!   shell is given the services, never the `App`, so no request handler can reach this path;
//! - [`crate::auth::Principal::platform`] / [`crate::auth::Principal::tenant`]: an authenticated API
//!   key, as a platform administrator or as a user with a membership in the tenant;
//! - `PlatformScope::system` (crate-private): Tenantry's own lookups, e.g. authenticating a key.
//!
//! ```compile_fail,E0624
//! // outside the application crate a platform scope cannot be made from a name alone
//! let scope = tenantry_app::PlatformScope::operator("mallory");
//! ```

use tenantry_domain::{Actor, ActorKind, Permission, Role, TenantId};

use crate::error::AppError;

/// With what authority a scope acts inside its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A platform principal (operator, platform admin, system): every tenant permission, plus the
    /// platform-only operations on the tenant (lifecycle, tier, limits, billing).
    Platform,
    /// A member of the tenant with this role.
    Member(Role),
}

/// Permission to act on one tenant's data, for one actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
    actor: Actor,
    authority: Authority,
    request_id: Option<String>,
}

impl TenantScope {
    pub(crate) fn member(tenant: TenantId, actor: Actor, role: Role, request_id: Option<String>) -> Self {
        Self { tenant, actor, authority: Authority::Member(role), request_id }
    }

    /// The request this scope serves (recorded in audit entries).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
    pub fn authority(&self) -> Authority {
        self.authority
    }

    /// Refuses unless this scope's authority includes `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        match self.authority {
            Authority::Platform => Ok(()),
            Authority::Member(role) if role.allows(permission) => Ok(()),
            Authority::Member(role) => Err(AppError::Forbidden(format!(
                "your role {role} in tenant {} does not allow {}; ask a tenant admin",
                self.tenant,
                permission.as_str()
            ))),
        }
    }

    /// Refuses unless this scope acts with platform authority; `what` names the operation.
    pub fn require_platform(&self, what: &str) -> Result<(), AppError> {
        match self.authority {
            Authority::Platform => Ok(()),
            Authority::Member(_) => Err(AppError::Forbidden(format!("{what} is reserved to platform administrators"))),
        }
    }
}

/// Permission for platform-wide operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformScope {
    actor: Actor,
    request_id: Option<String>,
}

impl PlatformScope {
    /// The operator of a composition root (minted by [`crate::App::operator`]).
    pub(crate) fn operator(name: impl Into<String>) -> Self {
        Self { actor: Actor::new(ActorKind::Operator, name), request_id: None }
    }

    /// An authenticated platform administrator (minted by `auth::Principal::platform`).
    pub(crate) fn platform_admin(id: &str, request_id: Option<String>) -> Self {
        Self { actor: Actor::new(ActorKind::PlatformAdmin, id), request_id }
    }

    /// Tenantry itself, for lookups no principal asked for (authenticating a key).
    pub(crate) fn system(name: &str) -> Self {
        Self { actor: Actor::new(ActorKind::System, name), request_id: None }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The request this scope serves (recorded in audit entries).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// A platform principal may act inside any tenant; the resulting scope keeps its actor.
    pub fn act_in(&self, tenant: TenantId) -> TenantScope {
        TenantScope {
            tenant,
            actor: self.actor.clone(),
            authority: Authority::Platform,
            request_id: self.request_id.clone(),
        }
    }
}
