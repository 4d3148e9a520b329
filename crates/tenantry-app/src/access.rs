//! Access scopes: the only way to reach tenant data. A `TenantScope` names exactly one tenant and
//! the actor acting in it; a `PlatformScope` is the explicit, separately named path for
//! platform-wide operations (create/list tenants, statistics, flags, tiers). Both carry their
//! actor, so every write is attributed. A store cannot build either.

use tenantry_domain::{Actor, ActorKind, TenantId};

/// Permission to act on one tenant's data, for one actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
    actor: Actor,
}

impl TenantScope {
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// Permission for platform-wide operations. Minted only by [`PlatformScope::operator`] (a person
/// holding the store's credentials at the CLI): grep for it to review every path with platform
/// power. Authenticated platform-admin keys will be the second minting path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformScope {
    actor: Actor,
}

impl PlatformScope {
    /// The CLI operator: whoever can run `tenantry` against the store already has its credentials,
    /// so they act with platform scope, attributed to their OS user name.
    pub fn operator(name: impl Into<String>) -> Self {
        Self { actor: Actor::new(ActorKind::Operator, name) }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// A platform principal may act inside any tenant; the resulting scope keeps its actor.
    pub fn act_in(&self, tenant: TenantId) -> TenantScope {
        TenantScope { tenant, actor: self.actor.clone() }
    }
}
