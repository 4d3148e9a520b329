//! Cache invalidation across replicas over Redis pub/sub.
//!
//! Publishing runs one Lua script that increments the bus-wide sequence and publishes the
//! numbered message atomically, so every subscriber sees sequence numbers in order and a jump
//! really means a missed message. The subscriber task applies each message to the local cache,
//! and on every (re)connection tells the cache to resync, since messages sent while it was away
//! are gone.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use tenantry_app::{ConfigCache, Invalidation, InvalidationBus, InvalidationTarget, StoreError};

pub const CHANNEL: &str = "tenantry:invalidation";
pub const SEQUENCE_KEY: &str = "tenantry:invalidation:seq";

const PUBLISH: &str = "local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[2])
return seq";

pub struct RedisBus {
    client: redis::Client,
    connection: ConnectionManager,
    script: redis::Script,
    namespace: String,
}

impl RedisBus {
    /// Connects to `url`. `namespace` prefixes the channel and sequence key, so several
    /// deployments (or test runs) can share one Redis.
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parse REDIS_URL")?;
        let connection = ConnectionManager::new(client.clone()).await.context("connect to Redis")?;
        Ok(Self { client, connection, script: redis::Script::new(PUBLISH), namespace: namespace.to_owned() })
    }

    fn channel(&self) -> String {
        format!("{}{CHANNEL}", self.namespace)
    }

    /// Applies every message to `cache`, reconnecting after failures; runs until the task is
    /// dropped. Returns once the first subscription is live, so writes after it are not missed.
    pub async fn spawn_subscriber(self: &Arc<Self>, cache: ConfigCache) -> anyhow::Result<()> {
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

#[async_trait]
impl InvalidationBus for RedisBus {
    async fn publish(&self, target: InvalidationTarget) -> Result<Invalidation, StoreError> {
        let body = match &target {
            InvalidationTarget::Tenant(t) => format!("tenant {t}"),
            InvalidationTarget::All => "all".to_owned(),
        };
        let mut connection = self.connection.clone();
        let seq: u64 = self
            .script
            .key(format!("{}{SEQUENCE_KEY}", self.namespace))
            .arg(self.channel())
            .arg(body)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("publish an invalidation to Redis")))?;
        Ok(Invalidation { seq, target })
    }
}
