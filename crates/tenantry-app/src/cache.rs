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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
        format!("{} {}", self.seq, self.target.encode())
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (seq, target) = text.split_once(' ')?;
        Some(Invalidation { seq: seq.parse().ok()?, target: InvalidationTarget::decode(target)? })
    }
}

impl InvalidationTarget {
    /// Wire form: `tenant <id>` or `all`.
    pub fn encode(&self) -> String {
        match self {
            InvalidationTarget::Tenant(t) => format!("tenant {t}"),
            InvalidationTarget::All => "all".to_owned(),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let target = match (parts.next()?, parts.next()) {
            ("all", None) => InvalidationTarget::All,
            ("tenant", Some(id)) => InvalidationTarget::Tenant(TenantId::parse(id).ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some(target)
    }
}

/// Carries invalidations to every replica (Redis pub/sub, or in-process for the embedded store).
#[async_trait]
pub trait InvalidationBus: Send + Sync {
    /// Numbers and publishes `target`; returns the message as sent. A bus that also backs a
    /// [`SharedCache`] removes what `target` names from it in the same atomic step.
    async fn publish(&self, target: InvalidationTarget) -> Result<Invalidation, StoreError>;

    /// Delivers every message from now on (this replica's own included) to `cache` — `apply`,
    /// or `resync` when messages may have been lost — until the process ends. Returns once the
    /// subscription is live, so no write after it is missed.
    async fn deliver_to(&self, cache: ConfigCache) -> anyhow::Result<()>;

    /// Which bus this is, for replica reports: sequence numbers compare only within one name.
    /// Processes on one name hear each other; `local` is one process's own.
    fn name(&self) -> String;

    /// The number of the last message this process published (0: none).
    fn last_published(&self) -> u64;
}

/// What a [`SharedCache`] read returns: the stored bytes (if any) and the bus sequence number
/// current at the moment of the read, read atomically with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRead {
    pub seq: u64,
    pub value: Option<Vec<u8>>,
}

/// A cache shared by every replica (Redis), between the in-process snapshot and the store: a
/// replica that misses (cold start, after an `All` invalidation, after its TTL) asks here before
/// the database. Entries are removed by the bus's `publish`, atomically with numbering.
#[async_trait]
pub trait SharedCache: Send + Sync {
    async fn get(&self, tenant: &TenantId) -> Result<SharedRead, StoreError>;

    /// Stores `value` unless an invalidation was published after `seen_seq` (the read that
    /// preceded the database load): a load that raced a write never parks old data here.
    /// Returns whether it stored.
    async fn put(&self, tenant: &TenantId, value: &[u8], seen_seq: u64, ttl: Duration) -> Result<bool, StoreError>;
}

/// Cache timing, by class of data. TTLs are a safety net only; invalidation is what keeps data
/// current. Defaults: critical 60 s (tenant status, tier, limits, and authenticated principals),
/// standard 300 s (flags), 30 min of stale-if-error.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub critical_ttl: Duration,
    pub standard_ttl: Duration,
    pub stale_if_error: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            critical_ttl: Duration::from_secs(60),
            standard_ttl: Duration::from_secs(300),
            stale_if_error: Duration::from_secs(30 * 60),
        }
    }
}

impl CacheConfig {
    /// Every class with the same TTL (tests).
    pub fn uniform(ttl: Duration, stale_if_error: Duration) -> Self {
        Self { critical_ttl: ttl, standard_ttl: ttl, stale_if_error }
    }
}

/// A tenant's configuration: the record (critical class) and the flags (standard class), each
/// with the wall-clock time it was read from the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub tenant: Tenant,
    pub flags: Arc<FlagSet>,
    tenant_loaded: SystemTime,
    flags_loaded: SystemTime,
}

impl Snapshot {
    fn tenant_age(&self) -> Duration {
        age(self.tenant_loaded)
    }

    fn flags_age(&self) -> Duration {
        age(self.flags_loaded)
    }

    fn oldest(&self) -> Duration {
        self.tenant_age().max(self.flags_age())
    }

    /// The shared-cache form: JSON of the record, the flags and both load times.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let wire = Wire {
            format: WIRE_FORMAT,
            tenant: self.tenant.clone(),
            tenant_loaded_ms: unix_ms(self.tenant_loaded),
            flags: (*self.flags).clone(),
            flags_loaded_ms: unix_ms(self.flags_loaded),
        };
        serde_json::to_vec(&wire).map_err(|e| e.to_string())
    }

    /// Reads the shared-cache form for `expected`; anything else (another format, another
    /// tenant's record, a value breaking an invariant) is refused.
    pub fn decode(bytes: &[u8], expected: &TenantId) -> Result<Self, String> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if wire.format != WIRE_FORMAT {
            return Err(format!("unknown snapshot format {}", wire.format));
        }
        if &wire.tenant.id != expected {
            return Err(format!("the entry for {expected} holds {}", wire.tenant.id));
        }
        Ok(Snapshot {
            tenant: wire.tenant,
            flags: Arc::new(wire.flags),
            tenant_loaded: from_unix_ms(wire.tenant_loaded_ms),
            flags_loaded: from_unix_ms(wire.flags_loaded_ms),
        })
    }
}

const WIRE_FORMAT: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    format: u32,
    tenant: Tenant,
    tenant_loaded_ms: u64,
    flags: FlagSet,
    flags_loaded_ms: u64,
}

fn age(at: SystemTime) -> Duration {
    SystemTime::now().duration_since(at).unwrap_or(Duration::ZERO)
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
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
    /// Bumped by every drop of a tenant (per tenant) or of everything: a load that started
    /// before a drop must not install what it read.
    generations: HashMap<TenantId, u64>,
    all_generation: u64,
}

impl State {
    fn generation(&self, tenant: &TenantId) -> (u64, u64) {
        (self.all_generation, self.generations.get(tenant).copied().unwrap_or(0))
    }
}

/// The in-process snapshot cache, optionally backed by a [`SharedCache`]. Cheap to clone.
#[derive(Clone)]
pub struct ConfigCache {
    store: Arc<dyn Store>,
    bus: Arc<dyn InvalidationBus>,
    shared: Option<Arc<dyn SharedCache>>,
    config: CacheConfig,
    state: Arc<Mutex<State>>,
}

impl ConfigCache {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn InvalidationBus>, config: CacheConfig) -> Self {
        Self { store, bus, shared: None, config, state: Arc::new(Mutex::new(State::default())) }
    }

    /// Backs this cache with `shared`, whose entries `bus` must remove on publication.
    pub fn with_shared(mut self, shared: Arc<dyn SharedCache>) -> Self {
        self.shared = Some(shared);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_fresh(&self, s: &Snapshot) -> bool {
        s.tenant_age() < self.config.critical_ttl && s.flags_age() < self.config.standard_ttl
    }

    /// The tenant's configuration: from memory when fresh, else from the shared cache, else from
    /// the store (only the part whose TTL ran out). If the store is unavailable, the last
    /// snapshot (if younger than `stale_if_error`), marked stale.
    pub async fn get(&self, scope: &TenantScope) -> Result<Cached, AppError> {
        let tenant = scope.tenant();
        let (cached, generation) = {
            let state = self.lock();
            (state.entries.get(tenant).cloned(), state.generation(tenant))
        };
        if let Some(s) = &cached
            && self.is_fresh(s)
        {
            return Ok(Cached { snapshot: s.clone(), stale: false });
        }
        let (from_shared, seen_seq) = self.shared_read(tenant).await;
        // the newer of what we hold and what the shared cache holds (a late entry never wins)
        let candidate = match (cached, from_shared) {
            (Some(mine), Some(theirs)) if theirs.tenant.version < mine.tenant.version => Some(mine),
            (_, Some(theirs)) => Some(Arc::new(theirs)),
            (mine, None) => mine,
        };
        if let Some(s) = &candidate
            && self.is_fresh(s)
        {
            self.install(tenant, s.clone(), generation);
            return Ok(Cached { snapshot: s.clone(), stale: false });
        }
        match self.load(scope, candidate.as_deref()).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                if self.install(tenant, fresh.clone(), generation)
                    && let (Some(shared), Some(seq)) = (&self.shared, seen_seq)
                {
                    let ttl = self.config.critical_ttl.max(self.config.standard_ttl);
                    let filled = match fresh.encode() {
                        Ok(bytes) => shared.put(tenant, &bytes, seq, ttl).await.map(drop).map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = filled {
                        tracing::warn!(error = %e, "could not fill the shared cache");
                    }
                }
                Ok(Cached { snapshot: fresh, stale: false })
            }
            Err(AppError::Unavailable(e)) => match candidate {
                Some(s) if s.oldest() < self.config.stale_if_error => {
                    tracing::warn!(error = %e, tenant = %tenant, "store unavailable; serving the last snapshot");
                    Ok(Cached { snapshot: s, stale: true })
                }
                _ => Err(AppError::Unavailable(e)),
            },
            Err(other) => Err(other),
        }
    }

    /// The shared cache's entry for `tenant` (if any, and readable) and the sequence number of
    /// the read; a shared cache that fails is skipped (the store is the source of truth).
    async fn shared_read(&self, tenant: &TenantId) -> (Option<Snapshot>, Option<u64>) {
        let Some(shared) = &self.shared else { return (None, None) };
        match shared.get(tenant).await {
            Ok(read) => {
                let snapshot = read.value.and_then(|bytes| {
                    Snapshot::decode(&bytes, tenant)
                        .inspect_err(|e| tracing::warn!(error = %e, "unreadable shared cache entry; ignoring it"))
                        .ok()
                });
                (snapshot, Some(read.seq))
            }
            Err(e) => {
                tracing::warn!(error = %e, "shared cache unavailable; reading the store");
                (None, None)
            }
        }
    }

    /// Reads from the store the parts of `previous` that are no longer fresh (all of it if none).
    async fn load(&self, scope: &TenantScope, previous: Option<&Snapshot>) -> Result<Snapshot, AppError> {
        let reuse_tenant = previous.filter(|p| p.tenant_age() < self.config.critical_ttl);
        let reuse_flags = previous.filter(|p| p.flags_age() < self.config.standard_ttl);
        let (tenant, tenant_loaded) = match reuse_tenant {
            Some(p) => (p.tenant.clone(), p.tenant_loaded),
            None => {
                let now = SystemTime::now();
                let t = self
                    .store
                    .get_tenant(scope)
                    .await?
                    .ok_or_else(|| AppError::TenantNotFound(scope.tenant().clone()))?;
                (t, now)
            }
        };
        let (flags, flags_loaded) = match reuse_flags {
            Some(p) => (p.flags.clone(), p.flags_loaded),
            None => {
                let now = SystemTime::now();
                (Arc::new(self.store.flags_for_tenant(scope).await?), now)
            }
        };
        Ok(Snapshot { tenant, flags, tenant_loaded, flags_loaded })
    }

    /// Installs `snapshot` unless the tenant was dropped since `generation` was read (a write
    /// committed while we were loading). Returns whether it installed.
    fn install(&self, tenant: &TenantId, snapshot: Arc<Snapshot>, generation: (u64, u64)) -> bool {
        let mut state = self.lock();
        if state.generation(tenant) != generation {
            return false;
        }
        state.entries.insert(tenant.clone(), snapshot);
        true
    }

    /// After a committed write: drop locally, then tell every replica (and the shared cache). A
    /// failed publication is logged, not returned — the write has committed; the TTLs bound how
    /// long other replicas lag.
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
                *state.generations.entry(t.clone()).or_default() += 1;
            }
            InvalidationTarget::All => {
                state.entries.clear();
                state.principals.clear();
                state.all_generation += 1;
            }
        }
    }

    /// A principal authenticated within the critical TTL for this token digest, unless its key
    /// has expired since (`now`). Keys, users and memberships changing invalidate `All`.
    pub fn principal(&self, digest: &str, now: time::OffsetDateTime) -> Option<crate::auth::Principal> {
        let state = self.lock();
        let (principal, expires_at, loaded) = state.principals.get(digest)?;
        (loaded.elapsed() < self.config.critical_ttl && expires_at.is_none_or(|e| e > now)).then(|| principal.clone())
    }

    /// A principal past its TTL but within the stale-if-error window (and not past its key's
    /// expiry), for when the store cannot be asked: a revocation or membership change committed
    /// before the outage has already removed it, so only an unchanged principal is served.
    pub fn stale_principal(&self, digest: &str, now: time::OffsetDateTime) -> Option<crate::auth::Principal> {
        let state = self.lock();
        let (principal, expires_at, loaded) = state.principals.get(digest)?;
        let window = self.config.critical_ttl + self.config.stale_if_error;
        (loaded.elapsed() < window && expires_at.is_none_or(|e| e > now)).then(|| principal.clone())
    }

    /// Caches an authenticated principal, unless anything was dropped since `generation` (from
    /// [`ConfigCache::principal_generation`], read before the lookup).
    pub fn put_principal(
        &self,
        digest: String,
        principal: crate::auth::Principal,
        expires_at: Option<time::OffsetDateTime>,
        generation: u64,
    ) {
        let mut state = self.lock();
        if state.all_generation != generation {
            return;
        }
        if state.principals.len() > 100_000 {
            state.principals.clear();
        }
        state.principals.insert(digest, (principal, expires_at, Instant::now()));
    }

    /// Read before looking a principal up in the store; see [`ConfigCache::put_principal`].
    pub fn principal_generation(&self) -> u64 {
        self.lock().all_generation
    }

    /// The highest invalidation sequence number applied (`None` right after a resync).
    pub fn last_seq(&self) -> Option<u64> {
        self.lock().last_seq
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

    async fn deliver_to(&self, cache: ConfigCache) -> anyhow::Result<()> {
        let mut messages = self.sender.subscribe();
        tokio::spawn(async move {
            loop {
                match messages.recv().await {
                    Ok(m) => cache.apply(&m),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.resync(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(())
    }

    fn name(&self) -> String {
        "local".to_owned()
    }

    fn last_published(&self) -> u64 {
        *self.seq.lock().unwrap_or_else(|p| p.into_inner())
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
