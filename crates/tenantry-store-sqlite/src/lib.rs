//! The embedded store: SQLite in a file under the data directory. The default backend, so that
//! `tenantry` works on a bare machine; held to the same contract suite as PostgreSQL.
//!
//! SQLite has no row-level security: isolation here is the application layer's (every query
//! filters by the scope's tenant). PostgreSQL adds RLS underneath the same queries.

mod documents;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use tenantry_app::ports::{EntrySigner, PoolStats, Store};
use tenantry_app::{PlatformScope, StoreError, TenantScope};
use tenantry_domain::{TenantId, Tier};
use tenantry_store_sql::migrations::{Applied, Migration, PRE_CHECKSUM_HISTORY, pending};
use tenantry_store_sql::{TierRecord, store_error};

/// Embedded migrations, applied in order; history (never edit one that has shipped: add a file).
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "baseline", sql: include_str!("../migrations/0001_baseline.sql") },
    Migration {
        version: 2,
        name: "feed_invitations_flag_ownership",
        sql: include_str!("../migrations/0002_feed_invitations_flag_ownership.sql"),
    },
    Migration { version: 3, name: "cost_ledger", sql: include_str!("../migrations/0003_cost_ledger.sql") },
    Migration { version: 4, name: "answer_config", sql: include_str!("../migrations/0004_answer_config.sql") },
];

pub const DB_FILE: &str = "tenantry.db";

/// Applies what [`pending`] says is missing and seeds an empty tier catalog, inside the caller's
/// transaction; refuses a history that does not match this binary's files.
async fn apply_migrations(tx: &mut Transaction<'_, Sqlite>) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "create table if not exists schema_migrations (version integer primary key, name text not null,
             checksum text not null, applied_at text not null)",
    )
    .execute(&mut **tx)
    .await
    .context("create schema_migrations")?;
    let applied: Vec<Applied> =
        sqlx::query_as::<_, (i64, String, String)>("select version, name, checksum from schema_migrations")
            .fetch_all(&mut **tx)
            .await
            .context(PRE_CHECKSUM_HISTORY)?
            .into_iter()
            .map(|(version, name, checksum)| Applied { version, name, checksum })
            .collect();
    for m in pending(MIGRATIONS, &applied)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut **tx)
            .await
            .with_context(|| format!("apply migration {} {}", m.version, m.name))?;
        sqlx::query(
            "insert into schema_migrations (version, name, checksum, applied_at) values (?, ?, ?, datetime('now'))",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .execute(&mut **tx)
        .await
        .context("record migration")?;
    }
    // Seed the built-in tier catalog into an empty store (operators may change it afterwards).
    let n_tiers: i64 = sqlx::query_scalar("select count(*) from tiers").fetch_one(&mut **tx).await?;
    if n_tiers == 0 {
        for tier in Tier::builtin_catalog() {
            shared::insert_tier_row(tx, &TierRecord::from(&tier)).await.map_err(anyhow::Error::new)?;
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    signer: Option<Arc<dyn EntrySigner>>,
    /// The directory of a temporary store, removed when the last clone goes.
    _temporary: Option<Arc<TemporaryDir>>,
}

struct TemporaryDir(std::path::PathBuf);

impl Drop for TemporaryDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates `dir` (and its parents) readable by the owner only (0700 on Unix); an existing
/// directory is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file empty and private (0600 on Unix) if it does not exist, so SQLite's
/// journal files, which copy its permissions, are private too.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

static TEMPORARY_STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/tenantry.db` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        create_private_dir(data_dir).with_context(|| format!("create data directory {}", data_dir.display()))?;
        create_private_file(&data_dir.join(DB_FILE))
            .with_context(|| format!("create {}", data_dir.join(DB_FILE).display()))?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options, 4).await
    }

    /// A fresh store in a directory of its own under the system's temporary directory, opened
    /// exactly as [`SqliteStore::open`] opens a data directory (a file, WAL, four connections):
    /// tests run on the production configuration, so racing writers really race. The directory
    /// is removed when the last clone of the store is dropped.
    pub async fn open_temporary() -> anyhow::Result<Self> {
        let n = TEMPORARY_STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tenantry-sqlite-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Self::open(&dir).await?;
        store._temporary = Some(Arc::new(TemporaryDir(dir)));
        Ok(store)
    }

    async fn connect(options: SqliteConnectOptions, max_connections: u32) -> anyhow::Result<Self> {
        let pool_options = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // a connection to a local file does not go away behind our back: no ping per acquire
            .test_before_acquire(false);
        // Switching a new file to WAL takes a lock that SQLite does not wait for (no busy
        // handler): a second process opening the same new data directory at that moment is told
        // the database is locked. It is tried again, for up to ten seconds like busy_timeout.
        let mut attempt = 0;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(sqlx::Error::Database(db)) if db.message().contains("locked") && attempt < 200 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(anyhow::Error::new(e).context("open sqlite database")),
            }
        };
        let store = Self { pool, signer: None, _temporary: None };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        // BEGIN IMMEDIATE takes the write lock at once: two processes opening one data directory
        // together apply each migration (and seed the catalog) once; the second waits, then
        // finds it done
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.context("lock the database to migrate")?;
        apply_migrations(&mut tx).await?;
        tx.commit().await.context("commit migrations")?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Signs every audit entry this store appends from now on.
    pub fn with_signer(mut self, signer: Arc<dyn EntrySigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// A write transaction. SQLite has no row-level security: the scope is the application's,
    /// and every statement filters by its tenant.
    async fn tenant_tx(&self, _scope: &TenantScope) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin().await.map_err(|e| store_error(e, "begin"))
    }

    async fn platform_tx(&self, _access: &PlatformScope) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin().await.map_err(|e| store_error(e, "begin"))
    }

    /// A read: a pooled connection, no transaction (one statement sees one snapshot).
    async fn tenant_read(&self, _scope: &TenantScope) -> Result<PoolConnection<Sqlite>, StoreError> {
        self.pool.acquire().await.map_err(|e| store_error(e, "acquire"))
    }

    async fn platform_read(&self, _access: &PlatformScope) -> Result<PoolConnection<Sqlite>, StoreError> {
        self.pool.acquire().await.map_err(|e| store_error(e, "acquire"))
    }

    async fn end_read(_conn: PoolConnection<Sqlite>) -> Result<(), StoreError> {
        Ok(())
    }

    /// SQLite serializes writers, and the membership insert is one statement that takes the
    /// write lock before it counts: nothing more to lock.
    async fn lock_members(_tx: &mut Transaction<'_, Sqlite>, _tenant: &TenantId) -> Result<(), StoreError> {
        Ok(())
    }

    /// No paths on SQLite (no RLS): nothing to switch.
    async fn enter_platform_path(_tx: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn leave_platform_path(_tx: &mut Transaction<'_, Sqlite>, _previous: ()) -> Result<(), StoreError> {
        Ok(())
    }
}

tenantry_store_sql::registry_store!(SqliteStore, Sqlite, SqliteRow);

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await.map_err(|e| store_error(e, "ping"))?;
        Ok(())
    }

    /// SQLite enforces no isolation of its own: the scopes do (application level).
    async fn isolation_probes(&self) -> Result<Vec<tenantry_app::ports::IsolationProbe>, StoreError> {
        Ok(Vec::new())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
tenantry_store_sql::ledger_store!(SqliteStore, sqlx::Sqlite);
tenantry_store_sql::config_store!(SqliteStore, sqlx::Sqlite);
tenantry_store_sql::usage_rows_by_values!(SqliteStore, sqlx::Sqlite);
