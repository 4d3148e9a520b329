//! The data plane's rows, shared by both SQL adapters: documents, placements and indexes.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;

use tenantry_app::StoreError;
use tenantry_app::ports::{ChunkHit, DocumentWrite, IndexUsage, StoredDocument, TenantPlacement};
use tenantry_domain::{DataUsage, DocumentId, IndexKind, IndexName, IngestQuota, Metadata, PhysicalIndex, Placement};

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("stored data plane row is invalid: {what}"))
}

/// The document columns, in the order of [`DocumentColumns`].
#[macro_export]
macro_rules! document_columns {
    () => {
        "document_id, client_id, title, metadata, bytes, chunk_count, token_count, embedding_model, object_key, created_at"
    };
}

pub type DocumentColumns = (String, Option<String>, String, Json<Value>, i64, i64, i64, String, String, OffsetDateTime);

pub fn document_from_columns(
    (id, client_id, title, metadata, bytes, chunk_count, token_count, embedding_model, object_key, created_at): DocumentColumns,
) -> Result<StoredDocument, StoreError> {
    Ok(StoredDocument {
        id: DocumentId::parse(&id).map_err(corrupt)?,
        client_id,
        title,
        metadata: Metadata::parse(&metadata.0).map_err(corrupt)?,
        bytes,
        chunk_count,
        token_count,
        embedding_model,
        object_key,
        created_at,
    })
}

pub fn index_kind_str(kind: IndexKind) -> &'static str {
    match kind {
        IndexKind::Shared => "shared",
        IndexKind::Dedicated => "dedicated",
    }
}

fn index_kind(s: &str) -> Result<IndexKind, StoreError> {
    match s {
        "shared" => Ok(IndexKind::Shared),
        "dedicated" => Ok(IndexKind::Dedicated),
        other => Err(corrupt(format!("index kind {other:?}"))),
    }
}

/// `index_name, kind, capacity, used (placements), dimensions, chunks, created_at`.
pub type IndexColumns = (String, String, i64, i64, i64, i64, OffsetDateTime);

pub fn index_from_columns(
    (name, kind, capacity, used, dimensions, chunks, created_at): IndexColumns,
) -> Result<IndexUsage, StoreError> {
    Ok(IndexUsage {
        index: PhysicalIndex {
            name: IndexName::parse(&name).map_err(corrupt)?,
            kind: index_kind(&kind)?,
            capacity: u32::try_from(capacity).map_err(corrupt)?,
            used: u32::try_from(used).map_err(corrupt)?,
        },
        dimensions: u32::try_from(dimensions).map_err(corrupt)?,
        chunks,
        created_at,
    })
}

pub fn placement_kind_str(p: &Placement) -> &'static str {
    match p {
        Placement::Namespace { .. } => "namespace",
        Placement::Dedicated { .. } => "dedicated",
    }
}

/// `index_name, kind, dimensions, placed_at`.
pub type PlacementColumns = (String, String, i64, OffsetDateTime);

pub fn placement_from_columns(
    (index, kind, dimensions, placed_at): PlacementColumns,
) -> Result<TenantPlacement, StoreError> {
    let index = IndexName::parse(&index).map_err(corrupt)?;
    let placement = match kind.as_str() {
        "namespace" => Placement::Namespace { index },
        "dedicated" => Placement::Dedicated { index },
        other => return Err(corrupt(format!("placement kind {other:?}"))),
    };
    Ok(TenantPlacement { placement, dimensions: u32::try_from(dimensions).map_err(corrupt)?, placed_at })
}

/// `document_id, chunk_index, content, metadata, title` and the score.
pub fn hit_from_columns(
    document_id: &str,
    chunk_index: i32,
    text: String,
    metadata: &Value,
    title: String,
    score: f32,
) -> Result<ChunkHit, StoreError> {
    Ok(ChunkHit {
        document_id: DocumentId::parse(document_id).map_err(corrupt)?,
        chunk_index,
        text,
        score,
        title,
        metadata: Metadata::parse(metadata).map_err(corrupt)?,
    })
}

/// What a batch adds to the usage counters: documents, bytes, chunks.
pub fn batch_totals(writes: &[DocumentWrite]) -> (i64, i64, i64) {
    writes.iter().fold((0, 0, 0), |(d, b, c), w| (d + 1, b + w.document.bytes, c + w.document.chunk_count))
}

/// The refusal for a batch that does not fit `quota` at `usage`.
pub fn quota_refusal(quota: IngestQuota, usage: DataUsage, writes: &[DocumentWrite]) -> StoreError {
    let (documents, bytes, _) = batch_totals(writes);
    match quota.check(usage, documents, bytes) {
        Err(q) => StoreError::QuotaExceeded(q),
        // the conditional update refused, yet the numbers fit: usage moved between the two reads
        Ok(()) => StoreError::Unavailable(anyhow::anyhow!("usage changed concurrently; retry the request")),
    }
}

/// Little-endian f32 bytes (SQLite's embedding column).
pub fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Cosine similarity of `query` and a vector stored as little-endian f32 bytes, decoded as it
/// is read (the embedded store's exact scan calls this once per chunk).
pub fn cosine_to_bytes(query: &[f32], bytes: &[u8]) -> f32 {
    tenantry_domain::embedding::cosine_with(
        query,
        bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_decode_to_the_vector_that_was_stored() {
        let a: Vec<f32> = (0..384).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let b: Vec<f32> = (0..384).map(|i| ((i * 104_729) % 97) as f32 / 48.0 - 1.0).collect();
        let stored = vector_to_bytes(&b);
        assert_eq!(cosine_to_bytes(&a, &stored).to_bits(), tenantry_domain::embedding::cosine(&a, &b).to_bits());
        assert_eq!(cosine_to_bytes(&a, &vector_to_bytes(&vec![0.0; 384])), 0.0);
        assert!((cosine_to_bytes(&a, &vector_to_bytes(&a)) - 1.0).abs() < 1e-6);
    }
}
