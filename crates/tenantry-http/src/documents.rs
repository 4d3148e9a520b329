//! The data plane over HTTP: ingest (single or batch), list, read, delete documents; query;
//! usage and placement of a tenant; the index pool. Bodies refuse unknown fields.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use tenantry_app::{ChunkHit, IndexUsage, StoredDocument, TenantPlacement};
use tenantry_domain::tenant::format_time;
use tenantry_domain::{DocumentId, IndexKind, NewDocument, Placement, QuerySpec, TenantId};

use crate::AppState;
use crate::dto::invalid;
use crate::extract::{Body, P, PlatformAccess, Q, TenantAccess};
use crate::problem::{ApiError, Problem};

type ApiResult<T> = Result<T, ApiError>;

/// One document to ingest.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentBody {
    pub title: String,
    pub text: String,
    /// A flat object of strings, numbers and booleans (filterable at query time).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Your own reference, unique per tenant: re-sending it is refused with `already_exists`.
    pub client_id: Option<String>,
}

/// Several documents, stored all or none.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub documents: Vec<DocumentBody>,
}

/// A single document, or `{"documents": [...]}` (1 to 100). (Documentation only: the handler
/// reads the body as either shape; `untagged` makes the schema the plain alternatives.)
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum IngestBody {
    Single(DocumentBody),
    Batch(BatchBody),
}

impl DocumentBody {
    fn parse(self) -> ApiResult<NewDocument> {
        NewDocument::new(&self.title, self.text, &self.metadata, self.client_id.as_deref()).map_err(invalid)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    pub document_id: String,
    pub tenant_id: String,
    pub client_id: Option<String>,
    pub title: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub bytes: i64,
    pub chunks: i64,
    /// Tokens counted by the embedding provider.
    pub tokens: i64,
    pub embedding_model: String,
    pub created_at: String,
}

impl DocumentView {
    pub fn of(tenant: &TenantId, d: &StoredDocument) -> Self {
        Self {
            document_id: d.id.to_string(),
            tenant_id: tenant.to_string(),
            client_id: d.client_id.clone(),
            title: d.title.clone(),
            metadata: d.metadata.to_value(),
            bytes: d.bytes,
            chunks: d.chunk_count,
            tokens: d.token_count,
            embedding_model: d.embedding_model.clone(),
            created_at: format_time(d.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentsView {
    pub documents: Vec<DocumentView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDocumentsQuery {
    /// The last document id of the previous page.
    pub after: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// Text to embed and search with; or give `vector`.
    pub text: Option<String>,
    pub vector: Option<Vec<f32>>,
    /// 1 to 100 (default 5).
    pub top_k: Option<u32>,
    /// Metadata equality filter: every key must match.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HitView {
    pub document_id: String,
    pub chunk_index: i32,
    /// Cosine similarity; higher is closer.
    pub score: f32,
    pub title: String,
    pub text: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<&ChunkHit> for HitView {
    fn from(h: &ChunkHit) -> Self {
        Self {
            document_id: h.document_id.to_string(),
            chunk_index: h.chunk_index,
            score: h.score,
            title: h.title.clone(),
            text: h.text.clone(),
            metadata: h.metadata.to_value(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueryView {
    pub tenant_id: String,
    pub model: String,
    /// Tokens the query text cost to embed.
    pub tokens: u32,
    pub results: Vec<HitView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageView {
    pub tenant_id: String,
    pub documents: i64,
    pub max_documents: i64,
    pub storage_bytes: i64,
    pub max_storage_bytes: i64,
    pub chunks: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlacementView {
    pub tenant_id: String,
    pub index: String,
    /// `namespace` (on a shared index) or `dedicated`.
    pub kind: String,
    pub dimensions: u32,
    pub placed_at: String,
}

impl PlacementView {
    pub fn of(tenant: &TenantId, p: &TenantPlacement) -> Self {
        let kind = match p.placement {
            Placement::Namespace { .. } => "namespace",
            Placement::Dedicated { .. } => "dedicated",
        };
        Self {
            tenant_id: tenant.to_string(),
            index: p.placement.index().to_string(),
            kind: kind.to_owned(),
            dimensions: p.dimensions,
            placed_at: format_time(p.placed_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IndexView {
    pub name: String,
    /// `shared` or `dedicated`.
    pub kind: String,
    /// Namespaces (tenants) it may hold.
    pub capacity: u32,
    /// Namespaces it holds.
    pub used: u32,
    /// used / capacity, 0..1.
    pub utilization: f64,
    pub dimensions: u32,
    pub chunks: i64,
    pub created_at: String,
}

impl From<&IndexUsage> for IndexView {
    fn from(u: &IndexUsage) -> Self {
        Self {
            name: u.index.name.to_string(),
            kind: match u.index.kind {
                IndexKind::Shared => "shared",
                IndexKind::Dedicated => "dedicated",
            }
            .to_owned(),
            capacity: u.index.capacity,
            used: u.index.used,
            utilization: f64::from(u.index.used) / f64::from(u.index.capacity.max(1)),
            dimensions: u.dimensions,
            chunks: u.chunks,
            created_at: format_time(u.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IndexesView {
    pub indexes: Vec<IndexView>,
}

fn parse_document(raw: &str) -> ApiResult<DocumentId> {
    DocumentId::parse(raw).map_err(invalid)
}

/// Ingest one document or a batch (analysts, admins, platform). Text is chunked, embedded and
/// stored; the raw document goes to object storage.
#[utoipa::path(post, path = "/tenants/{tenant_id}/documents", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = IngestBody,
    responses((status = 201, body = DocumentsView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
              (status = 423, body = Problem)))]
pub async fn ingest(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    let bodies: Vec<DocumentBody> = if body.get("documents").is_some() {
        serde_json::from_value::<BatchBody>(body).map_err(invalid)?.documents
    } else {
        vec![serde_json::from_value::<DocumentBody>(body).map_err(invalid)?]
    };
    let docs = bodies.into_iter().map(DocumentBody::parse).collect::<ApiResult<Vec<_>>>()?;
    let stored = state.data.ingest(&scope, docs).await?;
    let view = DocumentsView {
        documents: stored.iter().map(|d| DocumentView::of(scope.tenant(), d)).collect(),
        next_cursor: None,
    };
    let mut response = (StatusCode::CREATED, axum::Json(view)).into_response();
    if let [one] = stored.as_slice()
        && let Ok(location) = HeaderValue::from_str(&format!("/tenants/{}/documents/{}", scope.tenant(), one.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// List the tenant's documents in id order (every member).
#[utoipa::path(get, path = "/tenants/{tenant_id}/documents", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ListDocumentsQuery),
    responses((status = 200, body = DocumentsView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem), (status = 423, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Q(query): Q<ListDocumentsQuery>,
) -> ApiResult<axum::Json<DocumentsView>> {
    let after = query.after.as_deref().map(parse_document).transpose()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit must be between 1 and 1000"));
    }
    let docs = state.data.list_documents(&scope, after.as_ref(), limit).await?;
    let next_cursor = (docs.len() as u32 == limit).then(|| docs.last().map(|d| d.id.to_string())).flatten();
    Ok(axum::Json(DocumentsView {
        documents: docs.iter().map(|d| DocumentView::of(scope.tenant(), d)).collect(),
        next_cursor,
    }))
}

/// One document (every member).
#[utoipa::path(get, path = "/tenants/{tenant_id}/documents/{document_id}", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("document_id" = String, Path)),
    responses((status = 200, body = DocumentView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem), (status = 423, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    P((_, doc)): P<(String, String)>,
) -> ApiResult<axum::Json<DocumentView>> {
    let d = state.data.get_document(&scope, &parse_document(&doc)?).await?;
    Ok(axum::Json(DocumentView::of(scope.tenant(), &d)))
}

/// The document's text as ingested, from object storage (every member).
#[utoipa::path(get, path = "/tenants/{tenant_id}/documents/{document_id}/text", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("document_id" = String, Path)),
    responses((status = 200, description = "the text", content_type = "text/plain"), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 423, body = Problem)))]
pub async fn text(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    P((_, doc)): P<(String, String)>,
) -> ApiResult<Response> {
    let text = state.data.document_text(&scope, &parse_document(&doc)?).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// Delete a document with its chunks, vectors and stored object (analysts, admins, platform).
#[utoipa::path(delete, path = "/tenants/{tenant_id}/documents/{document_id}", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("document_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem), (status = 423, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    P((_, doc)): P<(String, String)>,
) -> ApiResult<StatusCode> {
    state.data.delete_document(&scope, &parse_document(&doc)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Search the tenant's chunks (every member). Rate-limited per tenant (429 with `Retry-After`).
#[utoipa::path(post, path = "/tenants/{tenant_id}/query", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = QueryBody,
    responses((status = 200, body = QueryView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem), (status = 423, body = Problem),
              (status = 429, body = Problem)))]
pub async fn query(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
    Body(body): Body<QueryBody>,
) -> ApiResult<axum::Json<QueryView>> {
    let dims = state.data.embedder().dimensions();
    let spec = QuerySpec::new(body.text, body.vector, body.top_k, &body.filter, dims).map_err(invalid)?;
    let answer = state.data.query(&scope, spec).await?;
    Ok(axum::Json(QueryView {
        tenant_id: scope.tenant().to_string(),
        model: answer.model,
        tokens: answer.tokens,
        results: answer.hits.iter().map(HitView::from).collect(),
    }))
}

/// What the tenant stores against its limits (every member).
#[utoipa::path(get, path = "/tenants/{tenant_id}/usage", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = UsageView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn usage(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
) -> ApiResult<axum::Json<UsageView>> {
    let (usage, quota) = state.data.usage(&scope).await?;
    Ok(axum::Json(UsageView {
        tenant_id: scope.tenant().to_string(),
        documents: usage.documents,
        max_documents: quota.max_documents,
        storage_bytes: usage.bytes,
        max_storage_bytes: quota.max_bytes,
        chunks: usage.chunks,
    }))
}

/// Where the tenant's vectors are (every member); 404 `tenant_not_found` before its placement.
#[utoipa::path(get, path = "/tenants/{tenant_id}/placement", tag = "documents", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = PlacementView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn placement(
    State(state): State<AppState>,
    TenantAccess(scope): TenantAccess,
) -> ApiResult<axum::Json<PlacementView>> {
    let placed = state.data.placement(&scope).await?;
    Ok(axum::Json(PlacementView::of(scope.tenant(), &placed)))
}

/// The physical index pool with usage per index (platform administrators).
#[utoipa::path(get, path = "/indexes", tag = "documents", security(("bearer" = [])),
    responses((status = 200, body = IndexesView), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn indexes(
    State(state): State<AppState>,
    PlatformAccess(access): PlatformAccess,
) -> ApiResult<axum::Json<IndexesView>> {
    let pool = state.data.index_pool(&access).await?;
    Ok(axum::Json(IndexesView { indexes: pool.iter().map(IndexView::from).collect() }))
}
