//! The data plane on SQLite: documents, chunks with embeddings as f32 blobs, searched exactly (a
//! full cosine scan of the tenant's chunks in Rust). Isolation is the filter on the scope's tenant
//! in every statement; placement picks the index, and the tenant filter still applies.

use sqlx::types::Json;

use tenantry_app::ports::{ChunkHit, StoredChunk, StoredDocument, TenantPlacement};
use tenantry_app::{StoreError, TenantScope};
use tenantry_domain::{Metadata, PhysicalIndex, TenantId};
use tenantry_store_sql::documents::{cosine_to_bytes, hit_from_columns, index_kind_str, vector_to_bytes};
use tenantry_store_sql::store_error;

use crate::SqliteStore;

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

tenantry_store_sql::document_store!(SqliteStore, sqlx::Sqlite);

/// The backend's own parts of `DocumentStore` (the rest is `document_store!`).
impl SqliteStore {
    /// SQLite's first write in a transaction takes the database's write lock: placements are
    /// serialized by it.
    async fn lock_placements(&self, _tx: &mut Tx) -> Result<(), StoreError> {
        Ok(())
    }

    async fn provision_index(
        &self,
        tx: &mut Tx,
        index: &PhysicalIndex,
        dimensions: u32,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "insert into vector_indexes (index_name, kind, capacity, dimensions, created_at) values ($1, $2, $3, $4, $5)
             on conflict (index_name) do nothing",
        )
        .bind(index.name.as_str())
        .bind(index_kind_str(index.kind))
        .bind(i64::from(index.capacity))
        .bind(i64::from(dimensions))
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(|e| store_error(e, "provision index"))?;
        Ok(())
    }

    /// One row per chunk, the vector as little-endian f32 bytes.
    async fn insert_chunks(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        index: &str,
        document: &StoredDocument,
        chunks: &[StoredChunk],
    ) -> Result<(), StoreError> {
        let metadata = Json(document.metadata.to_value());
        for c in chunks {
            sqlx::query(
                "insert into chunks (tenant_id, index_name, document_id, chunk_index, content, start_byte, end_byte,
                                     metadata, embedding) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(tenant.as_str())
            .bind(index)
            .bind(document.id.as_str())
            .bind(c.index)
            .bind(&c.text)
            .bind(c.start)
            .bind(c.end)
            .bind(&metadata)
            .bind(vector_to_bytes(&c.embedding))
            .execute(&mut **tx)
            .await
            .map_err(|e| store_error(e, "insert chunk"))?;
        }
        Ok(())
    }

    fn after_write(&self, _tenant: &TenantId) {}

    async fn search_chunks(
        &self,
        scope: &TenantScope,
        place: &TenantPlacement,
        vector: &[f32],
        top_k: u32,
        filter: &Metadata,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        // Score every chunk of the tenant in its index (exact), keep the best `top_k`, then read
        // the winners' text and titles in one statement. The two statements run outside a
        // transaction (BEGIN and ROLLBACK would be two more trips to SQLite's worker thread per
        // query); if a winner was deleted in between, the search runs again.
        for _attempt in 0..3 {
            if let Some(hits) = self.search_once(scope, place, vector, top_k, filter).await? {
                return Ok(hits);
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the tenant's chunks kept changing during the search; three attempts failed, retry the query"
        )))
    }
}

impl SqliteStore {
    /// All of `scope`'s chunks in `index`, as the columns `sql` selects (it binds tenant, index).
    async fn scan<R>(&self, sql: &'static str, scope: &TenantScope, index: &str) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(scope.tenant().as_str())
            .bind(index)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error(e, "scan chunks"))
    }

    /// One search; `None` if a winner vanished between the scan and the read of the winners.
    async fn search_once(
        &self,
        scope: &TenantScope,
        place: &TenantPlacement,
        vector: &[f32],
        top_k: u32,
        filter: &Metadata,
    ) -> Result<Option<Vec<ChunkHit>>, StoreError> {
        let tenant = scope.tenant();
        let index = place.placement.index().as_str();
        // without a filter the metadata column is not read at all
        let mut scored: Vec<(f32, i64)> = if filter.is_empty() {
            let rows: Vec<(i64, Vec<u8>)> = self
                .scan("select rowid, embedding from chunks where tenant_id = ? and index_name = ?", scope, index)
                .await?;
            rows.iter().map(|(rowid, bytes)| (cosine_to_bytes(vector, bytes), *rowid)).collect()
        } else {
            let rows: Vec<(i64, Vec<u8>, Json<serde_json::Value>)> = self
                .scan(
                    "select rowid, embedding, metadata from chunks where tenant_id = ? and index_name = ?",
                    scope,
                    index,
                )
                .await?;
            let mut scored = Vec::with_capacity(rows.len());
            for (rowid, bytes, metadata) in rows {
                let m = Metadata::parse(&metadata.0).map_err(|e| StoreError::Unexpected(e.into()))?;
                if m.matches(filter) {
                    scored.push((cosine_to_bytes(vector, &bytes), rowid));
                }
            }
            scored
        };
        let by_score = |a: &(f32, i64), b: &(f32, i64)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        let k = (top_k as usize).min(scored.len());
        if k > 0 && k < scored.len() {
            scored.select_nth_unstable_by(k - 1, by_score);
        }
        scored.truncate(k);
        scored.sort_by(by_score);
        let ids = serde_json::Value::from(scored.iter().map(|(_, id)| *id).collect::<Vec<_>>()).to_string();
        type Winner = (i64, String, i32, String, Json<serde_json::Value>, String, Vec<u8>);
        let winners: Vec<Winner> = sqlx::query_as(
            "select c.rowid, c.document_id, c.chunk_index, c.content, c.metadata, d.title, c.embedding from chunks c
             join documents d on d.tenant_id = c.tenant_id and d.document_id = c.document_id
             where c.tenant_id = ? and c.index_name = ? and c.rowid in (select value from json_each(?))",
        )
        .bind(tenant.as_str())
        .bind(index)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "read chunks"))?;
        let mut hits = Vec::with_capacity(k);
        for (score, rowid) in scored {
            // gone, or its rowid reused by a newer chunk since the scan (its vector would differ)
            let Some((_, doc, index, text, metadata, title, _)) =
                winners.iter().find(|w| w.0 == rowid && cosine_to_bytes(vector, &w.6).to_bits() == score.to_bits())
            else {
                return Ok(None);
            };
            hits.push(hit_from_columns(doc, *index, text.clone(), &metadata.0, title.clone(), score)?);
        }
        Ok(Some(hits))
    }
}
