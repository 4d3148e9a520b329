//! Query limits shared by every replica: one Lua script per query keeps a tenant's token bucket
//! (`<ns>tenantry:rate:<tenant>`: tokens and last refill, in ms of the caller's clock) and its
//! count for the UTC day (`<ns>tenantry:day:<tenant>:<date>`, expiring after midnight), and
//! admits or refuses atomically — so N replicas together admit exactly what one would.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

use tenantry_app::dataplane::{INGEST_BURST_SECONDS, seconds_to_midnight};
use tenantry_app::{IngestTake, QueryMeter, Throttled};
use tenantry_domain::TenantId;

/// KEYS: bucket, day counter. ARGV: per minute, per day, now (ms), seconds to midnight.
/// Returns {0, 0} admitted, {1, wait} bucket empty, {2, wait} day used up.
const ADMIT: &str = "local per_min = tonumber(ARGV[1])
local per_day = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local to_midnight = tonumber(ARGV[4])
local today = tonumber(redis.call('GET', KEYS[2]) or '0')
if today >= per_day then return {2, to_midnight} end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then tokens = per_min; ts = now end
local elapsed = math.max(0, now - ts) / 1000.0
tokens = math.min(per_min, tokens + elapsed * per_min / 60.0)
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], 120000)
  local wait = 60
  if per_min > 0 then wait = math.ceil((1 - tokens) * 60.0 / per_min) end
  if wait < 1 then wait = 1 end
  return {1, wait}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 120000)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], to_midnight + 3600)
return {0, 0}";

/// KEYS: the tenant's ingest buckets. ARGV: documents per second, bytes per second, now (ms),
/// documents, bytes, burst seconds. Takes both costs or neither. Returns {0, 0} admitted, or
/// {1, wait} with the seconds until both buckets could pay.
const ADMIT_INGEST: &str = "local dr = tonumber(ARGV[1])
local br = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local dc = tonumber(ARGV[4])
local bc = tonumber(ARGV[5])
local burst = tonumber(ARGV[6])
local b = redis.call('HMGET', KEYS[1], 'docs', 'bytes', 'ts')
local docs = tonumber(b[1])
local bytes = tonumber(b[2])
local ts = tonumber(b[3])
if docs == nil or bytes == nil or ts == nil then docs = dr * burst; bytes = br * burst; ts = now end
local elapsed = math.max(0, now - ts) / 1000.0
docs = math.min(dr * burst, docs + elapsed * dr)
bytes = math.min(br * burst, bytes + elapsed * br)
local wait = 0
if docs < dc then wait = math.max(wait, math.ceil((dc - docs) / dr)) end
if bytes < bc then wait = math.max(wait, math.ceil((bc - bytes) / br)) end
local ttl = burst * 2000 + 60000
if wait > 0 then
  redis.call('HSET', KEYS[1], 'docs', tostring(docs), 'bytes', tostring(bytes), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, wait}
end
redis.call('HSET', KEYS[1], 'docs', tostring(docs - dc), 'bytes', tostring(bytes - bc), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl)
return {0, 0}";

pub struct RedisQueryMeter {
    connection: ConnectionManager,
    script: redis::Script,
    ingest: redis::Script,
    namespace: String,
}

impl RedisQueryMeter {
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        Self::connect_client(crate::client(url, None)?, namespace).await
    }

    /// Connects with a client from [`crate::client`] (e.g. over TLS with a private CA).
    pub async fn connect_client(client: redis::Client, namespace: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let connection = ConnectionManager::new(client).await.context("connect to Redis")?;
        Ok(Self {
            connection,
            script: redis::Script::new(ADMIT),
            ingest: redis::Script::new(ADMIT_INGEST),
            namespace: namespace.to_owned(),
        })
    }
}

#[async_trait]
impl QueryMeter for RedisQueryMeter {
    async fn admit(
        &self,
        tenant: &TenantId,
        per_minute: i64,
        per_day: i64,
        now: OffsetDateTime,
    ) -> Result<(), Throttled> {
        let ns = &self.namespace;
        let bucket = format!("{ns}tenantry:rate:{tenant}");
        let day = format!("{ns}tenantry:day:{tenant}:{}", now.date());
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let mut conn = self.connection.clone();
        let (verdict, wait): (i64, i64) = self
            .script
            .key(bucket)
            .key(day)
            .arg(per_minute.max(0))
            .arg(per_day)
            .arg(now_ms)
            .arg(seconds_to_midnight(now))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Throttled::MeterUnavailable(anyhow::Error::new(e).context("count a query in Redis")))?;
        let retry_after_secs = wait.max(1) as u64;
        match verdict {
            0 => Ok(()),
            1 => Err(Throttled::PerMinute { retry_after_secs }),
            _ => Err(Throttled::PerDay { retry_after_secs }),
        }
    }

    async fn admit_ingest(&self, tenant: &TenantId, take: IngestTake, now: OffsetDateTime) -> Result<(), Throttled> {
        let bucket = format!("{}tenantry:ingest:{tenant}", self.namespace);
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let mut conn = self.connection.clone();
        let (verdict, wait): (i64, i64) = self
            .ingest
            .key(bucket)
            .arg(take.documents_per_second.max(1))
            .arg(take.bytes_per_second.max(1))
            .arg(now_ms)
            .arg(take.documents)
            .arg(take.bytes)
            .arg(INGEST_BURST_SECONDS)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Throttled::MeterUnavailable(anyhow::Error::new(e).context("count an ingest in Redis")))?;
        match verdict {
            0 => Ok(()),
            _ => Err(Throttled::Ingest { retry_after_secs: wait.max(1) as u64 }),
        }
    }
}
