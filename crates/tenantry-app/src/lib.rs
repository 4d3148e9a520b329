//! Tenantry's application layer: the use-cases (`Registry`) and the ports the store adapters
//! implement. It decides policy; adapters only persist.

pub mod access;
pub mod answers;
pub mod app;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod compare;
pub mod costs;
pub mod dataplane;
pub mod directory;
pub mod error;
pub mod feed;
pub mod generation;
pub mod metering;
pub mod operations;
pub mod ports;
pub mod readiness;
pub mod registry;
pub mod signing;
pub mod snapshot;

pub use access::{Authority, PlatformScope, TenantScope};
pub use answers::{Answer, Answers, AskRequest};
pub use app::{App, AppConfig};
pub use audit::{Auditor, VerifyReport};
pub use auth::Principal;
pub use budget::{BudgetGuard, BudgetHolds, HoldRequest, LocalBudgetHolds, Reservation};
pub use cache::{
    CacheConfig, ConfigCache, Invalidation, InvalidationBus, InvalidationTarget, LocalBus, SharedCache, SharedRead,
    Snapshot,
};
pub use costs::{BudgetAlert, BudgetAlerts, Costs, LogBudgetAlerts, TenantMonth};
pub use dataplane::{
    AlertSink, BlobStore, DataPlane, DataPlaneConfig, Embedded, Embedder, IngestTake, LocalEmbedder, LogAlerts,
    QueryAnswer, QueryLimiter, QueryMeter, Throttled,
};
pub use directory::{Directory, IssuedKey, MemberChange};
pub use error::{AppError, ErrorCode, Missing, StoreError};
pub use feed::{ReplicaReporter, Settled, StoreBus};
pub use generation::{Extractive, Generated, GenerationRequest, Passage, Provider, ProviderError, Providers};
pub use metering::{Metering, MeteringConfig};
pub use operations::{AuditOp, PlatformRead};
pub use ports::{
    ApiKey, AuditEntry, AuditFilter, AuditLog, AuditRecord, ChainSeal, ChangeFeed, Checkpoint, ChunkHit, Clock,
    ConfigStore, DocumentStore, DocumentWrite, EntrySigner, FlagRow, FlagStore, IdentityStore, IndexUsage, KeyOwner,
    NewConfigVersion, Page, PoolStats, ReplicaRow, Statistics, Store, StoredChunk, StoredDocument, SystemClock,
    TenantAuditEntry, TenantFilter, TenantPlacement, TenantStore, TierStore,
};
pub use readiness::Readiness;
pub use registry::{Registry, RuntimeEvaluation};
pub use signing::{AuditKey, TrustedKeys};
