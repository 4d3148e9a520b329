//! The store contract suite against PostgreSQL, as the application role, one database per test.

mod common;

use std::sync::Arc;

use tenantry_app::ports::Store;

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(common::fresh_store().await?) as Arc<dyn Store>)
}

tenantry_contract::contract_suite!(fresh().await);
