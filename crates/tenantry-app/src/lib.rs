//! Tenantry's application layer: the use-cases (`Registry`) and the ports the store adapters
//! implement. It decides policy; adapters only persist.

pub mod access;
pub mod error;
pub mod ports;
pub mod registry;
pub mod snapshot;

pub use access::{PlatformScope, TenantScope};
pub use error::{AppError, StoreError};
pub use ports::{
    AuditEntry, AuditLog, AuditRecord, Clock, FlagRow, FlagStore, Page, Statistics, Store, SystemClock, TenantFilter,
    TenantStore, TierStore,
};
pub use registry::Registry;
