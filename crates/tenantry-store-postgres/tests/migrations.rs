//! Migration history on PostgreSQL: a second run applies nothing; a database whose applied
//! migration no longer matches this binary's file, or that records a migration this binary does
//! not know, or that predates checksums, is refused before anything runs.

mod common;

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tenantry_store_postgres::migrate;

async fn owner(config: &tenantry_store_postgres::PgConfig) -> PgConnection {
    PgConnection::connect(&config.owner_url).await.expect("connect as the owner")
}

#[tokio::test]
async fn an_applied_migration_that_changed_is_refused() {
    let Some(config) = common::fresh_config().await else { return };
    migrate(&config).await.expect("a second run finds everything applied");
    let mut db = owner(&config).await;
    let n: i64 = sqlx::query_scalar("select count(*) from schema_migrations").fetch_one(&mut db).await.unwrap();
    assert_eq!(n as usize, tenantry_store_postgres::MIGRATIONS.len(), "each migration, once");
    sqlx::query("update schema_migrations set checksum = repeat('a', 64) where version = 1")
        .execute(&mut db)
        .await
        .unwrap();
    let err = format!("{:#}", migrate(&config).await.unwrap_err());
    assert!(err.contains("migration 1 (baseline) was changed after it was applied"), "{err}");
}

#[tokio::test]
async fn a_migration_this_binary_does_not_know_is_refused() {
    let Some(config) = common::fresh_config().await else { return };
    let mut db = owner(&config).await;
    sqlx::query(
        "insert into schema_migrations (version, name, checksum) values (99, 'from_the_future', repeat('b', 64))",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let err = format!("{:#}", migrate(&config).await.unwrap_err());
    assert!(err.contains("migration 99 (from_the_future), which this binary does not know"), "{err}");
}

#[tokio::test]
async fn a_database_from_before_checksums_is_refused_with_the_reason() {
    let Some(config) = common::fresh_config().await else { return };
    let mut db = owner(&config).await;
    // the shape pre-release builds wrote
    sqlx::raw_sql(AssertSqlSafe(
        "drop table schema_migrations;
         create table schema_migrations (version bigint primary key, name text not null,
                                         applied_at timestamptz not null default now());
         insert into schema_migrations (version, name) values (1, 'registry')",
    ))
    .execute(&mut db)
    .await
    .unwrap();
    let err = format!("{:#}", migrate(&config).await.unwrap_err());
    assert!(err.contains("created by a pre-release build"), "{err}");
}
