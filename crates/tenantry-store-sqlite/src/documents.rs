//! The data plane on SQLite: documents, chunks with embeddings as f32 blobs, searched exactly (a
//! full cosine scan of the tenant's chunks in Rust). Isolation is the filter on the scope's tenant
//! in every statement; placement picks the index, and the tenant filter still applies.

use async_trait::async_trait;
use sqlx::types::Json;

use tenantry_app::ports::{
    AuditRecord, ChunkHit, DocumentStore, DocumentWrite, IndexUsage, PlacementDecision, StoredDocument, TenantPlacement,
};
use tenantry_app::{PlatformScope, StoreError, TenantScope};
use tenantry_domain::{DataUsage, DocumentId, IngestQuota, Metadata, PlacementPlan, TenantId};
use tenantry_store_sql::documents::{
    DocumentColumns, IndexColumns, PlacementColumns, batch_totals, cosine_to_bytes, document_from_columns,
    hit_from_columns, index_from_columns, index_kind_str, placement_from_columns, placement_kind_str, quota_refusal,
    vector_to_bytes,
};
use tenantry_store_sql::{document_columns, insert_error, store_error};

use crate::SqliteStore;

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

const PLACEMENT_SQL: &str = "select p.index_name, p.kind, i.dimensions, p.placed_at from tenant_placements p
     join vector_indexes i on i.index_name = p.index_name where p.tenant_id = ?";

async fn placement(tx: &mut Tx, tenant: &TenantId) -> Result<Option<TenantPlacement>, StoreError> {
    sqlx::query_as::<_, PlacementColumns>(PLACEMENT_SQL)
        .bind(tenant.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| store_error(e, "read placement"))?
        .map(placement_from_columns)
        .transpose()
}

async fn usage(tx: &mut Tx, tenant: &TenantId) -> Result<DataUsage, StoreError> {
    let row: Option<(i64, i64, i64)> =
        sqlx::query_as("select documents, bytes, chunks from tenant_usage where tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| store_error(e, "read usage"))?;
    Ok(row.map(|(documents, bytes, chunks)| DataUsage { documents, bytes, chunks }).unwrap_or_default())
}

/// Takes SQLite's write lock first (an upsert), so the reads that follow cannot be invalidated by
/// a concurrent writer and the transaction never needs a lock upgrade. `NotFound` if the tenant
/// does not exist.
async fn lock_usage(tx: &mut Tx, tenant: &TenantId) -> Result<(), StoreError> {
    sqlx::query("insert into tenant_usage (tenant_id) values (?) on conflict (tenant_id) do nothing")
        .bind(tenant.as_str())
        .execute(&mut **tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => store_error(e, "lock usage"),
        })?;
    Ok(())
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn index_pool(&self, _access: &PlatformScope) -> Result<Vec<IndexUsage>, StoreError> {
        let rows = sqlx::query_as::<_, IndexColumns>(
            "select i.index_name, i.kind, i.capacity,
                    (select count(*) from tenant_placements p where p.index_name = i.index_name),
                    i.dimensions,
                    (select count(*) from chunks c where c.index_name = i.index_name),
                    i.created_at
             from vector_indexes i order by i.index_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list indexes"))?;
        rows.into_iter().map(index_from_columns).collect()
    }

    async fn tenant_placement(&self, scope: &TenantScope) -> Result<Option<TenantPlacement>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        placement(&mut tx, scope.tenant()).await
    }

    async fn place_tenant(
        &self,
        _access: &PlatformScope,
        tenant: &TenantId,
        dimensions: u32,
        decide: PlacementDecision<'_>,
    ) -> Result<Option<PlacementPlan>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        lock_usage(&mut tx, tenant).await?;
        if placement(&mut tx, tenant).await?.is_some() {
            return Ok(None);
        }
        let pool: Vec<IndexColumns> = sqlx::query_as(
            "select i.index_name, i.kind, i.capacity,
                    (select count(*) from tenant_placements p where p.index_name = i.index_name),
                    i.dimensions, 0, i.created_at
             from vector_indexes i order by i.index_id",
        )
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
            sqlx::query(
                "insert into vector_indexes (index_name, kind, capacity, dimensions, created_at) values (?, ?, ?, ?, ?)
                 on conflict (index_name) do nothing",
            )
            .bind(index.name.as_str())
            .bind(index_kind_str(index.kind))
            .bind(i64::from(index.capacity))
            .bind(i64::from(dimensions))
            .bind(audit.at)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "provision index"))?;
        }
        sqlx::query("insert into tenant_placements (tenant_id, index_name, kind, placed_at) values (?, ?, ?, ?)")
            .bind(tenant.as_str())
            .bind(plan.placement.index().as_str())
            .bind(placement_kind_str(&plan.placement))
            .bind(audit.at)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "record placement"))?;
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
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        lock_usage(&mut tx, tenant).await?;
        let place = placement(&mut tx, tenant).await?.ok_or(StoreError::NotFound)?;
        let (documents, bytes, chunks) = batch_totals(writes);
        let admitted = sqlx::query(
            "update tenant_usage set documents = documents + ?2, bytes = bytes + ?3, chunks = chunks + ?4
             where tenant_id = ?1 and documents + ?2 <= ?5 and bytes + ?3 <= ?6",
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
                ") values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            let metadata = Json(d.metadata.to_value());
            for c in &w.chunks {
                sqlx::query(
                    "insert into chunks (tenant_id, index_name, document_id, chunk_index, content, start_byte, end_byte,
                                         metadata, embedding) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(tenant.as_str())
                .bind(place.placement.index().as_str())
                .bind(d.id.as_str())
                .bind(c.index)
                .bind(&c.text)
                .bind(c.start)
                .bind(c.end)
                .bind(&metadata)
                .bind(vector_to_bytes(&c.embedding))
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(e, "insert chunk"))?;
            }
            self.seal(&mut tx, &w.audit).await?;
        }
        tx.commit().await.map_err(|e| store_error(e, "commit documents"))
    }

    async fn list_documents(
        &self,
        scope: &TenantScope,
        after: Option<&DocumentId>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let rows = sqlx::query_as::<_, DocumentColumns>(concat!(
            "select ",
            document_columns!(),
            " from documents where tenant_id = ? and (? is null or document_id > ?) order by document_id limit ?"
        ))
        .bind(scope.tenant().as_str())
        .bind(after.map(DocumentId::as_str))
        .bind(after.map(DocumentId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list documents"))?;
        rows.into_iter().map(document_from_columns).collect()
    }

    async fn get_document(&self, scope: &TenantScope, id: &DocumentId) -> Result<Option<StoredDocument>, StoreError> {
        sqlx::query_as::<_, DocumentColumns>(concat!(
            "select ",
            document_columns!(),
            " from documents where tenant_id = ? and document_id = ?"
        ))
        .bind(scope.tenant().as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        lock_usage(&mut tx, tenant).await?;
        let doc = sqlx::query_as::<_, DocumentColumns>(concat!(
            "delete from documents where tenant_id = ? and document_id = ? returning ",
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
        sqlx::query("delete from chunks where tenant_id = ? and document_id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "delete chunks"))?;
        sqlx::query(
            "update tenant_usage set documents = documents - 1, bytes = bytes - ?, chunks = chunks - ? where tenant_id = ?",
        )
        .bind(doc.bytes)
        .bind(doc.chunk_count)
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(e, "count usage"))?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit delete"))?;
        Ok(doc)
    }

    async fn data_usage(&self, scope: &TenantScope) -> Result<DataUsage, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
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
