//! Tenantry's domain core: the rules of multi-tenancy as pure functions over plain data.
//!
//! Nothing here does IO, reads the clock or draws randomness: time comes in as an argument
//! (`now: OffsetDateTime`), so every rule is deterministic and testable by table and by property.

pub mod actor;
pub mod audit;
pub mod chunking;
pub mod corpus;
pub mod cost;
pub mod documents;
pub mod embedding;
pub mod flags;
pub mod health;
pub mod identity;
pub mod ids;
pub mod invalid;
pub mod lifecycle;
pub mod limits;
pub mod money;
pub mod placement;
pub mod pricing;
pub mod prompt;
pub mod rag;
pub mod readiness;
pub mod search;
pub mod tenant;
pub mod tier;
pub mod timestamp;

pub use actor::{Actor, ActorKind};
pub use documents::{
    DataAccess, DataError, DataUsage, DocumentId, IngestQuota, Metadata, NewDocument, QueryInput, QuerySpec,
    QuotaExceeded, QuotaResource,
};
pub use flags::{Evaluation, FlagDefinition, FlagKind, FlagLevel, FlagMeta, FlagRule, FlagScope, FlagSet, FlagValue};
pub use health::{HealthClass, HealthReport, HealthSignals};
pub use identity::{Invitation, Membership, Permission, Role, User};
pub use ids::{FlagKey, IdError, IndexName, KeyId, Label, TenantId, TierName, UserId};
pub use invalid::Invalid;
pub use lifecycle::{LifecycleError, TenantStatus};
pub use limits::{LimitField, LimitKind, LimitOverrides, LimitValue, Limits};
pub use money::{BudgetAction, Currency, Money};
pub use placement::{CapacityAlert, CapacityPolicy, IndexKind, PhysicalIndex, Placement, PlacementPlan};
pub use search::{SearchInputs, SearchPlan, base_ef_search, plan_search};
pub use tenant::{NewTenant, Tenant, TenantError, TenantPatch};
pub use tier::{IsolationMode, Tier, TierError};
