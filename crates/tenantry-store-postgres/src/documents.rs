//! The data plane on PostgreSQL: documents, and chunks in the `chunks` table partitioned by
//! physical index, each partition with its own HNSW index (pgvector, cosine). Three layers keep a
//! tenant inside its own data: the tenant transaction's RLS context, the partition chosen from the
//! tenant's recorded placement, and an explicit `tenant_id` filter in every statement.
//!
//! Search goes through the partition's own function (`<partition>_search`, created with the
//! partition): static SQL, planned once per connection, one round trip. The store chooses the
//! path with the domain's `plan_search` — the exact scan of the tenant's rows, or HNSW at an
//! `ef_search` sized to the index and to the tenant's share of it — from the tenant's chunk count
//! and the partition's analyzed size, read at most every [`STATS_TTL`] per tenant (and again
//! after this store's own ingest or delete for the tenant). HNSW runs with iterative scans
//! (`hnsw.iterative_scan = strict_order`), so the tenant filter cannot starve the result; if the
//! index still returns fewer than `top_k` rows, the exact answer follows. A tenant with at least
//! `top_k` matching chunks therefore always gets `top_k`, whatever counts the plan was made from.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use tenantry_app::ports::{ChunkHit, StoredChunk, StoredDocument, TenantPlacement};
use tenantry_app::{StoreError, TenantScope};
use tenantry_domain::{Metadata, PhysicalIndex, SearchInputs, SearchPlan, TenantId, plan_search};
use tenantry_store_sql::documents::{hit_from_columns, index_kind_str};
use tenantry_store_sql::store_error;

use crate::PgStore;
use crate::pgvector::PgVector;

type Tx = Transaction<'static, Postgres>;

/// A search function's row: document, chunk index, text, metadata, title, score.
type SearchRow = (String, i32, String, Json<serde_json::Value>, String, f32);

/// How long the counts a search plan is made from are reused. Another replica's ingest reaches
/// this one's plans at most this late; the answer is complete either way, only the path and
/// `ef_search` may lag.
pub const STATS_TTL: Duration = Duration::from_secs(5);
/// Above this many tenants with cached counts, the cache starts over (bounded memory).
const MAX_CACHED_TENANTS: usize = 100_000;

/// Each index's search statement, by index name, and per tenant the counts its plan is made from.
#[derive(Default)]
pub struct SearchCatalog {
    statements: RwLock<HashMap<String, IndexSearch>>,
    counts: RwLock<HashMap<TenantId, SearchCounts>>,
}

#[derive(Clone)]
struct IndexSearch {
    /// The search statement: sets the tenant context, then `public.<partition>_search(...)`
    sql: Arc<str>,
    /// `public.chunks_i<id>`
    partition: Arc<str>,
}

#[derive(Clone, Copy)]
struct SearchCounts {
    tenant_rows: u64,
    index_rows: Option<f64>,
    read_at: Instant,
}

impl SearchCatalog {
    /// Drops a tenant's counts: its next search reads them again.
    fn forget(&self, tenant: &TenantId) {
        self.counts.write().unwrap_or_else(|p| p.into_inner()).remove(tenant);
    }
}

impl PgStore {
    /// The statement that searches index `index` through its own function. Its name is read
    /// once from the pool catalog; indexes are never renamed, so an entry never goes stale.
    async fn index_search(&self, index: &str) -> Result<IndexSearch, StoreError> {
        if let Some(found) = self.search.statements.read().unwrap_or_else(|p| p.into_inner()).get(index) {
            return Ok(found.clone());
        }
        let partition: Option<String> =
            sqlx::query_scalar("select partition from vector_indexes where index_name = $1")
                .bind(index)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| store_error(e, "read index"))?;
        // `partition` is written only by `tenantry_provision_index` as `chunks_i<id>`; checked
        // again here because it is spliced into the statement
        let partition = partition
            .filter(|p| {
                p.strip_prefix("chunks_i").is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            })
            .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("no index {index} in the pool")))?;
        let found = IndexSearch {
            // the statement sets the tenant context first; the function runs only for that tenant
            sql: format!(
                "select f.* from (select set_config('tenantry.tenant_id', $1, true) as tenant) s
                 cross join lateral public.{partition}_search(s.tenant, $2, $3, $4, $5) f"
            )
            .into(),
            partition: format!("public.{partition}").into(),
        };
        self.search.statements.write().unwrap_or_else(|p| p.into_inner()).insert(index.to_owned(), found.clone());
        Ok(found)
    }

    /// The tenant's chunk count (its own usage row, under RLS) and the partition's size as of its
    /// last ANALYZE (`reltuples`, what the planner itself uses; negative when never analyzed).
    async fn search_counts(&self, scope: &TenantScope, partition: &str) -> Result<SearchCounts, StoreError> {
        let tenant = scope.tenant();
        let cached = self.search.counts.read().unwrap_or_else(|p| p.into_inner()).get(tenant).copied();
        if let Some(counts) = cached.filter(|c| c.read_at.elapsed() < STATS_TTL) {
            return Ok(counts);
        }
        let mut tx = self.tenant_tx(scope).await?;
        let (rows, reltuples): (Option<i64>, Option<f32>) = sqlx::query_as(
            "select (select chunks from tenant_usage where tenant_id = $1),
                    (select reltuples from pg_catalog.pg_class where oid = $2::text::regclass)",
        )
        .bind(tenant.as_str())
        .bind(partition)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| store_error(e, "read search counts"))?;
        tx.commit().await.map_err(|e| store_error(e, "end search counts"))?;
        let counts = SearchCounts {
            tenant_rows: rows.unwrap_or(0).max(0) as u64,
            index_rows: reltuples.map(f64::from).filter(|n| *n >= 0.0),
            read_at: Instant::now(),
        };
        let mut all = self.search.counts.write().unwrap_or_else(|p| p.into_inner());
        if all.len() >= MAX_CACHED_TENANTS {
            all.clear();
        }
        all.insert(tenant.clone(), counts);
        Ok(counts)
    }

    /// The plan the next search of `scope`'s tenant on `index` runs (for tests and benchmarks:
    /// the raw side of the data-plane benchmark issues the same statement).
    pub async fn search_plan(
        &self,
        scope: &TenantScope,
        index: &str,
        top_k: u32,
        filtered: bool,
    ) -> Result<SearchPlan, StoreError> {
        let target = self.index_search(index).await?;
        let counts = self.search_counts(scope, &target.partition).await?;
        Ok(plan_search(SearchInputs {
            tenant_rows: counts.tenant_rows,
            index_rows: counts.index_rows,
            top_k,
            filtered,
        }))
    }
}

tenantry_store_sql::document_store!(PgStore, Postgres);

/// The backend's own parts of `DocumentStore` (the rest is `document_store!`).
impl PgStore {
    /// The pool's lock (the provisioning function takes another): placements are serialized.
    async fn lock_placements(&self, tx: &mut Tx) -> Result<(), StoreError> {
        sqlx::query("select pg_advisory_xact_lock(7364, 0)")
            .execute(&mut **tx)
            .await
            .map_err(|e| store_error(e, "lock index pool"))?;
        Ok(())
    }

    /// A partition of `chunks` with its HNSW index and search function, through the SECURITY
    /// DEFINER `tenantry_provision_index` (the app role owns nothing and runs no DDL).
    async fn provision_index(
        &self,
        tx: &mut Tx,
        index: &PhysicalIndex,
        dimensions: u32,
        _at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("select tenantry_provision_index($1, $2, $3, $4)")
            .bind(index.name.as_str())
            .bind(index_kind_str(index.kind))
            .bind(i64::from(index.capacity))
            .bind(dimensions as i32)
            .execute(&mut **tx)
            .await
            .map_err(|e| store_error(e, "provision index"))?;
        Ok(())
    }

    /// All chunks of a document in one statement (`unnest` over arrays, vectors in binary).
    async fn insert_chunks(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        index: &str,
        document: &StoredDocument,
        chunks: &[StoredChunk],
    ) -> Result<(), StoreError> {
        let indexes: Vec<i32> = chunks.iter().map(|c| c.index).collect();
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        let starts: Vec<i64> = chunks.iter().map(|c| c.start).collect();
        let ends: Vec<i64> = chunks.iter().map(|c| c.end).collect();
        let vectors: Vec<PgVector<'_>> = chunks.iter().map(|c| PgVector(&c.embedding)).collect();
        sqlx::query(
            "insert into chunks (tenant_id, index_name, document_id, chunk_index, content, start_byte, end_byte,
                                 metadata, embedding)
             select $1, $2, $3, u.i, u.t, u.s, u.e, $4, u.v
             from unnest($5::int[], $6::text[], $7::bigint[], $8::bigint[], $9::vector[]) as u(i, t, s, e, v)",
        )
        .bind(tenant.as_str())
        .bind(index)
        .bind(document.id.as_str())
        .bind(Json(document.metadata.to_value()))
        .bind(indexes)
        .bind(texts)
        .bind(starts)
        .bind(ends)
        .bind(vectors)
        .execute(&mut **tx)
        .await
        .map_err(|e| store_error(e, "insert chunks"))?;
        Ok(())
    }

    /// The tenant's counts changed: its next search plan reads them again.
    fn after_write(&self, tenant: &TenantId) {
        self.search.forget(tenant);
    }

    async fn search_chunks(
        &self,
        scope: &TenantScope,
        place: &TenantPlacement,
        vector: &[f32],
        top_k: u32,
        filter: &Metadata,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        let tenant = scope.tenant();
        let index = place.placement.index().as_str();
        let plan = self.search_plan(scope, index, top_k, !filter.is_empty()).await?;
        let ef_search = match plan {
            SearchPlan::Exact => 0,
            SearchPlan::Hnsw { ef_search } => ef_search,
        };
        // One round trip: the statement sets the tenant's RLS context for itself only, the function
        // checks it, sets the plan's settings, runs the plan, and falls back to the exact scan
        let sql = self.index_search(index).await?.sql;
        let query = sqlx::query_as(sqlx::AssertSqlSafe(&*sql))
            .bind(tenant.as_str())
            .bind(PgVector(vector))
            .bind(Json(filter.to_value()))
            .bind(top_k as i32)
            .bind(ef_search as i32);
        let rows: Vec<SearchRow> = self.guarded(query.fetch_all(&self.pool), "search chunks").await?;
        top_k_of(rows, top_k as usize)
            .into_iter()
            .map(|(doc, index, text, metadata, title, score)| {
                hit_from_columns(&doc, index, text, &metadata.0, title, score)
            })
            .collect()
    }
}

/// The best `k` rows by score (ties by document and chunk), each chunk once. A search function
/// that fell back returns the short approximate answer followed by the exact one; every
/// row carries its exact score, so this is the exact top k. Any other answer is already in this
/// order, up to ties.
fn top_k_of(mut rows: Vec<SearchRow>, k: usize) -> Vec<SearchRow> {
    rows.sort_by(|a, b| b.5.total_cmp(&a.5).then_with(|| (&a.0, a.1).cmp(&(&b.0, b.1))));
    rows.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    rows.truncate(k);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(doc: &str, chunk: i32, score: f32) -> SearchRow {
        (doc.to_owned(), chunk, String::new(), Json(serde_json::json!({})), "t".to_owned(), score)
    }

    #[test]
    fn a_short_answer_followed_by_the_exact_one_merges_into_the_exact_top_k() {
        // the index found two rows, one of them not in the exact top 3 (can't happen with exact
        // distances, but the merge must not care), then the exact top 3
        let rows =
            vec![row("d-1", 0, 0.9), row("d-2", 4, 0.5), row("d-1", 0, 0.9), row("d-3", 1, 0.8), row("d-3", 0, 0.8)];
        let got: Vec<(String, i32)> = top_k_of(rows, 3).into_iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(got, [("d-1".to_owned(), 0), ("d-3".to_owned(), 0), ("d-3".to_owned(), 1)]);
        // fewer rows than k: every chunk once
        let rows = vec![row("d-1", 0, 0.9), row("d-1", 1, 0.2), row("d-1", 0, 0.9), row("d-1", 1, 0.2)];
        assert_eq!(top_k_of(rows, 5).len(), 2);
    }
}
