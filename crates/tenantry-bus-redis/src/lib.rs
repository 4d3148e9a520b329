//! Redis as the shared cache and the invalidation channel between replicas.
//!
//! **Invalidation.** Publishing runs one Lua script that removes the named snapshot from the
//! shared cache (or, for `All`, moves every snapshot key to a new generation), increments the
//! bus-wide sequence and publishes the numbered message — atomically, so every subscriber sees
//! sequence numbers in order and a jump really means a missed message. The subscriber task
//! applies each message to the local cache, and on every (re)connection tells the cache to
//! resync, since messages sent while it was away are gone.
//!
//! **Shared cache.** Snapshots live under `<ns>tenantry:snapshot:<generation>:<tenant>` with a
//! TTL. A read returns the entry together with the current sequence number; a fill is refused
//! when the sequence has moved since that read, so a load that raced a write never parks old
//! data in Redis. (The scripts build key names from the generation, so this targets a single
//! Redis, not Redis Cluster.)

mod budget;
mod meter;

pub use budget::RedisBudgetHolds;
pub use meter::RedisQueryMeter;

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use tenantry_app::{
    ConfigCache, Invalidation, InvalidationBus, InvalidationTarget, SharedCache, SharedRead, StoreError,
};
use tenantry_domain::TenantId;

pub const CHANNEL: &str = "tenantry:invalidation";
pub const SEQUENCE_KEY: &str = "tenantry:invalidation:seq";
pub const GENERATION_KEY: &str = "tenantry:snapshot:gen";
pub const SNAPSHOT_PREFIX: &str = "tenantry:snapshot:";

/// KEYS: sequence, generation. ARGV: channel, message body, snapshot prefix, tenant ('' = all).
const PUBLISH: &str = "if ARGV[4] == '' then
  redis.call('INCR', KEYS[2])
else
  redis.call('DEL', ARGV[3] .. (redis.call('GET', KEYS[2]) or '0') .. ':' .. ARGV[4])
end
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[2])
return seq";

/// KEYS: sequence, generation. ARGV: snapshot prefix, tenant. Returns {sequence, entry or nil}.
const GET: &str = "local seq = redis.call('GET', KEYS[1]) or '0'
local value = redis.call('GET', ARGV[1] .. (redis.call('GET', KEYS[2]) or '0') .. ':' .. ARGV[2])
return {seq, value}";

/// KEYS: sequence, generation. ARGV: snapshot prefix, tenant, sequence seen, value, TTL in ms.
const PUT: &str = "if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[3] then return 0 end
redis.call('SET', ARGV[1] .. (redis.call('GET', KEYS[2]) or '0') .. ':' .. ARGV[2], ARGV[4], 'PX', ARGV[5])
return 1";

#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    connection: ConnectionManager,
    publish: redis::Script,
    get: redis::Script,
    put: redis::Script,
    namespace: String,
    /// The last sequence number this process published.
    last_published: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A Redis client for `url`. A `rediss://` URL speaks TLS (rustls) and checks the server's
/// certificate against the system's roots, or with `ca` (PEM) against that CA only.
pub fn client(url: &str, ca: Option<&[u8]>) -> anyhow::Result<redis::Client> {
    // several TLS backends are linked in (object storage brings its own): name the one rustls
    // uses for Redis, once per process (a second call finds it installed)
    let _ = rustls::crypto::ring::default_provider().install_default();
    match ca {
        Some(pem) => {
            let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) };
            redis::Client::build_with_tls(url, certificates).context("parse REDIS_URL (with its CA)")
        }
        None => redis::Client::open(url).context("parse REDIS_URL"),
    }
}

impl RedisBus {
    /// Connects to `url`. `namespace` prefixes the channel and sequence key, so several
    /// deployments (or test runs) can share one Redis.
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        Self::connect_client(client(url, None)?, namespace).await
    }

    /// Connects with a client from [`client`] (e.g. over TLS with a private CA).
    pub async fn connect_client(client: redis::Client, namespace: &str) -> anyhow::Result<Self> {
        let connection = ConnectionManager::new(client.clone()).await.context("connect to Redis")?;
        Ok(Self {
            client,
            connection,
            publish: redis::Script::new(PUBLISH),
            get: redis::Script::new(GET),
            put: redis::Script::new(PUT),
            namespace: namespace.to_owned(),
            last_published: Default::default(),
        })
    }

    fn channel(&self) -> String {
        format!("{}{CHANNEL}", self.namespace)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }

    /// Applies every message to `cache`, reconnecting after failures; runs until the process
    /// ends. Returns once the first subscription is live, so writes after it are not missed.
    async fn spawn_subscriber(&self, cache: ConfigCache) -> anyhow::Result<()> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let bus = self.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut backoff = Duration::from_millis(100);
            loop {
                match bus.subscribe_once(&cache, &mut ready).await {
                    Ok(()) => tracing::warn!("Redis subscription ended; reconnecting"),
                    Err(e) => tracing::warn!(error = %e, "Redis subscription failed; reconnecting"),
                }
                // messages may have been missed while away
                cache.resync();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        ready_rx.await.context("the Redis subscriber stopped before subscribing")
    }

    async fn subscribe_once(
        &self,
        cache: &ConfigCache,
        ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> anyhow::Result<()> {
        let mut pubsub = self.client.get_async_pubsub().await.context("open a pub/sub connection")?;
        pubsub.subscribe(self.channel()).await.context("subscribe")?;
        cache.resync();
        if let Some(tx) = ready.take() {
            let _ = tx.send(());
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = match message.get_payload() {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable invalidation message; resyncing");
                    cache.resync();
                    continue;
                }
            };
            match Invalidation::decode(&payload) {
                Some(m) => cache.apply(&m),
                None => {
                    tracing::warn!(payload, "malformed invalidation message; resyncing");
                    cache.resync();
                }
            }
        }
        Ok(())
    }
}

fn unavailable(e: redis::RedisError, what: &'static str) -> StoreError {
    StoreError::Unavailable(anyhow::Error::new(e).context(what))
}

#[async_trait]
impl InvalidationBus for RedisBus {
    async fn publish(&self, target: InvalidationTarget) -> Result<Invalidation, StoreError> {
        let (body, tenant) = match &target {
            InvalidationTarget::Tenant(t) => (format!("tenant {t}"), t.as_str().to_owned()),
            InvalidationTarget::All => ("all".to_owned(), String::new()),
        };
        let mut connection = self.connection.clone();
        let seq: u64 = self
            .publish
            .key(self.key(SEQUENCE_KEY))
            .key(self.key(GENERATION_KEY))
            .arg(self.channel())
            .arg(body)
            .arg(self.key(SNAPSHOT_PREFIX))
            .arg(tenant)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| unavailable(e, "publish an invalidation to Redis"))?;
        self.last_published.fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
        Ok(Invalidation { seq, target })
    }

    async fn deliver_to(&self, cache: ConfigCache) -> anyhow::Result<()> {
        self.spawn_subscriber(cache).await
    }

    fn name(&self) -> String {
        format!("redis:{}", self.namespace)
    }

    fn last_published(&self) -> u64 {
        self.last_published.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl SharedCache for RedisBus {
    async fn get(&self, tenant: &TenantId) -> Result<SharedRead, StoreError> {
        let mut connection = self.connection.clone();
        let (seq, value): (String, Option<Vec<u8>>) = self
            .get
            .key(self.key(SEQUENCE_KEY))
            .key(self.key(GENERATION_KEY))
            .arg(self.key(SNAPSHOT_PREFIX))
            .arg(tenant.as_str())
            .invoke_async(&mut connection)
            .await
            .map_err(|e| unavailable(e, "read the shared cache"))?;
        let seq = seq.parse().map_err(|_| {
            StoreError::Unavailable(anyhow::anyhow!("the invalidation sequence in Redis is not a number: {seq:?}"))
        })?;
        Ok(SharedRead { seq, value })
    }

    async fn put(&self, tenant: &TenantId, value: &[u8], seen_seq: u64, ttl: Duration) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let stored: i64 = self
            .put
            .key(self.key(SEQUENCE_KEY))
            .key(self.key(GENERATION_KEY))
            .arg(self.key(SNAPSHOT_PREFIX))
            .arg(tenant.as_str())
            .arg(seen_seq.to_string())
            .arg(value)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| unavailable(e, "fill the shared cache"))?;
        Ok(stored == 1)
    }
}
