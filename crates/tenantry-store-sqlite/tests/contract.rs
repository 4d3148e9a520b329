//! The store contract suite against the embedded SQLite backend — a fresh database file per test,
//! opened as production opens it (WAL, four connections) — plus persistence across reopen.

use std::sync::Arc;

use tenantry_app::ports::Store;
use tenantry_store_sqlite::SqliteStore;

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(SqliteStore::open_temporary().await.expect("open sqlite")))
}

tenantry_contract::contract_suite!(fresh().await);

#[tokio::test]
async fn data_survives_reopen_and_migrations_are_idempotent() {
    let dir = std::env::temp_dir().join(format!("tenantry-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).await.unwrap());
        let ctx = tenantry_contract::Ctx::new(store).await;
        tenantry_contract::create(&ctx, "durable", "gold").await;
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).await.unwrap());
    let ctx = tenantry_contract::Ctx::new(store).await;
    let t = ctx.registry.get_tenant(&ctx.admin.act_in(tenantry_contract::tid("durable"))).await.unwrap();
    assert_eq!(t.tier.as_str(), "gold");
    assert_eq!(ctx.registry.list_tiers().await.unwrap().len(), 4, "tiers seeded once");
    std::fs::remove_dir_all(&dir).unwrap();
}

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
    let store = SqliteStore::open_temporary().await.unwrap();
    let pool = store.pool().clone();
    tenantry_contract::cache::serves_the_last_snapshot_when_the_store_is_down(Arc::new(store), async move {
        pool.close().await
    })
    .await;
}
