//! The composition root: the one place where the application's services are wired together.
//! `tenantry serve`, every CLI command, the tests and the benches build their services here, so
//! they all run the same wiring: one snapshot cache, attached to the invalidation bus, shared by
//! the registry, the directory and the data plane; the data plane given to the registry (tenants
//! are placed as they register); the query meter given to the data plane.

use std::sync::Arc;

use crate::access::PlatformScope;
use crate::answers::Answers;
use crate::audit::Auditor;
use crate::budget::{BudgetGuard, BudgetHolds, LocalBudgetHolds};
use crate::cache::{CacheConfig, ConfigCache, InvalidationBus, LocalBus, SharedCache};
use crate::costs::{BudgetAlerts, Costs, LogBudgetAlerts};
use crate::dataplane::{
    AlertSink, BlobStore, DataPlane, DataPlaneConfig, Embedder, LogAlerts, QueryLimiter, QueryMeter,
};
use crate::directory::Directory;
use crate::error::StoreError;
use crate::feed::{Settled, settled};
use crate::generation::Providers;
use crate::metering::{Metering, MeteringConfig};
use crate::ports::{Clock, Store};
use crate::readiness::Readiness;
use crate::registry::Registry;
use crate::signing::{AuditKey, TrustedKeys};

/// Everything the services are built from. The bus is required: a replica that does not hear
/// invalidations would serve stale snapshots; a single process uses `LocalBus`.
pub struct AppConfig {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub bus: Arc<dyn InvalidationBus>,
    /// The cache every replica shares (Redis), if any, between each replica's memory and the store.
    pub shared_cache: Option<Arc<dyn SharedCache>>,
    pub cache: CacheConfig,
    pub embedder: Arc<dyn Embedder>,
    pub blobs: Arc<dyn BlobStore>,
    pub alerts: Arc<dyn AlertSink>,
    pub data: DataPlaneConfig,
    /// Counts queries against tenants' limits; `None`: in this process (`QueryLimiter`).
    pub meter: Option<Arc<dyn QueryMeter>>,
    /// Signs checkpoints (entries are signed by the store's signer); `None`: verify only.
    pub audit_key: Option<Arc<AuditKey>>,
    /// The keys whose signatures verification accepts.
    pub trusted: TrustedKeys,
    /// How usage events are batched into the ledger.
    pub metering: MeteringConfig,
    /// Where budget alerts go.
    pub budget_alerts: Arc<dyn BudgetAlerts>,
    /// Where budget reservations are counted; `None`: in this process (`LocalBudgetHolds`).
    pub budget_holds: Option<Arc<dyn BudgetHolds>>,
    /// The language-model providers answers may use (`local`, the extractive answerer, always).
    pub providers: Providers,
}

impl AppConfig {
    /// One process: an in-process bus, default cache settings, alerts to the log, default
    /// chunking and capacity, query limits counted in-process, no signing key. Override fields
    /// with struct update syntax.
    pub fn local(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        embedder: Arc<dyn Embedder>,
        blobs: Arc<dyn BlobStore>,
    ) -> Self {
        Self {
            store,
            clock,
            bus: Arc::new(LocalBus::new()),
            shared_cache: None,
            cache: CacheConfig::default(),
            embedder,
            blobs,
            alerts: Arc::new(LogAlerts::default()),
            data: DataPlaneConfig::default(),
            meter: None,
            audit_key: None,
            trusted: TrustedKeys::default(),
            metering: MeteringConfig::default(),
            budget_alerts: Arc::new(LogBudgetAlerts),
            budget_holds: None,
            providers: Providers::default(),
        }
    }
}

/// The wired services. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub cache: ConfigCache,
    pub registry: Registry,
    pub directory: Directory,
    pub data: DataPlane,
    pub auditor: Auditor,
    pub metering: Metering,
    pub costs: Costs,
    pub readiness: Readiness,
    pub answers: Answers,
    bus: Arc<dyn InvalidationBus>,
    audit_key: Option<Arc<AuditKey>>,
}

impl App {
    /// Wires the services and attaches the cache to the bus (returns once the subscription is
    /// live, so no invalidation published after `build` is missed).
    pub async fn build(config: AppConfig) -> anyhow::Result<App> {
        let AppConfig {
            store,
            clock,
            bus,
            shared_cache,
            cache,
            embedder,
            blobs,
            alerts,
            data,
            meter,
            audit_key,
            trusted,
            metering,
            budget_alerts,
            budget_holds,
            providers,
        } = config;
        let mut snapshot_cache = ConfigCache::new(store.clone(), bus.clone(), cache);
        if let Some(shared) = shared_cache {
            snapshot_cache = snapshot_cache.with_shared(shared);
        }
        bus.deliver_to(snapshot_cache.clone()).await?;
        let meter = meter.unwrap_or_else(|| Arc::new(QueryLimiter::default()));
        let metering = Metering::start(store.clone(), metering);
        let data = DataPlane::new(store.clone(), clock.clone(), snapshot_cache.clone(), embedder, blobs, alerts, data)
            .with_meter(meter)
            .with_metering(metering.clone())
            .with_budget(BudgetGuard::new(
                store.clone(),
                clock.clone(),
                budget_holds.unwrap_or_else(|| Arc::new(LocalBudgetHolds::default())),
                crate::budget::DEFAULT_REFRESH,
            ));
        let costs = Costs::new(store.clone(), clock.clone(), budget_alerts);
        let readiness = Readiness::new(store.clone(), clock.clone(), data.clone(), costs.clone());
        let registry =
            Registry::new(store.clone(), clock.clone(), snapshot_cache.clone()).with_data_plane(data.clone());
        let answers = Answers::new(
            store.clone(),
            clock.clone(),
            snapshot_cache.clone(),
            data.clone(),
            providers,
            metering.clone(),
        );
        let directory = Directory::new(store.clone(), clock.clone(), snapshot_cache.clone());
        let auditor = Auditor::new(store.clone(), clock.clone(), audit_key.clone(), trusted);
        Ok(App {
            store,
            clock,
            cache: snapshot_cache,
            registry,
            directory,
            data,
            auditor,
            metering,
            costs,
            readiness,
            answers,
            bus,
            audit_key,
        })
    }

    /// The platform operator, attributed to `name`: whoever built this root over the store holds
    /// its credentials (the CLI, a test, a bench), so it acts with platform scope. The HTTP shell
    /// is given the services, not the `App`, so requests cannot mint this; see `access.rs`.
    pub fn operator(&self, name: impl Into<String>) -> PlatformScope {
        PlatformScope::operator(name)
    }

    /// The bus this process publishes invalidations on.
    pub fn bus(&self) -> &Arc<dyn InvalidationBus> {
        &self.bus
    }

    /// Waits (at most `timeout`) until every running server on this process's bus has applied
    /// the last invalidation this process published, and says which did and which did not. A
    /// process that changed nothing returns at once.
    pub async fn settle(&self, timeout: std::time::Duration) -> Result<Settled, StoreError> {
        let published = self.bus.last_published();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if published == 0 {
                return Ok(Settled::default());
            }
            let replicas = self.store.replicas().await?;
            let report = settled(&replicas, &self.bus.name(), published, self.clock.now());
            if report.lagging.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(report);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// An auditor of the same store that accepts signatures by `trusted` (an `audit verify` with
    /// extra public keys, e.g. after a key rotation).
    pub fn auditor_trusting(&self, trusted: TrustedKeys) -> Auditor {
        Auditor::new(self.store.clone(), self.clock.clone(), self.audit_key.clone(), trusted)
    }
}
