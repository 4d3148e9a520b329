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

/// Migration 2 over a database with data (the baseline applied, rows written, then `migrate`):
/// a key whose values were only tenant-level moves into each using tenant's namespace, a key with
/// a platform value stays the platform's, tenant values keep their data and get a version, and
/// the built-in tiers and their tenants get their ingest rates.
#[tokio::test]
async fn flag_ownership_migrates_existing_definitions() {
    let Some(base) = tenantry_store_postgres::testing::database_url() else { return };
    let name = format!("tenantry_t_mig2_{}", std::process::id());
    let mut admin = PgConnection::connect(&base).await.unwrap();
    for statement in [format!("drop database if exists {name}"), format!("create database {name}")] {
        sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut admin).await.unwrap();
    }
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    let config = tenantry_store_postgres::PgConfig::new(url.to_string());
    let mut db = owner(&config).await;
    let baseline = &tenantry_store_postgres::MIGRATIONS[0];
    sqlx::raw_sql(AssertSqlSafe(baseline.sql)).execute(&mut db).await.unwrap();
    sqlx::raw_sql(
        "create table schema_migrations (version bigint primary key, name text not null, checksum text not null,
             applied_at timestamptz not null default now())",
    )
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query("insert into schema_migrations (version, name, checksum) values (1, 'baseline', $1)")
        .bind(baseline.checksum())
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::raw_sql(
        "select set_config('tenantry.platform', 'on', false);
         insert into tiers (name, rank, max_users, max_documents, max_queries_per_day, max_storage_gb,
             rate_limit_per_minute, sla_target, support_level, isolation, retention_days)
         values ('bronze', 10, 10, 10, 10, 1, 10, 0.99, 'email', 'shared_namespace', 30);
         insert into tenants (tenant_id, name, tier, max_users, max_documents, max_queries_per_day, max_storage_gb,
             rate_limit_per_minute, sla_target, support_level, status, status_changed_at, data_region, version)
         select t, t, 'bronze', 10, 10, 10, 1, 10, 0.99, 'email', 'active', now(), 'eu', 1
         from unnest(array['acme', 'beta', 'gamma']) t;
         insert into flag_definitions (flag_key, kind, description, created_at, version, updated_at) values
             ('banner', 'string', 'acme''s banner', now(), 3, now()), ('ranking', 'boolean', 'platform', now(), 2, now());
         insert into flag_defaults (scope, scope_id, flag_key, value) values ('global', '', 'ranking', 'false');
         insert into tenant_flags (tenant_id, flag_key, value) values
             ('acme', 'banner', '\"hi\"'), ('beta', 'banner', '\"yo\"'), ('acme', 'ranking', 'true');",
    )
    .execute(&mut db)
    .await
    .unwrap();
    drop(db);

    migrate(&config).await.expect("migration 2 applies over existing data");
    let mut db = owner(&config).await;
    sqlx::query("select set_config('tenantry.platform', 'on', false)").execute(&mut db).await.unwrap();
    let platform: Vec<String> =
        sqlx::query_scalar("select flag_key from flag_definitions order by flag_key").fetch_all(&mut db).await.unwrap();
    assert_eq!(platform, ["ranking"], "a key with a platform value stays the platform's");
    let own: Vec<(String, String, String)> =
        sqlx::query_as("select tenant_id, flag_key, kind from tenant_flag_definitions order by tenant_id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let banner = |t: &str| (t.to_owned(), "banner".to_owned(), "string".to_owned());
    assert_eq!(own, [banner("acme"), banner("beta")], "each tenant using the key owns it now");
    let values: Vec<(i64, bool)> =
        sqlx::query_as("select version, platform_set from tenant_flags").fetch_all(&mut db).await.unwrap();
    assert_eq!(values.len(), 3);
    assert!(values.iter().all(|(version, set)| *version == 1 && !set), "{values:?}");
    let rates: Vec<(i64, i64)> =
        sqlx::query_as("select ingest_documents_per_second, ingest_bytes_per_second from tenants")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert!(rates.iter().all(|r| *r == (5, 1_048_576)), "bronze's rates reached its tenants: {rates:?}");
    drop(db);
    sqlx::raw_sql(AssertSqlSafe(format!("drop database {name} with (force)"))).execute(&mut admin).await.unwrap();
}
