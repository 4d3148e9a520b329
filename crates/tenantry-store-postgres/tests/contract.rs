//! The store contract suite against PostgreSQL, as the application role, one database per test.

mod common;

use std::sync::Arc;

use tenantry_app::ports::Store;

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(common::fresh_store().await?) as Arc<dyn Store>)
}

tenantry_contract::contract_suite!(fresh().await);

mod data {
    tenantry_contract::data_suite!(super::fresh().await);
}

mod ledger {
    tenantry_contract::ledger_suite!(super::fresh().await);
}

mod answers {
    tenantry_contract::answers_suite!(super::fresh().await);
}

mod cache {
    tenantry_contract::cache_suite!(super::fresh().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_last_snapshot_when_the_store_is_down() {
    let Some(store) = common::fresh_store().await else { return };
    let pool = store.pool().clone();
    tenantry_contract::cache::serves_the_last_snapshot_when_the_store_is_down(Arc::new(store), async move {
        pool.close().await
    })
    .await;
}
