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

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use tenantry_app::ports::{
    AuditRecord, ChunkHit, DocumentStore, DocumentWrite, IndexUsage, PlacementDecision, StoredDocument, TenantPlacement,
};
use tenantry_app::{PlatformScope, StoreError, TenantScope};
use tenantry_domain::{
    DataUsage, DocumentId, IngestQuota, Metadata, PlacementPlan, SearchInputs, SearchPlan, TenantId, plan_search,
};
use tenantry_store_sql::documents::{
    DocumentColumns, IndexColumns, PlacementColumns, batch_totals, document_from_columns, hit_from_columns,
    index_from_columns, index_kind_str, placement_from_columns, placement_kind_str, quota_refusal,
};
use tenantry_store_sql::{document_columns, insert_error, store_error};

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
    /// `select * from public.<partition>_search($1, $2, $3, $4, $5)`
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
            sql: format!("select * from public.{partition}_search($1, $2, $3, $4, $5)").into(),
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

async fn placement(tx: &mut Tx, tenant: &TenantId) -> Result<Option<TenantPlacement>, StoreError> {
    sqlx::query_as::<_, PlacementColumns>(
        "select p.index_name, p.kind, i.dimensions::bigint, p.placed_at from tenant_placements p
         join vector_indexes i on i.index_name = p.index_name where p.tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut **tx)
    .await
    .map_err(|e| store_error(e, "read placement"))?
    .map(placement_from_columns)
    .transpose()
}

async fn usage(tx: &mut Tx, tenant: &TenantId) -> Result<DataUsage, StoreError> {
    let row: Option<(i64, i64, i64)> =
        sqlx::query_as("select documents, bytes, chunks from tenant_usage where tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| store_error(e, "read usage"))?;
    Ok(row.map(|(documents, bytes, chunks)| DataUsage { documents, bytes, chunks }).unwrap_or_default())
}

const POOL_SQL: &str = "select i.index_name, i.kind, i.capacity,
        (select count(*) from tenant_placements p where p.index_name = i.index_name),
        i.dimensions::bigint, 0::bigint, i.created_at
     from vector_indexes i order by i.index_id";

#[async_trait]
impl DocumentStore for PgStore {
    async fn index_pool(&self, access: &PlatformScope) -> Result<Vec<IndexUsage>, StoreError> {
        let mut tx = self.platform_tx(access).await?;
        let rows = sqlx::query_as::<_, IndexColumns>(
            "select i.index_name, i.kind, i.capacity,
                    (select count(*) from tenant_placements p where p.index_name = i.index_name),
                    i.dimensions::bigint,
                    (select count(*) from chunks c where c.index_name = i.index_name),
                    i.created_at
             from vector_indexes i order by i.index_id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| store_error(e, "list indexes"))?;
        rows.into_iter().map(index_from_columns).collect()
    }

    async fn tenant_placement(&self, scope: &TenantScope) -> Result<Option<TenantPlacement>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        placement(&mut tx, scope.tenant()).await
    }

    async fn place_tenant(
        &self,
        access: &PlatformScope,
        tenant: &TenantId,
        dimensions: u32,
        decide: PlacementDecision<'_>,
    ) -> Result<Option<PlacementPlan>, StoreError> {
        let mut tx = self.platform_tx(access).await?;
        // the pool's lock (the provisioning function takes another): placements are serialized
        sqlx::query("select pg_advisory_xact_lock(7364, 0)")
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "lock index pool"))?;
        if placement(&mut tx, tenant).await?.is_some() {
            return Ok(None);
        }
        let pool = sqlx::query_as::<_, IndexColumns>(POOL_SQL)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| store_error(e, "read index pool"))?;
        let pool: Vec<_> = pool
            .into_iter()
            .map(index_from_columns)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|u| u.index)
            .collect();
        let (plan, audit) = decide(&pool);
        for index in &plan.provision {
            sqlx::query("select tenantry_provision_index($1, $2, $3, $4)")
                .bind(index.name.as_str())
                .bind(index_kind_str(index.kind))
                .bind(i64::from(index.capacity))
                .bind(dimensions as i32)
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(e, "provision index"))?;
        }
        sqlx::query("insert into tenant_placements (tenant_id, index_name, kind, placed_at) values ($1, $2, $3, $4)")
            .bind(tenant.as_str())
            .bind(plan.placement.index().as_str())
            .bind(placement_kind_str(&plan.placement))
            .bind(audit.at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                _ => store_error(e, "record placement"),
            })?;
        self.seal(&mut tx, &audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit placement"))?;
        Ok(Some(plan))
    }

    async fn insert_documents(
        &self,
        scope: &TenantScope,
        writes: &[DocumentWrite],
        quota: IngestQuota,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant();
        let mut tx = self.tenant_tx(scope).await?;
        let place = placement(&mut tx, tenant).await?.ok_or(StoreError::NotFound)?;
        sqlx::query("insert into tenant_usage (tenant_id) values ($1) on conflict (tenant_id) do nothing")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "create usage"))?;
        let (documents, bytes, chunks) = batch_totals(writes);
        // One conditional update: it takes the usage row's lock, so concurrent ingests of one
        // tenant queue here and each sees the others' committed counts.
        let admitted = sqlx::query(
            "update tenant_usage set documents = documents + $2, bytes = bytes + $3, chunks = chunks + $4
             where tenant_id = $1 and documents + $2 <= $5 and bytes + $3 <= $6",
        )
        .bind(tenant.as_str())
        .bind(documents)
        .bind(bytes)
        .bind(chunks)
        .bind(quota.max_documents)
        .bind(quota.max_bytes)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(e, "count usage"))?
        .rows_affected();
        if admitted == 0 {
            let current = usage(&mut tx, tenant).await?;
            return Err(quota_refusal(quota, current, writes));
        }
        for w in writes {
            let d = &w.document;
            sqlx::query(concat!(
                "insert into documents (tenant_id, ",
                document_columns!(),
                ") values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(tenant.as_str())
            .bind(d.id.as_str())
            .bind(d.client_id.as_deref())
            .bind(&d.title)
            .bind(Json(d.metadata.to_value()))
            .bind(d.bytes)
            .bind(d.chunk_count)
            .bind(d.token_count)
            .bind(&d.embedding_model)
            .bind(&d.object_key)
            .bind(d.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                insert_error(
                    e,
                    || format!("a document with client_id {:?}", d.client_id.as_deref().unwrap_or("")),
                    "insert document",
                )
            })?;
            // all chunks of the document in one statement
            let n = w.chunks.len();
            let indexes: Vec<i32> = w.chunks.iter().map(|c| c.index).collect();
            let texts: Vec<&str> = w.chunks.iter().map(|c| c.text.as_str()).collect();
            let starts: Vec<i64> = w.chunks.iter().map(|c| c.start).collect();
            let ends: Vec<i64> = w.chunks.iter().map(|c| c.end).collect();
            let vectors: Vec<PgVector<'_>> = w.chunks.iter().map(|c| PgVector(&c.embedding)).collect();
            if n > 0 {
                sqlx::query(
                    "insert into chunks (tenant_id, index_name, document_id, chunk_index, content, start_byte, end_byte,
                                         metadata, embedding)
                     select $1, $2, $3, u.i, u.t, u.s, u.e, $4, u.v
                     from unnest($5::int[], $6::text[], $7::bigint[], $8::bigint[], $9::vector[]) as u(i, t, s, e, v)",
                )
                .bind(tenant.as_str())
                .bind(place.placement.index().as_str())
                .bind(d.id.as_str())
                .bind(Json(d.metadata.to_value()))
                .bind(indexes)
                .bind(texts)
                .bind(starts)
                .bind(ends)
                .bind(vectors)
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(e, "insert chunks"))?;
            }
            self.seal(&mut tx, &w.audit).await?;
        }
        tx.commit().await.map_err(|e| store_error(e, "commit documents"))?;
        self.search.forget(tenant);
        Ok(())
    }

    async fn list_documents(
        &self,
        scope: &TenantScope,
        after: Option<&DocumentId>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let rows = sqlx::query_as::<_, DocumentColumns>(concat!(
            "select ",
            document_columns!(),
            " from documents where tenant_id = $1 and ($2::text is null or document_id > $2) order by document_id limit $3"
        ))
        .bind(scope.tenant().as_str())
        .bind(after.map(DocumentId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| store_error(e, "list documents"))?;
        rows.into_iter().map(document_from_columns).collect()
    }

    async fn get_document(&self, scope: &TenantScope, id: &DocumentId) -> Result<Option<StoredDocument>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sqlx::query_as::<_, DocumentColumns>(concat!(
            "select ",
            document_columns!(),
            " from documents where tenant_id = $1 and document_id = $2"
        ))
        .bind(scope.tenant().as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| store_error(e, "read document"))?
        .map(document_from_columns)
        .transpose()
    }

    async fn delete_document(
        &self,
        scope: &TenantScope,
        id: &DocumentId,
        audit: &AuditRecord,
    ) -> Result<StoredDocument, StoreError> {
        let tenant = scope.tenant();
        let mut tx = self.tenant_tx(scope).await?;
        sqlx::query("delete from chunks where tenant_id = $1 and document_id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "delete chunks"))?;
        let doc = sqlx::query_as::<_, DocumentColumns>(concat!(
            "delete from documents where tenant_id = $1 and document_id = $2 returning ",
            document_columns!()
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| store_error(e, "delete document"))?
        .map(document_from_columns)
        .transpose()?
        .ok_or(StoreError::NotFound)?;
        sqlx::query(
            "update tenant_usage set documents = documents - 1, bytes = bytes - $2, chunks = chunks - $3
             where tenant_id = $1",
        )
        .bind(tenant.as_str())
        .bind(doc.bytes)
        .bind(doc.chunk_count)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(e, "count usage"))?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit delete"))?;
        self.search.forget(tenant);
        Ok(doc)
    }

    async fn data_usage(&self, scope: &TenantScope) -> Result<DataUsage, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        usage(&mut tx, scope.tenant()).await
    }

    async fn search(
        &self,
        scope: &TenantScope,
        place: &TenantPlacement,
        vector: &[f32],
        top_k: u32,
        filter: &Metadata,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        let tenant = scope.tenant();
        if vector.len() != place.dimensions as usize {
            return Err(StoreError::ConstraintViolated(format!(
                "the query vector has {} dimensions; the tenant's index holds {}",
                vector.len(),
                place.dimensions
            )));
        }
        let index = place.placement.index().as_str();
        let plan = self.search_plan(scope, index, top_k, !filter.is_empty()).await?;
        let ef_search = match plan {
            SearchPlan::Exact => 0,
            SearchPlan::Hnsw { ef_search } => ef_search,
        };
        // One round trip: the function sets the tenant's RLS context and the plan's settings for
        // this statement only, runs the plan, and falls back to the exact scan when short
        let sql = self.index_search(index).await?.sql;
        let query = sqlx::query_as(sqlx::AssertSqlSafe(&*sql))
            .bind(tenant.as_str())
            .bind(PgVector(vector))
            .bind(Json(filter.to_value()))
            .bind(top_k as i32)
            .bind(ef_search as i32);
        let query = query.fetch_all(&self.pool).await;
        let rows: Vec<SearchRow> = query.map_err(|e| store_error(e, "search chunks"))?;
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
