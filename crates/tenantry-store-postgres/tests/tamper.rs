//! The audit tamper suite on PostgreSQL: raw SQL as the schema owner with the append-only
//! triggers disabled and the platform RLS context set — what a DBA can do (a superuser, more).

mod common;

use std::sync::Arc;

use sqlx::{Connection, PgConnection};
use tenantry_app::ports::Store;
use tenantry_contract::tamper::{RawAccess, signing_key};
use tenantry_store_postgres::{PgConfig, PgStore};

struct Raw(PgConfig);

#[async_trait::async_trait]
impl RawAccess for Raw {
    async fn exec_unprotected(&self, sql: &str) {
        let mut conn = PgConnection::connect(&self.0.owner_url).await.expect("connect as owner");
        let unprotected = format!(
            "begin;
             select set_config('tenantry.platform', 'on', true);
             alter table audit_log disable trigger user;
             alter table audit_checkpoints disable trigger user;
             alter table audit_head disable trigger user;
             {sql};
             alter table audit_log enable trigger user;
             alter table audit_checkpoints enable trigger user;
             alter table audit_head enable trigger user;
             commit;"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(unprotected)).execute(&mut conn).await.expect("raw tampering SQL runs");
    }
}

async fn make() -> Option<(Arc<dyn Store>, Arc<dyn RawAccess>)> {
    let mut config = common::fresh_config().await?;
    config.migrate = false;
    config.pool_size = 4;
    let store = PgStore::connect(&config).await.expect("connect as the app role").with_signer(signing_key());
    Some((Arc::new(store), Arc::new(Raw(config))))
}

tenantry_contract::tamper_suite!(make().await);
