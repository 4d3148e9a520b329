//! Budget reservations shared by every replica: per tenant and month, a hash with the ledger's
//! spend at its last reading (`recorded`, `read_at`) and what was settled since (`settled`), a
//! hash of the open holds (id → amount) and a sorted set of their expiry times. One Lua script
//! reserves atomically — drop expired holds, take a fresher ledger reading, admit only within the
//! limit — so N replicas together hold what one would.

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use tenantry_app::{BudgetHolds, HoldRequest};
use tenantry_domain::TenantId;

/// KEYS: account, holds (id → amount), expiries (zset). ARGV: amount, limit, now (ms), expires
/// (ms), hold id, recorded ('' for none), read_at. Returns {1, 0} held or {0, spent}.
const RESERVE: &str = "local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if ARGV[6] ~= '' then
  local read_at = tonumber(redis.call('HGET', KEYS[1], 'read_at') or '-1')
  if tonumber(ARGV[7]) > read_at then
    redis.call('HSET', KEYS[1], 'recorded', ARGV[6], 'read_at', ARGV[7], 'settled', '0')
  end
end
local a = redis.call('HMGET', KEYS[1], 'recorded', 'settled')
local spent = tonumber(a[1] or '0') + tonumber(a[2] or '0')
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do spent = spent + tonumber(v) end
if spent + amount > limit then return {0, spent} end
redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], 3456000) end
return {1, 0}";

/// KEYS: account, holds, expiries. ARGV: hold id, actual. Counts `actual` only for a hold that
/// was still open (a settle repeated, or after expiry, changes nothing).
const SETTLE: &str = "if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'settled', ARGV[2])
end
return 0";

pub struct RedisBudgetHolds {
    connection: ConnectionManager,
    reserve: redis::Script,
    settle: redis::Script,
    namespace: String,
}

impl RedisBudgetHolds {
    /// Connects with a client from [`crate::client`].
    pub async fn connect_client(client: redis::Client, namespace: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let connection = ConnectionManager::new(client).await.context("connect to Redis")?;
        Ok(Self {
            connection,
            reserve: redis::Script::new(RESERVE),
            settle: redis::Script::new(SETTLE),
            namespace: namespace.to_owned(),
        })
    }

    fn keys(&self, tenant: &TenantId, month: &str) -> [String; 3] {
        let base = format!("{}tenantry:budget:{tenant}:{month}", self.namespace);
        [format!("{base}:account"), format!("{base}:holds"), format!("{base}:expiries")]
    }
}

#[async_trait]
impl BudgetHolds for RedisBudgetHolds {
    async fn read_at(&self, tenant: &TenantId, month: &str) -> Result<Option<i64>, anyhow::Error> {
        let [account, ..] = self.keys(tenant, month);
        let mut conn = self.connection.clone();
        let at: Option<i64> = redis::cmd("HGET").arg(account).arg("read_at").query_async(&mut conn).await?;
        Ok(at)
    }

    async fn reserve(&self, r: HoldRequest<'_>) -> Result<Result<(), i64>, anyhow::Error> {
        let [account, holds, expiries] = self.keys(r.tenant, r.month);
        let (recorded, read_at) = match r.recorded {
            Some((spent, at)) => (spent.to_string(), at),
            None => (String::new(), 0),
        };
        let mut conn = self.connection.clone();
        let (held, spent): (i64, i64) = self
            .reserve
            .key(account)
            .key(holds)
            .key(expiries)
            .arg(r.amount)
            .arg(r.limit)
            .arg(r.now_ms)
            .arg(r.expires_ms)
            .arg(r.hold)
            .arg(recorded)
            .arg(read_at)
            .invoke_async(&mut conn)
            .await?;
        Ok(if held == 1 { Ok(()) } else { Err(spent) })
    }

    async fn settle(&self, tenant: &TenantId, month: &str, hold: &str, actual: i64) -> Result<(), anyhow::Error> {
        let [account, holds, expiries] = self.keys(tenant, month);
        let mut conn = self.connection.clone();
        let _: i64 =
            self.settle.key(account).key(holds).key(expiries).arg(hold).arg(actual).invoke_async(&mut conn).await?;
        Ok(())
    }
}
