//! A small tenant on a busy shared index, with enough data that its search takes the HNSW path
//! (iterative scan under the tenant filter, `ef_search` from `plan_search`): it still gets top_k,
//! only its own chunks, and recall@10 against the exact answer stays high.

mod common;

use std::sync::Arc;

use serde_json::json;
use sqlx::Connection;
use tenantry_app::ports::Store;
use tenantry_domain::documents::synthetic_text;
use tenantry_domain::embedding::local_embedding;
use tenantry_domain::{NewDocument, QuerySpec, SearchPlan};
use tenantry_store_postgres::PgStore;
use tenantry_store_postgres::pgvector::PgVector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_tenant_on_a_busy_index_searches_hnsw_with_high_recall() {
    let Some(mut config) = common::fresh_config().await else { return };
    config.migrate = false;
    config.pool_size = 4;
    let pg = PgStore::connect(&config).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let data = tenantry_contract::data::DataCtx::new(store).await;
    data.tenant("busy", "gold").await;
    data.tenant("small", "gold").await;
    // one chunk per document (20 words; the tests chunk at 40)
    let text = |tenant: &str, i: u64| synthetic_text(if tenant == "small" { 1_000_000 + i } else { i }, 20);
    for (tenant, docs) in [("busy", 2000u64), ("small", 1000)] {
        for start in (0..docs).step_by(100) {
            let batch: Vec<NewDocument> = (start..start + 100)
                .map(|i| NewDocument::new(&format!("{tenant} {i}"), text(tenant, i), &json!({}), None).unwrap())
                .collect();
            data.plane.ingest(&data.scope(tenant), batch).await.unwrap();
            // paced like a client within gold's ingest rate (50 documents per second)
            data.clock.advance(time::Duration::seconds(2));
        }
    }
    // as autovacuum would after a bulk load: the plan needs the index's analyzed size
    let mut owner = sqlx::PgConnection::connect(&config.owner_url).await.unwrap();
    sqlx::query("analyze chunks").execute(&mut owner).await.unwrap();
    let small = data.scope("small");
    let plan = pg.search_plan(&small, "shared-1", 10, false).await.unwrap();
    assert!(matches!(plan, SearchPlan::Hnsw { .. }), "1,000 of 3,000 chunks must take HNSW: {plan:?}");

    let mut recall = 0.0;
    let queries = 20;
    for q in 0..queries {
        let vector = local_embedding(&text("small", q * 37), tenantry_contract::DIMS);
        let spec =
            QuerySpec::new(None, Some(vector.clone()), Some(10), &serde_json::Value::Null, tenantry_contract::DIMS)
                .unwrap();
        let hits = data.plane.query(&small, spec).await.unwrap().hits;
        assert_eq!(hits.len(), 10, "top_k for the small tenant");
        let ids: Vec<(String, i32)> = hits.iter().map(|h| (h.document_id.to_string(), h.chunk_index)).collect();
        // the exact answer, on the platform path as the owner (every row scored, no index)
        let mut tx = owner.begin().await.unwrap();
        sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await.unwrap();
        let truth: Vec<(String, i32)> = sqlx::query_as(
            "select document_id, chunk_index from chunks where tenant_id = 'small'
             order by (embedding <=> $1) + 0 limit 10",
        )
        .bind(PgVector(&vector))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let owners: Vec<String> =
            sqlx::query_scalar("select distinct tenant_id from chunks where document_id = any($1)")
                .bind(ids.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(owners, ["small"], "only the small tenant's chunks");
        recall += ids.iter().filter(|id| truth.contains(id)).count() as f64 / truth.len() as f64;
    }
    let recall = recall / queries as f64;
    assert!(recall >= 0.9, "recall@10 on the HNSW path: {recall:.3}");
}
