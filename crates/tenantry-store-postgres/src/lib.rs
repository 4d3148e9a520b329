//! The PostgreSQL store: the production backend, with Row-Level Security underneath the same
//! queries the application layer already scopes.
//!
//! Two connections, two roles: migrations run as the schema **owner** (the `DATABASE_URL` user);
//! the service runs as the **application role** (default `tenantry_app`), which owns nothing, is
//! not superuser, not BYPASSRLS, and so is always subject to RLS. Every tenant-scoped transaction
//! starts with `set_config('tenantry.tenant_id', <id>, true)`; platform operations with
//! `set_config('tenantry.platform', 'on', true)` — both transaction-local, so a pooled connection
//! never carries one request's context into the next.

mod breaker;
pub mod config;
pub mod documents;
mod migrate;
pub mod pgvector;
pub mod probes;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Transaction};

use tenantry_app::ports::{EntrySigner, PoolStats, Store};
use tenantry_app::{PlatformScope, StoreError, TenantScope};
use tenantry_domain::TenantId;
use tenantry_store_sql::store_error;

pub use config::PgConfig;
pub use migrate::{MIGRATIONS, migrate};

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    signer: Option<Arc<dyn EntrySigner>>,
    /// Each index's search statement and the counts search plans are made from; see `documents.rs`.
    search: Arc<documents::SearchCatalog>,
    /// Fails requests at once while the database cannot be reached; see `breaker.rs`.
    breaker: Arc<breaker::Breaker>,
}

impl PgStore {
    /// Migrates (as the owner, unless `config.migrate` is off) and connects as the application role.
    pub async fn connect(config: &PgConfig) -> anyhow::Result<Self> {
        if config.migrate {
            migrate(config).await?;
        }
        let pool = app_pool(config).await?;
        Ok(Self { pool, signer: None, search: Default::default(), breaker: Default::default() })
    }

    /// Connects as the application role without migrating.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool, signer: None, search: Default::default(), breaker: Default::default() }
    }

    /// Signs every audit entry this store appends from now on.
    pub fn with_signer(mut self, signer: Arc<dyn EntrySigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Begins a transaction confined to one tenant by RLS, in one round trip: `BEGIN` and the
    /// context go as one simple query. The tenant id is spliced as a literal: a `TenantId`
    /// matches `[a-z0-9][a-z0-9_-]*`, so it holds no quote to escape.
    async fn tenant_tx(&self, scope: &TenantScope) -> Result<Transaction<'static, Postgres>, StoreError> {
        let tenant = scope.tenant().as_str();
        debug_assert!(tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        let begin = format!("BEGIN; SELECT set_config('tenantry.tenant_id', '{tenant}', true)");
        self.guarded(self.pool.begin_with(sqlx::AssertSqlSafe(begin)), "begin tenant transaction").await
    }

    /// Runs `start` (taking a connection) through the breaker: refused at once while the
    /// database is known to be down, and reporting whether it was reached.
    pub(crate) async fn guarded<T>(
        &self,
        start: impl std::future::Future<Output = Result<T, sqlx::Error>>,
        what: &'static str,
    ) -> Result<T, StoreError> {
        if self.breaker.check(breaker::now_ms()) == breaker::Pass::Refuse {
            return Err(StoreError::Unavailable(anyhow::anyhow!("the database is unreachable; retrying shortly")));
        }
        match start.await.map_err(|e| store_error(e, what)) {
            Ok(value) => {
                self.breaker.reached();
                Ok(value)
            }
            Err(StoreError::Unavailable(e)) => {
                self.breaker.unreachable(breaker::now_ms());
                Err(StoreError::Unavailable(e))
            }
            Err(other) => {
                self.breaker.reached();
                Err(other)
            }
        }
    }

    /// A read confined to one tenant: a transaction with its context, ended by [`Self::end_read`].
    async fn tenant_read(&self, scope: &TenantScope) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.tenant_tx(scope).await
    }

    /// A read on the platform path, ended by [`Self::end_read`].
    async fn platform_read(&self, access: &PlatformScope) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.platform_tx(access).await
    }

    async fn end_read(tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
        tx.commit().await.map_err(|e| store_error(e, "end read"))
    }

    /// Serializes additions of members to `tenant` until `tx` ends, so the count a new member is
    /// checked against cannot change meanwhile (READ COMMITTED would let two additions both see
    /// room for one).
    async fn lock_members(tx: &mut Transaction<'_, Postgres>, tenant: &TenantId) -> Result<(), StoreError> {
        sqlx::query("select pg_advisory_xact_lock(hashtextextended('tenantry.members:' || $1, 0))")
            .bind(tenant.as_str())
            .execute(&mut **tx)
            .await
            .map_err(|e| store_error(e, "lock the tenant's members"))?;
        Ok(())
    }

    /// Puts `tx` on the platform path (for the audit head, which RLS keeps to it); returns the
    /// path setting to restore.
    async fn enter_platform_path(tx: &mut Transaction<'_, Postgres>) -> Result<String, StoreError> {
        let (previous, _): (Option<String>, String) = sqlx::query_as(
            "select current_setting('tenantry.platform', true), set_config('tenantry.platform', 'on', true)",
        )
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| store_error(e, "enter the platform path"))?;
        Ok(previous.unwrap_or_default())
    }

    /// Restores the path `enter_platform_path` found: a tenant's transaction goes back to its
    /// tenant only.
    async fn leave_platform_path(tx: &mut Transaction<'_, Postgres>, previous: String) -> Result<(), StoreError> {
        sqlx::query("select set_config('tenantry.platform', $1, true)")
            .bind(previous)
            .execute(&mut **tx)
            .await
            .map_err(|e| store_error(e, "leave the platform path"))?;
        Ok(())
    }

    /// Begins a transaction on the platform path (RLS policy `platform_access`). Only a
    /// `PlatformScope` opens one.
    async fn platform_tx(&self, _access: &PlatformScope) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.guarded(self.pool.begin(), "begin platform transaction").await?;
        sqlx::query("select set_config('tenantry.platform', 'on', true)")
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "set platform context"))?;
        Ok(tx)
    }
}

/// How long a pooled connection may sit idle before it is pinged on the way out of the pool.
const PING_AFTER_IDLE: Duration = Duration::from_millis(500);

/// Builds the application role's pool from the configuration.
pub async fn app_pool(config: &PgConfig) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions =
        config.app_url()?.parse::<PgConnectOptions>().context("parse application database url")?.options([
            ("statement_timeout", format!("{}", config.statement_timeout_ms)),
            ("application_name", "tenantry".into()),
        ]);
    PgPoolOptions::new()
        .max_connections(config.pool_size)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        // sqlx pings every connection it hands out, one extra round trip per statement. A
        // connection in use within the last half second is handed out as it is (HikariCP's
        // `aliveBypassWindowMs` does the same, with the same 500 ms); one idle longer is pinged
        // and replaced if the server went away meanwhile.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .with_context(|| format!("connect to PostgreSQL as the application role {}", config.app_role))
}

tenantry_store_sql::registry_store!(PgStore, Postgres, PgRow);

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await.map_err(|e| store_error(e, "ping"))?;
        Ok(())
    }

    async fn isolation_probes(&self) -> Result<Vec<tenantry_app::ports::IsolationProbe>, StoreError> {
        let probes = probes::run(&self.pool).await.map_err(|e| store_error(e, "run RLS probes"))?;
        Ok(probes
            .into_iter()
            .map(|p| tenantry_app::ports::IsolationProbe {
                name: p.name.to_owned(),
                passed: match p.outcome {
                    probes::Outcome::Passed => Some(true),
                    probes::Outcome::Failed => Some(false),
                    probes::Outcome::Skipped => None,
                },
                detail: p.detail,
            })
            .collect())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
tenantry_store_sql::ledger_store!(PgStore, sqlx::Postgres);
tenantry_store_sql::config_store!(PgStore, sqlx::Postgres);

/// Events per usage statement. sqlx does not set TCP_NODELAY on its sockets: a statement whose
/// message is larger than about 8 KiB meets Nagle's algorithm and the server's delayed ACK, and
/// waits 40 ms on a TCP connection (measured: 256 events took 47 ms in one statement, 64 took
/// 1.2 ms; see BENCHMARKS.md). 64 events stay below that.
const USAGE_ROWS_PER_STATEMENT: usize = 64;

/// The usage writes: one statement per 64 events, with the events bound as arrays to `unnest`
/// (one prepared statement whatever the count; a `VALUES` list would be a new statement for
/// every size). The statement inserts the events, skipping recorded keys, and adds the new ones
/// to their daily rollups (the UTC day, as `UsageEvent::day`) in the same round trip.
impl PgStore {
    pub(crate) async fn write_usage(
        tx: &mut Transaction<'static, Postgres>,
        events: &[&tenantry_domain::cost::UsageEvent],
    ) -> Result<u64, StoreError> {
        let mut new = 0;
        for chunk in events.chunks(USAGE_ROWS_PER_STATEMENT) {
            new += Self::write_usage_chunk(tx, chunk).await?;
        }
        Ok(new)
    }

    async fn write_usage_chunk(
        tx: &mut Transaction<'static, Postgres>,
        chunk: &[&tenantry_domain::cost::UsageEvent],
    ) -> Result<u64, StoreError> {
        let tenants: Vec<&str> = chunk.iter().map(|e| e.tenant.as_str()).collect();
        let keys: Vec<&str> = chunk.iter().map(|e| e.key.as_str()).collect();
        let meters: Vec<&str> = chunk.iter().map(|e| e.meter.as_str()).collect();
        let models: Vec<&str> = chunk.iter().map(|e| e.model.as_ref().map_or("", |m| m.as_str())).collect();
        let quantities: Vec<i64> = chunk.iter().map(|e| i64::try_from(e.quantity).unwrap_or(i64::MAX)).collect();
        let ats: Vec<time::OffsetDateTime> = chunk.iter().map(|e| e.at).collect();
        let new: i64 = sqlx::query_scalar(
            "with new as (
                 insert into usage_events (tenant_id, idem_key, meter, model, quantity, at)
                 select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
                 on conflict (tenant_id, idem_key) do nothing
                 returning tenant_id, meter, model, quantity, at
             ), rolled as (
                 insert into usage_daily (tenant_id, meter, model, day, quantity)
                 select tenant_id, meter, model, (at at time zone 'UTC')::date, sum(quantity)
                 from new group by 1, 2, 3, 4 order by 1, 2, 3, 4
                 on conflict (tenant_id, meter, model, day)
                 do update set quantity = usage_daily.quantity + excluded.quantity
             )
             select count(*) from new",
        )
        .bind(tenants)
        .bind(keys)
        .bind(meters)
        .bind(models)
        .bind(quantities)
        .bind(ats)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| store_error(e, "record usage"))?;
        Ok(u64::try_from(new).unwrap_or(0))
    }
}
