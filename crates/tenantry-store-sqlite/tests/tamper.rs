//! The audit tamper suite on the embedded store: raw SQL on the same database file, with the
//! append-only triggers dropped, as someone with the file would.

use std::sync::Arc;

use tenantry_app::ports::Store;
use tenantry_contract::tamper::{RawAccess, signing_key};
use tenantry_store_sqlite::SqliteStore;

struct Raw(sqlx::SqlitePool);

#[async_trait::async_trait]
impl RawAccess for Raw {
    async fn exec_unprotected(&self, sql: &str) {
        let unprotected = format!(
            "drop trigger if exists audit_log_no_update; drop trigger if exists audit_log_no_delete;
             drop trigger if exists audit_checkpoints_no_update; drop trigger if exists audit_checkpoints_no_delete;
             drop trigger if exists audit_head_follows_the_log;
             {sql}"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(unprotected)).execute(&self.0).await.expect("raw tampering SQL runs");
    }
}

async fn make() -> Option<(Arc<dyn Store>, Arc<dyn RawAccess>)> {
    let store = SqliteStore::open_temporary().await.expect("open sqlite").with_signer(signing_key());
    let raw = Arc::new(Raw(store.pool().clone()));
    Some((Arc::new(store), raw))
}

tenantry_contract::tamper_suite!(make().await);
