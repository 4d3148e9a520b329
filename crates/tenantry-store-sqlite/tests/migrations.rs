//! Migration history on SQLite: a database whose applied migration no longer matches this
//! binary's file, that records a migration this binary does not know, or that predates checksums
//! is refused at open, before anything runs; two stores opening one new file together migrate
//! it once.

use std::path::PathBuf;

use sqlx::Connection;
use tenantry_store_sqlite::{DB_FILE, SqliteStore};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenantry-migrations-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn tamper(dir: &std::path::Path, sql: &'static str) {
    let url = format!("sqlite://{}", dir.join(DB_FILE).display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut db).await.unwrap();
    db.close().await.unwrap();
}

async fn refusal(dir: &std::path::Path) -> String {
    match SqliteStore::open(dir).await {
        Ok(_) => panic!("the store opened a database with a broken migration history"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn an_applied_migration_that_changed_is_refused() {
    let dir = fresh_dir("edited");
    drop(SqliteStore::open(&dir).await.unwrap());
    drop(SqliteStore::open(&dir).await.expect("a second open finds everything applied"));
    tamper(&dir, "update schema_migrations set checksum = 'aaaa' where version = 1").await;
    let err = refusal(&dir).await;
    assert!(err.contains("migration 1 (baseline) was changed after it was applied"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_migration_this_binary_does_not_know_is_refused() {
    let dir = fresh_dir("unknown");
    drop(SqliteStore::open(&dir).await.unwrap());
    tamper(
        &dir,
        "insert into schema_migrations (version, name, checksum, applied_at) values (99, 'from_the_future', 'b', 'now')",
    )
    .await;
    let err = refusal(&dir).await;
    assert!(err.contains("migration 99 (from_the_future), which this binary does not know"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_database_from_before_checksums_is_refused_with_the_reason() {
    let dir = fresh_dir("pre-release");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join(DB_FILE)).unwrap();
    // the shape pre-release builds wrote
    tamper(
        &dir,
        "create table schema_migrations (version integer primary key, name text not null, applied_at text not null);
         insert into schema_migrations values (1, 'registry', 'then')",
    )
    .await;
    let err = refusal(&dir).await;
    assert!(err.contains("created by a pre-release build"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn two_stores_opening_one_new_database_migrate_it_once() {
    let dir = fresh_dir("race");
    let (a, b) = tokio::join!(SqliteStore::open(&dir), SqliteStore::open(&dir));
    let (a, _b) = (a.expect("first opener"), b.expect("second opener"));
    let n: i64 = sqlx::query_scalar("select count(*) from schema_migrations").fetch_one(a.pool()).await.unwrap();
    assert_eq!(n as usize, tenantry_store_sqlite::MIGRATIONS.len(), "each migration, once");
    let tiers: i64 = sqlx::query_scalar("select count(*) from tiers").fetch_one(a.pool()).await.unwrap();
    assert_eq!(tiers, 4, "the catalog seeded once");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The data directory and the database (with its journal files) are the service user's alone.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = fresh_dir("private").join("nested");
    let store = SqliteStore::open(&dir).await.unwrap();
    sqlx::query("select count(*) from tiers").fetch_one(store.pool()).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data directory");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path) & 0o077, 0, "{} is readable by others", path.display());
    }
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

/// Migration 2 on a database that has data: a key whose values were only tenant-level (defined
/// by whichever tenant used it first) moves into each using tenant's own namespace; a key with a
/// platform value stays the platform's; tenant values keep their data and get a version.
#[tokio::test]
async fn flag_ownership_migrates_existing_definitions() {
    let dir = fresh_dir("flag-ownership");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join(DB_FILE).display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let baseline = &tenantry_store_sqlite::MIGRATIONS[0];
    sqlx::raw_sql(baseline.sql).execute(&mut db).await.unwrap();
    sqlx::raw_sql(
        "create table schema_migrations (version integer primary key, name text not null, checksum text not null,
             applied_at text not null);
         insert into tiers (name, rank, description, max_users, max_documents, max_queries_per_day, max_storage_gb,
             rate_limit_per_minute, sla_target, support_level, isolation, retention_days)
         values ('gold', 30, '', 10, 10, 10, 1, 10, 0.99, 'email', 'shared_namespace', 30);",
    )
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query("insert into schema_migrations values (1, 'baseline', ?, 'then')")
        .bind(baseline.checksum())
        .execute(&mut db)
        .await
        .unwrap();
    for t in ["acme", "beta", "gamma"] {
        sqlx::query(
            "insert into tenants (tenant_id, name, tier, max_users, max_documents, max_queries_per_day, max_storage_gb,
                 rate_limit_per_minute, sla_target, support_level, status, status_changed_at, data_region, version,
                 created_at, updated_at)
             values (?, ?, 'gold', 10, 10, 10, 1, 10, 0.99, 'email', 'active', 'then', 'eu', 1, 'then', 'then')",
        )
        .bind(t)
        .bind(t)
        .execute(&mut db)
        .await
        .unwrap();
    }
    sqlx::raw_sql(
        "insert into flag_definitions (flag_key, kind, description, created_at, version, updated_at)
         values ('banner', 'string', 'acme''s banner', 'then', 3, 'then'), ('ranking', 'boolean', 'platform', 'then', 2, 'then');
         insert into flag_defaults (scope, scope_id, flag_key, value, updated_at) values ('global', '', 'ranking', 'false', 'then');
         insert into tenant_flags (tenant_id, flag_key, value, updated_at) values
             ('acme', 'banner', '\"hi\"', 'then'), ('beta', 'banner', '\"yo\"', 'then'), ('acme', 'ranking', 'true', 'then');",
    )
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();

    let store = SqliteStore::open(&dir).await.expect("migration 2 applies over existing data");
    let platform: Vec<String> = sqlx::query_scalar("select flag_key from flag_definitions order by flag_key")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(platform, ["ranking"], "a key with a platform value stays the platform's");
    let own: Vec<(String, String, String)> =
        sqlx::query_as("select tenant_id, flag_key, kind from tenant_flag_definitions order by tenant_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let banner = |t: &str| (t.to_owned(), "banner".to_owned(), "string".to_owned());
    assert_eq!(own, [banner("acme"), banner("beta")], "each tenant using the key owns it now");
    let values: Vec<(String, String, i64, bool)> = sqlx::query_as(
        "select tenant_id, flag_key, version, platform_set from tenant_flags order by tenant_id, flag_key",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(values.len(), 3);
    assert!(values.iter().all(|(_, _, version, set)| *version == 1 && !set), "{values:?}");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The chain head follows the log: a forged, rewound or advanced head is refused by the database.
#[tokio::test]
async fn the_audit_head_only_follows_the_log() {
    let store = SqliteStore::open_temporary().await.unwrap();
    for forged in
        ["update audit_head set hash = 'aaaa' where id = 1", "update audit_head set seq = seq + 2 where id = 1"]
    {
        let refused = sqlx::query(sqlx::AssertSqlSafe(forged)).execute(store.pool()).await.unwrap_err();
        assert!(refused.to_string().contains("audit_head only follows the audit log"), "{forged}: {refused}");
    }
}
