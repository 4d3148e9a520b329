//! Test databases, for this crate's tests and every other crate's PostgreSQL tests: each test
//! gets a database of its own, created by the owner role from `DATABASE_URL` and migrated; the
//! store under test connects as the application role. Outside CI a missing `DATABASE_URL` skips
//! (with a message); under `CI=true` it fails.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{PgConfig, PgStore};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The value of `var`, which a test needs to reach a real service (set by scripts/test.sh). Outside
/// CI a missing value skips the test (`None`, with a message); under `CI=true` it fails.
pub fn required_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set: in CI every test against a real service must run (scripts/test.sh sets it)")
        }
        _ => {
            eprintln!("skipping: {var} is not set (run scripts/test.sh to run this test)");
            None
        }
    }
}

pub fn database_url() -> Option<String> {
    required_env("DATABASE_URL")
}

/// A fresh database; returns its owner-level config (migrated) or `None` when skipping.
pub async fn fresh_config() -> Option<PgConfig> {
    let base = database_url()?;
    let name = format!(
        "tenantry_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
    );
    let mut admin = PgConnection::connect(&base).await.expect("connect to DATABASE_URL (is PostgreSQL running?)");
    sqlx::raw_sql(AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&base).expect("DATABASE_URL parses");
    url.set_path(&name);
    let config = PgConfig::new(url.to_string());
    crate::migrate(&config).await.expect("migrate test database");
    Some(config)
}

pub async fn fresh_store() -> Option<PgStore> {
    let mut config = fresh_config().await?;
    config.migrate = false;
    config.pool_size = 4;
    Some(PgStore::connect(&config).await.expect("connect as the application role"))
}

/// An owner-level connection to the database behind `config` (bypasses nothing: FORCE RLS binds
/// the owner too, so use it only for catalog inspection and setup).
pub async fn owner_conn(config: &PgConfig) -> PgConnection {
    PgConnection::connect(&config.owner_url).await.expect("connect as owner")
}
