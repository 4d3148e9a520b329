//! The shared test-database helpers (`tenantry_store_postgres::testing`).

pub use tenantry_store_postgres::testing::*;
