//! Tenantry's application layer: the use-cases (`Registry`) and the ports the store adapters
//! implement. It decides policy; adapters only persist.

pub mod access;
pub mod auth;
pub mod directory;
pub mod error;
pub mod ports;
pub mod registry;
pub mod snapshot;

pub use access::{Authority, PlatformScope, TenantScope};
pub use auth::Principal;
pub use directory::{Directory, IssuedKey};
pub use error::{AppError, StoreError};
pub use ports::{
    ApiKey, AuditEntry, AuditLog, AuditRecord, Clock, FlagRow, FlagStore, IdentityStore, KeyOwner, Page, PoolStats,
    Statistics, Store, SystemClock, TenantFilter, TenantStore, TierStore,
};
pub use registry::Registry;
