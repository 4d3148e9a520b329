//! The hot-path snapshot of tenant configuration (record, limits, status, flags) and its
//! invalidation.
//!
//! Reads come from memory. Every write commits to the store first, then invalidates locally and
//! publishes a numbered [`Invalidation`] on the [`InvalidationBus`]; every replica drops what it
//! names. Messages carry a bus-wide sequence number: a replica that sees a jump (it missed
//! messages: a Redis restart, a network blip) drops everything. A message only ever removes
//! entries — the next read loads fresh rows — so a late message can never install older data.
//! TTLs are a safety net only. When the store is down, a read falls back to the last snapshot
//! (up to `stale_if_error`), marked stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use tenantry_domain::{FlagSet, Tenant, TenantId};

use crate::access::TenantScope;
use crate::error::{AppError, StoreError};
use crate::ports::Store;

/// What to drop: one tenant's snapshot, or every snapshot (global and tier flags, tiers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidationTarget {
    Tenant(TenantId),
    All,
}

/// One invalidation as it travels between replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// Bus-wide sequence number (1, 2, 3, ...), assigned by the bus at publication.
    pub seq: u64,
    pub target: InvalidationTarget,
}

impl Invalidation {
    /// Wire form: `<seq> tenant <id>` or `<seq> all`.
    pub fn encode(&self) -> String {
        match &self.target {
            InvalidationTarget::Tenant(t) => format!("{} tenant {t}", self.seq),
            InvalidationTarget::All => format!("{} all", self.seq),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let seq = parts.next()?.parse().ok()?;
        let target = match (parts.next()?, parts.next()) {
            ("all", None) => InvalidationTarget::All,
            ("tenant", Some(id)) => InvalidationTarget::Tenant(TenantId::parse(id).ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some(Invalidation { seq, target })
    }
}

/// Carries invalidations to every replica (Redis pub/sub, or in-process for the embedded store).
#[async_trait]
pub trait InvalidationBus: Send + Sync {
    /// Numbers and publishes `target`; returns the message as sent.
    async fn publish(&self, target: InvalidationTarget) -> Result<Invalidation, StoreError>;
}

/// Cache timing. Defaults: 60 s for the critical snapshot (status, tier, limits, flags), 30 min
/// of stale-if-error.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub stale_if_error: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(60), stale_if_error: Duration::from_secs(30 * 60) }
    }
}

/// A tenant's configuration as of `loaded`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub tenant: Tenant,
    pub flags: Arc<FlagSet>,
    loaded: Instant,
}

/// A read from the cache: the snapshot and whether it is stale (served because the store failed).
#[derive(Debug, Clone)]
pub struct Cached {
    pub snapshot: Arc<Snapshot>,
    pub stale: bool,
}

#[derive(Default)]
struct State {
    entries: HashMap<TenantId, Arc<Snapshot>>,
    /// Authenticated principals by token digest, with the key's expiry and when they were loaded.
    principals: HashMap<String, (crate::auth::Principal, Option<time::OffsetDateTime>, Instant)>,
    /// Highest sequence number applied, to detect missed messages.
    last_seq: Option<u64>,
}

/// The in-process snapshot cache. Cheap to clone.
#[derive(Clone)]
pub struct ConfigCache {
    store: Arc<dyn Store>,
    bus: Arc<dyn InvalidationBus>,
    config: CacheConfig,
    state: Arc<Mutex<State>>,
}

impl ConfigCache {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn InvalidationBus>, config: CacheConfig) -> Self {
        Self { store, bus, config, state: Arc::new(Mutex::new(State::default())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant's configuration: from memory when fresh, else loaded; if loading fails because
    /// the store is unavailable, the last snapshot (if younger than `stale_if_error`), marked stale.
    pub async fn get(&self, scope: &TenantScope) -> Result<Cached, AppError> {
        let cached = self.lock().entries.get(scope.tenant()).cloned();
        if let Some(s) = &cached
            && s.loaded.elapsed() < self.config.ttl
        {
            return Ok(Cached { snapshot: s.clone(), stale: false });
        }
        match self.load(scope).await {
            Ok(fresh) => Ok(Cached { snapshot: fresh, stale: false }),
            Err(AppError::Unavailable(e)) => match cached {
                Some(s) if s.loaded.elapsed() < self.config.stale_if_error => {
                    tracing::warn!(error = %e, tenant = %scope.tenant(), "store unavailable; serving the last snapshot");
                    Ok(Cached { snapshot: s, stale: true })
                }
                _ => Err(AppError::Unavailable(e)),
            },
            Err(other) => Err(other),
        }
    }

    async fn load(&self, scope: &TenantScope) -> Result<Arc<Snapshot>, AppError> {
        let tenant =
            self.store.get_tenant(scope).await?.ok_or_else(|| AppError::TenantNotFound(scope.tenant().clone()))?;
        let flags = self.store.flags_for_tenant(scope).await?;
        let snapshot = Arc::new(Snapshot { tenant, flags: Arc::new(flags), loaded: Instant::now() });
        self.lock().entries.insert(scope.tenant().clone(), snapshot.clone());
        Ok(snapshot)
    }

    /// After a committed write: drop locally, then tell every replica. A failed publication is
    /// logged, not returned — the write has committed; the TTL bounds how long other replicas lag.
    pub async fn invalidate(&self, target: InvalidationTarget) {
        self.drop_local(&target);
        match self.bus.publish(target).await {
            Ok(sent) => self.note_seq(sent.seq),
            Err(e) => {
                tracing::error!(error = %e, "could not publish a cache invalidation; other replicas lag until TTL")
            }
        }
    }

    /// Applies a message received from the bus (including our own).
    pub fn apply(&self, message: &Invalidation) {
        let missed = {
            let state = self.lock();
            state.last_seq.is_some_and(|last| message.seq > last + 1)
        };
        if missed {
            tracing::warn!(seq = message.seq, "missed cache invalidations; dropping every snapshot");
            self.drop_local(&InvalidationTarget::All);
        } else {
            self.drop_local(&message.target);
        }
        self.note_seq(message.seq);
    }

    /// The bus lost its connection (messages may have been missed): drop everything.
    pub fn resync(&self) {
        self.drop_local(&InvalidationTarget::All);
        self.lock().last_seq = None;
    }

    fn note_seq(&self, seq: u64) {
        let mut state = self.lock();
        state.last_seq = Some(state.last_seq.map_or(seq, |l| l.max(seq)));
    }

    fn drop_local(&self, target: &InvalidationTarget) {
        let mut state = self.lock();
        match target {
            InvalidationTarget::Tenant(t) => {
                state.entries.remove(t);
            }
            InvalidationTarget::All => {
                state.entries.clear();
                state.principals.clear();
            }
        }
    }

    /// A principal authenticated within the TTL for this token digest, unless its key has
    /// expired since (`now`). Keys, users and memberships changing invalidate `All`.
    pub fn principal(&self, digest: &str, now: time::OffsetDateTime) -> Option<crate::auth::Principal> {
        let state = self.lock();
        let (principal, expires_at, loaded) = state.principals.get(digest)?;
        (loaded.elapsed() < self.config.ttl && expires_at.is_none_or(|e| e > now)).then(|| principal.clone())
    }

    pub fn put_principal(
        &self,
        digest: String,
        principal: crate::auth::Principal,
        expires_at: Option<time::OffsetDateTime>,
    ) {
        let mut state = self.lock();
        if state.principals.len() > 100_000 {
            state.principals.clear();
        }
        state.principals.insert(digest, (principal, expires_at, Instant::now()));
    }

    /// Number of cached tenants (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The embedded bus: one process, so publication is delivery. Numbers messages itself.
pub struct LocalBus {
    seq: Mutex<u64>,
    sender: tokio::sync::broadcast::Sender<Invalidation>,
}

impl LocalBus {
    pub fn new() -> Self {
        let (sender, _) = tokio::sync::broadcast::channel(1024);
        Self { seq: Mutex::new(0), sender }
    }

    /// Every message published from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Invalidation> {
        self.sender.subscribe()
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl InvalidationBus for LocalBus {
    async fn publish(&self, target: InvalidationTarget) -> Result<Invalidation, StoreError> {
        let seq = {
            let mut s = self.seq.lock().unwrap_or_else(|p| p.into_inner());
            *s += 1;
            *s
        };
        let message = Invalidation { seq, target };
        let _ = self.sender.send(message.clone());
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_round_trips_and_refuses_garbage() {
        for m in [
            Invalidation { seq: 7, target: InvalidationTarget::All },
            Invalidation { seq: 8, target: InvalidationTarget::Tenant(TenantId::parse("finance").unwrap()) },
        ] {
            assert_eq!(Invalidation::decode(&m.encode()), Some(m));
        }
        for bad in ["", "x all", "1 tenant", "1 tenant Bad!", "1 all extra", "1 nothing"] {
            assert_eq!(Invalidation::decode(bad), None, "{bad:?}");
        }
    }
}
