//! The data plane's `DocumentStore`, written once for both SQL backends: placement bookkeeping,
//! quota-checked ingest, listing, reading, deleting and usage. [`document_store!`] expands, inside
//! the store's crate, into a module `shared_documents` implementing the port for the store type;
//! what is the backend's own — how an index is provisioned, how chunks and their vectors are
//! written, how a search runs — stays in the backend as inherent methods the port calls. (Why a
//! macro and not generics: see the `registry` module.)
//!
//! Besides what `registry_store!` needs, the store type must have:
//! - `async fn lock_placements(&self, tx: &mut Transaction<'static, DB>) -> Result<(), StoreError>`:
//!   serializes placements (PostgreSQL: an advisory lock; SQLite's first write already does);
//! - `async fn provision_index(&self, tx, index: &PhysicalIndex, dimensions: u32, at: OffsetDateTime)`;
//! - `async fn insert_chunks(&self, tx, tenant: &TenantId, index: &str, document: &StoredDocument, chunks: &[StoredChunk])`;
//! - `async fn search_chunks(&self, scope, place, vector, top_k, filter) -> Result<Vec<ChunkHit>, StoreError>`;
//! - `fn after_write(&self, tenant: &TenantId)`: called after an ingest or delete commits.

/// Implements `DocumentStore` for `$store` over database `$db`; see the module documentation.
#[macro_export]
macro_rules! document_store {
    ($store:ident, $db:ty) => {
        pub(crate) mod shared_documents {
            use super::*;
            use ::sqlx::types::Json;
            use ::tenantry_app::ports::{
                AuditRecord, ChunkHit, DocumentStore, DocumentWrite, IndexUsage, PlacementDecision, StoredDocument,
                TenantPlacement,
            };
            use ::tenantry_app::{PlatformScope, StoreError, TenantScope};
            use ::tenantry_domain::{DataUsage, DocumentId, IngestQuota, Metadata, PlacementPlan, TenantId};
            use $crate::documents::{
                DocumentColumns, IndexColumns, PlacementColumns, batch_totals, document_from_columns,
                index_from_columns, placement_from_columns, placement_kind_str, quota_refusal,
            };
            use $crate::{document_columns, insert_error, store_error};

            type Conn = <$db as ::sqlx::Database>::Connection;

            /// The index pool with each index's placements; `chunk_counts` adds the chunks it
            /// holds (a scan: for the listing, not for placement).
            fn pool_sql(chunk_counts: bool) -> &'static str {
                if chunk_counts {
                    "select i.index_name, i.kind, i.capacity,
                            (select count(*) from tenant_placements p where p.index_name = i.index_name),
                            cast(i.dimensions as bigint),
                            (select count(*) from chunks c where c.index_name = i.index_name),
                            i.created_at
                     from vector_indexes i order by i.index_id"
                } else {
                    "select i.index_name, i.kind, i.capacity,
                            (select count(*) from tenant_placements p where p.index_name = i.index_name),
                            cast(i.dimensions as bigint), cast(0 as bigint), i.created_at
                     from vector_indexes i order by i.index_id"
                }
            }

            pub(crate) async fn placement(
                conn: &mut Conn,
                tenant: &TenantId,
            ) -> Result<Option<TenantPlacement>, StoreError> {
                ::sqlx::query_as::<_, PlacementColumns>(
                    "select p.index_name, p.kind, cast(i.dimensions as bigint), p.placed_at from tenant_placements p
                     join vector_indexes i on i.index_name = p.index_name where p.tenant_id = $1",
                )
                .bind(tenant.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| store_error(e, "read placement"))?
                .map(placement_from_columns)
                .transpose()
            }

            async fn usage(conn: &mut Conn, tenant: &TenantId) -> Result<DataUsage, StoreError> {
                let row: Option<(i64, i64, i64)> =
                    ::sqlx::query_as("select documents, bytes, chunks from tenant_usage where tenant_id = $1")
                        .bind(tenant.as_str())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|e| store_error(e, "read usage"))?;
                Ok(row.map(|(documents, bytes, chunks)| DataUsage { documents, bytes, chunks }).unwrap_or_default())
            }

            /// Creates the tenant's usage row if missing, first thing in a write: on SQLite this
            /// takes the write lock, so the reads that follow cannot be invalidated by a concurrent
            /// writer and the transaction never needs a lock upgrade. `NotFound` if the tenant
            /// does not exist.
            async fn ensure_usage(conn: &mut Conn, tenant: &TenantId) -> Result<(), StoreError> {
                ::sqlx::query("insert into tenant_usage (tenant_id) values ($1) on conflict (tenant_id) do nothing")
                    .bind(tenant.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| match &e {
                        ::sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                            StoreError::NotFound(::tenantry_app::Missing::Tenant(tenant.clone()))
                        }
                        _ => store_error(e, "create usage"),
                    })?;
                Ok(())
            }

            #[::async_trait::async_trait]
            impl DocumentStore for $store {
                async fn index_pool(&self, access: &PlatformScope) -> Result<Vec<IndexUsage>, StoreError> {
                    let mut read = self.platform_read(access).await?;
                    let rows = ::sqlx::query_as::<_, IndexColumns>(pool_sql(true))
                        .fetch_all(&mut *read)
                        .await
                        .map_err(|e| store_error(e, "list indexes"))?;
                    $store::end_read(read).await?;
                    rows.into_iter().map(index_from_columns).collect()
                }

                async fn tenant_placement(&self, scope: &TenantScope) -> Result<Option<TenantPlacement>, StoreError> {
                    let mut read = self.tenant_read(scope).await?;
                    let found = placement(&mut read, scope.tenant()).await?;
                    $store::end_read(read).await?;
                    Ok(found)
                }

                async fn place_tenant(
                    &self,
                    access: &PlatformScope,
                    tenant: &TenantId,
                    dimensions: u32,
                    decide: PlacementDecision<'_>,
                ) -> Result<Option<PlacementPlan>, StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    self.lock_placements(&mut tx).await?;
                    ensure_usage(&mut tx, tenant).await?;
                    if placement(&mut tx, tenant).await?.is_some() {
                        return Ok(None);
                    }
                    let pool = ::sqlx::query_as::<_, IndexColumns>(pool_sql(false))
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
                        self.provision_index(&mut tx, index, dimensions, audit.at).await?;
                    }
                    ::sqlx::query(
                        "insert into tenant_placements (tenant_id, index_name, kind, placed_at) values ($1, $2, $3, $4)",
                    )
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
                    billed: &[::tenantry_domain::cost::UsageEvent],
                ) -> Result<(), StoreError> {
                    let tenant = scope.tenant();
                    if billed.iter().any(|e| &e.tenant != tenant) {
                        return Err(StoreError::ConstraintViolated(format!(
                            "an ingest of tenant {tenant} may only bill tenant {tenant}"
                        )));
                    }
                    let mut tx = self.tenant_tx(scope).await?;
                    ensure_usage(&mut tx, tenant).await?;
                    let place = placement(&mut tx, tenant)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(::tenantry_app::Missing::Placement(tenant.clone())))?;
                    let (documents, bytes, chunks) = batch_totals(writes);
                    // One conditional update: it takes the usage row's lock, so concurrent ingests
                    // of one tenant queue here and each sees the others' committed counts.
                    let admitted = ::sqlx::query(
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
                        ::sqlx::query(concat!(
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
                        if !w.chunks.is_empty() {
                            self.insert_chunks(&mut tx, tenant, place.placement.index().as_str(), d, &w.chunks).await?;
                        }
                        self.seal(&mut tx, &w.audit).await?;
                    }
                    $store::write_usage(&mut tx, &$crate::ledger::distinct_events(billed)).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit documents"))?;
                    self.after_write(tenant);
                    Ok(())
                }

                async fn list_documents(
                    &self,
                    scope: &TenantScope,
                    after: Option<&DocumentId>,
                    limit: u32,
                ) -> Result<Vec<StoredDocument>, StoreError> {
                    let mut read = self.tenant_read(scope).await?;
                    let rows = ::sqlx::query_as::<_, DocumentColumns>(concat!(
                        "select ",
                        document_columns!(),
                        " from documents where tenant_id = $1 and ($2 is null or document_id > $2)
                          order by document_id limit $3"
                    ))
                    .bind(scope.tenant().as_str())
                    .bind(after.map(DocumentId::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *read)
                    .await
                    .map_err(|e| store_error(e, "list documents"))?;
                    $store::end_read(read).await?;
                    rows.into_iter().map(document_from_columns).collect()
                }

                async fn get_document(
                    &self,
                    scope: &TenantScope,
                    id: &DocumentId,
                ) -> Result<Option<StoredDocument>, StoreError> {
                    let mut read = self.tenant_read(scope).await?;
                    let row = ::sqlx::query_as::<_, DocumentColumns>(concat!(
                        "select ",
                        document_columns!(),
                        " from documents where tenant_id = $1 and document_id = $2"
                    ))
                    .bind(scope.tenant().as_str())
                    .bind(id.as_str())
                    .fetch_optional(&mut *read)
                    .await
                    .map_err(|e| store_error(e, "read document"))?;
                    $store::end_read(read).await?;
                    row.map(document_from_columns).transpose()
                }

                async fn delete_document(
                    &self,
                    scope: &TenantScope,
                    id: &DocumentId,
                    audit: &AuditRecord,
                ) -> Result<StoredDocument, StoreError> {
                    let tenant = scope.tenant();
                    let mut tx = self.tenant_tx(scope).await?;
                    ensure_usage(&mut tx, tenant).await?;
                    ::sqlx::query("delete from chunks where tenant_id = $1 and document_id = $2")
                        .bind(tenant.as_str())
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "delete chunks"))?;
                    let doc = ::sqlx::query_as::<_, DocumentColumns>(concat!(
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
                    .ok_or_else(|| StoreError::NotFound(::tenantry_app::Missing::Document(id.clone())))?;
                    ::sqlx::query(
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
                    self.after_write(tenant);
                    Ok(doc)
                }

                async fn data_usage(&self, scope: &TenantScope) -> Result<DataUsage, StoreError> {
                    let mut read = self.tenant_read(scope).await?;
                    let found = usage(&mut read, scope.tenant()).await?;
                    $store::end_read(read).await?;
                    Ok(found)
                }

                async fn search(
                    &self,
                    scope: &TenantScope,
                    place: &TenantPlacement,
                    vector: &[f32],
                    top_k: u32,
                    filter: &Metadata,
                ) -> Result<Vec<ChunkHit>, StoreError> {
                    if vector.len() != place.dimensions as usize {
                        return Err(StoreError::ConstraintViolated(format!(
                            "the query vector has {} dimensions; the tenant's index holds {}",
                            vector.len(),
                            place.dimensions
                        )));
                    }
                    self.search_chunks(scope, place, vector, top_k, filter).await
                }
            }
        }
    };
}
