//! Ports: the narrow capabilities the use-cases need from a backend. One implementation per
//! backend (SQLite embedded, PostgreSQL), all held to the same contract suite (`tenantry-contract`).
//!
//! Every method that touches tenant-owned or platform-wide data takes the scope it acts under
//! (only the global tier catalog is read without one). Backends with database-level isolation
//! (PostgreSQL RLS) turn that scope into the transaction-local context; the others filter by it.

use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use tenantry_domain::cost::{RollupKey, UsageEvent};
use tenantry_domain::pricing::{Bill, FixedCost, Month, Price};
use tenantry_domain::{
    Actor, DataUsage, DocumentId, FlagDefinition, FlagKey, FlagMeta, FlagRule, FlagScope, FlagSet, FlagValue,
    IngestQuota, Invitation, KeyId, Label, Membership, Metadata, PhysicalIndex, Placement, PlacementPlan, Role, Tenant,
    TenantId, TenantStatus, Tier, TierName, User, UserId,
};

use crate::access::{PlatformScope, TenantScope};
use crate::cache::{Invalidation, InvalidationTarget};
use crate::error::StoreError;

/// The time source. Use-cases ask it; the domain is handed the answer.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    /// Now, truncated to microseconds: the finest precision every backend stores, so a value
    /// read back equals the value written.
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
    }
}

/// One audit entry, written by the store in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub tenant: Option<TenantId>,
    pub operation: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    /// The request that caused it (`x-request-id`), when there was one.
    pub request_id: Option<String>,
}

impl AuditRecord {
    /// A platform-level entry (no tenant) by the scope's actor, for its request.
    pub fn platform(access: &crate::PlatformScope, at: OffsetDateTime, operation: crate::AuditOp) -> Self {
        Self::by(access.actor(), access.request_id(), None, at, operation)
    }

    /// An entry in the scope's tenant, by the scope's actor, for its request.
    pub fn tenant(scope: &crate::TenantScope, at: OffsetDateTime, operation: crate::AuditOp) -> Self {
        Self::by(scope.actor(), scope.request_id(), Some(scope.tenant()), at, operation)
    }

    /// A platform-level read: `detail` says what was read.
    pub fn platform_read(
        access: &crate::PlatformScope,
        at: OffsetDateTime,
        operation: crate::AuditOp,
        detail: serde_json::Value,
    ) -> Self {
        Self::platform(access, at, operation).change(None, Some(detail))
    }

    pub fn by(
        actor: &Actor,
        request_id: Option<&str>,
        tenant: Option<&TenantId>,
        at: OffsetDateTime,
        operation: crate::AuditOp,
    ) -> Self {
        AuditRecord {
            at,
            actor: actor.clone(),
            tenant: tenant.cloned(),
            operation: operation.as_str().to_owned(),
            before: None,
            after: None,
            reason: None,
            request_id: request_id.map(str::to_owned),
        }
    }

    /// The state before and after the change (`None`: there was none / there is none).
    pub fn change(mut self, before: Option<serde_json::Value>, after: Option<serde_json::Value>) -> Self {
        self.before = before;
        self.after = after;
        self
    }

    pub fn because(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }

    /// The fields the hash chain covers, for entry `seq`.
    pub fn chain_fields(&self, seq: i64) -> tenantry_domain::audit::ChainFields<'_> {
        tenantry_domain::audit::ChainFields {
            seq,
            at_micros: crate::audit::micros(self.at),
            actor_kind: self.actor.kind.as_str(),
            actor_id: &self.actor.id,
            tenant_id: self.tenant.as_ref().map(TenantId::as_str),
            operation: &self.operation,
            before: self.before.as_ref(),
            after: self.after.as_ref(),
            reason: self.reason.as_deref(),
            request_id: self.request_id.as_deref(),
        }
    }
}

/// Signs audit entries as the store seals them. Implemented by `signing::AuditKey`.
pub trait EntrySigner: Send + Sync {
    fn key_id(&self) -> &str;
    /// Hex of the Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> String;
}

/// How an entry is sealed into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSeal {
    pub prev_hash: String,
    pub hash: String,
    pub key_id: Option<String>,
    pub signature: Option<String>,
}

/// A signed statement of the chain head.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub seq: i64,
    pub head_hash: String,
    pub at: OffsetDateTime,
    pub key_id: String,
    pub signature: String,
}

/// Which audit entries to read, in sequence order.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries with a larger sequence number (in a tenant's view: a larger position).
    pub after_seq: i64,
    /// Only this tenant's entries (platform reads; tenant reads are confined by their scope).
    pub tenant: Option<TenantId>,
    /// Only entries at or after this time.
    pub since: Option<OffsetDateTime>,
    pub limit: u32,
}

/// An entry of a tenant's history, as that tenant sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantAuditEntry {
    /// 1-based position in the tenant's history (not the global sequence number, which would
    /// tell how much other tenants did in between).
    pub position: i64,
    /// The hash of the tenant's previous entry (absent for its first).
    pub previous_hash: Option<String>,
    pub entry: AuditEntry,
}

/// Filters and cursor for listing tenants. The cursor is the last tenant id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub tier: Option<TierName>,
    pub after: Option<TenantId>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Registry-wide counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    pub total: i64,
    pub by_status: Vec<(String, i64)>,
    pub by_tier: Vec<(String, i64)>,
    /// healthy / warning / critical / unknown (no score yet).
    pub by_health: Vec<(String, i64)>,
}

/// A flag value at one scope, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRow {
    pub scope: FlagScope,
    pub key: FlagKey,
    pub value: FlagValue,
    /// A percentage rollout (0..=100) at this scope, if any.
    pub rollout: Option<u8>,
    pub updated_at: OffsetDateTime,
}

#[async_trait]
pub trait TierStore: Send + Sync {
    async fn list_tiers(&self) -> Result<Vec<Tier>, StoreError>;
    async fn get_tier(&self, name: &TierName) -> Result<Option<Tier>, StoreError>;
    /// Inserts a new tier; `AlreadyExists` if the name is taken.
    async fn insert_tier(&self, access: &PlatformScope, tier: &Tier, audit: &AuditRecord) -> Result<(), StoreError>;
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Inserts a new tenant with its audit entry; `AlreadyExists` if the id is taken.
    async fn insert_tenant(
        &self,
        access: &PlatformScope,
        tenant: &Tenant,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn get_tenant(&self, scope: &TenantScope) -> Result<Option<Tenant>, StoreError>;
    async fn list_tenants(&self, access: &PlatformScope, filter: &TenantFilter) -> Result<Vec<Tenant>, StoreError>;
    /// Replaces the tenant row if its stored version is still `expected_version`: `VersionConflict`
    /// with the current version otherwise, `NotFound` if the tenant is not visible in `scope`.
    async fn update_tenant(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        expected_version: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn statistics(&self, access: &PlatformScope) -> Result<Statistics, StoreError>;
}

#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Sets a global or tier rule (insert or replace), defines the flag if new (typed by the value)
    /// or bumps its version, applies `meta`, and records `audit` — one transaction.
    /// `ConstraintViolated` if the value's type differs from the flag's.
    async fn set_flag(
        &self,
        access: &PlatformScope,
        scope: &FlagScope,
        key: &FlagKey,
        rule: &FlagRule,
        meta: &FlagMeta,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Removes a global or tier value and bumps the flag's version; `NotFound` if there was none.
    async fn delete_flag(
        &self,
        access: &PlatformScope,
        scope: &FlagScope,
        key: &FlagKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Sets the scope's tenant-level value of `key`, in the tenant's scope. For the platform
    /// (`writer`), as `set_flag`: the platform's definition, and the value marked platform-set or
    /// not. For the tenant's admin: a key the platform defined takes a value of its type (`meta`
    /// refused, a platform-set value `Refused`); any other key is defined in the tenant's own
    /// namespace, with `meta`. Never changes what another tenant sees.
    async fn set_tenant_flag(
        &self,
        scope: &TenantScope,
        key: &FlagKey,
        rule: &FlagRule,
        meta: &FlagMeta,
        writer: FlagWriter,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Removes the scope's tenant-level value (and the tenant's own definition of the key);
    /// `NotFound` if there was none, `Refused` for a tenant's admin on a platform-set value.
    async fn delete_tenant_flag(
        &self,
        scope: &TenantScope,
        key: &FlagKey,
        writer: FlagWriter,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// The flags that apply to one tenant: global, every tier's, and this tenant's overrides only,
    /// with rollouts and versions.
    async fn flags_for_tenant(&self, scope: &TenantScope) -> Result<FlagSet, StoreError>;
    /// Every flag value at every scope.
    async fn list_flags(&self, access: &PlatformScope) -> Result<Vec<FlagRow>, StoreError>;
    /// Every flag definition, by key.
    async fn flag_definitions(&self, access: &PlatformScope) -> Result<Vec<FlagDefinition>, StoreError>;
    /// Sets the flag's kill switch and bumps its version, recording `audit`; `NotFound` if the
    /// flag is not defined.
    async fn set_flag_enabled(
        &self,
        access: &PlatformScope,
        key: &FlagKey,
        enabled: bool,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Audit entries of the scope's tenant, in sequence order (`filter.tenant` is ignored).
    /// The scope's tenant's history as the tenant sees it: its entries since its registration,
    /// numbered 1, 2, 3… and linked to each other, with nothing derived from other tenants'
    /// entries (`filter.after_seq` is a position).
    async fn tenant_audit(
        &self,
        scope: &TenantScope,
        filter: &AuditFilter,
    ) -> Result<Vec<TenantAuditEntry>, StoreError>;
    /// Audit entries of every scope, in sequence order (platform path: verification and export).
    async fn audit_entries(&self, access: &PlatformScope, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    /// Records a signed checkpoint (append-only).
    async fn insert_checkpoint(&self, access: &PlatformScope, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// Every checkpoint, oldest first.
    async fn checkpoints(&self, access: &PlatformScope) -> Result<Vec<Checkpoint>, StoreError>;
    /// Records an entry that accompanies no write (a platform-wide read), on the platform path.
    async fn append_audit(&self, access: &PlatformScope, record: &AuditRecord) -> Result<(), StoreError>;
    /// Records an entry that accompanies no write (a tenant-scoped read), inside the tenant's scope.
    async fn append_tenant_audit(&self, scope: &TenantScope, record: &AuditRecord) -> Result<(), StoreError>;
    /// The most recent `limit` entries of every scope, oldest first (platform view).
    async fn recent_audit(&self, access: &PlatformScope, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
}

/// An audit entry as read back, with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    pub record: AuditRecord,
    /// `None` for an entry written before the chain existed.
    pub seal: Option<ChainSeal>,
}

/// Who an API key authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// A platform administrator, named for the audit trail.
    PlatformAdmin(UserId),
    /// A user; what they may do comes from their memberships.
    User(UserId),
}

impl KeyOwner {
    pub fn kind(&self) -> &'static str {
        match self {
            KeyOwner::PlatformAdmin(_) => "platform_admin",
            KeyOwner::User(_) => "user",
        }
    }
    pub fn id(&self) -> &UserId {
        match self {
            KeyOwner::PlatformAdmin(id) | KeyOwner::User(id) => id,
        }
    }
}

/// An API key as stored: never the secret, only its SHA-256 digest (hex).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: KeyId,
    pub digest: String,
    pub owner: KeyOwner,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// `AlreadyExists` if the id is taken.
    async fn insert_user(&self, access: &PlatformScope, user: &User, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn get_user(&self, access: &PlatformScope, id: &UserId) -> Result<Option<User>, StoreError>;
    async fn list_users(&self, access: &PlatformScope) -> Result<Vec<User>, StoreError>;
    /// Adds the user to the scope's tenant or changes their role. `NotFound` if the user does not exist.
    /// Adds a member (refused with `QuotaExceeded` when the tenant already has `max_members`;
    /// checked exactly under concurrent additions) or changes a member's role.
    async fn put_membership(
        &self,
        scope: &TenantScope,
        user: &UserId,
        role: Role,
        at: OffsetDateTime,
        max_members: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// `NotFound` if the user was not a member.
    async fn delete_membership(
        &self,
        scope: &TenantScope,
        user: &UserId,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn list_members(&self, scope: &TenantScope) -> Result<Vec<Membership>, StoreError>;
    /// Records (or renews) an invitation to the scope's tenant; the user need not exist.
    async fn put_invitation(
        &self,
        scope: &TenantScope,
        invitation: &Invitation,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// The user's open (unexpired at `now`) invitations, in every tenant (platform path only).
    async fn invitations_of(
        &self,
        access: &PlatformScope,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Invitation>, StoreError>;
    /// Turns the user's open invitation to the scope's tenant into a membership, in one
    /// transaction with `audit`. `NotFound(Invitation)` if there is none open at `now`.
    async fn accept_invitation(
        &self,
        scope: &TenantScope,
        user: &UserId,
        now: OffsetDateTime,
        max_members: i64,
        audit: &AuditRecord,
    ) -> Result<Membership, StoreError>;
    /// Every tenant the user belongs to (a cross-tenant read: platform path only).
    async fn memberships_of(&self, access: &PlatformScope, user: &UserId) -> Result<Vec<Membership>, StoreError>;
    /// `AlreadyExists` if the id or digest is taken.
    async fn insert_key(&self, access: &PlatformScope, key: &ApiKey, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn find_key_by_digest(&self, access: &PlatformScope, digest: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Every key (of one owner, when given), newest first.
    async fn list_keys(&self, access: &PlatformScope, owner: Option<&UserId>) -> Result<Vec<ApiKey>, StoreError>;
    /// Marks a key revoked at `at`; `NotFound` if no such key. Revoking twice keeps the first time.
    async fn revoke_key(
        &self,
        access: &PlatformScope,
        id: &KeyId,
        at: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
}

/// A document as stored (its text lives in object storage under `object_key`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    pub id: DocumentId,
    pub client_id: Option<String>,
    pub title: String,
    pub metadata: Metadata,
    /// Bytes of text (what the storage quota counts).
    pub bytes: i64,
    pub chunk_count: i64,
    /// Tokens the embedding provider counted (for cost attribution).
    pub token_count: i64,
    pub embedding_model: String,
    pub object_key: String,
    pub created_at: OffsetDateTime,
}

/// One chunk of a document with its embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub index: i32,
    pub text: String,
    /// Byte offsets of the chunk in the document's text.
    pub start: i64,
    pub end: i64,
    pub embedding: Vec<f32>,
}

/// A document and its chunks, with the audit entry that records its ingest.
#[derive(Debug, Clone)]
pub struct DocumentWrite {
    pub document: StoredDocument,
    pub chunks: Vec<StoredChunk>,
    pub audit: AuditRecord,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHit {
    pub document_id: DocumentId,
    pub chunk_index: i32,
    pub text: String,
    /// Cosine similarity in [-1, 1]; higher is closer.
    pub score: f32,
    pub title: String,
    pub metadata: Metadata,
}

/// A physical index with what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexUsage {
    pub index: PhysicalIndex,
    pub dimensions: u32,
    /// Chunks stored in it, over every tenant.
    pub chunks: i64,
    pub created_at: OffsetDateTime,
}

/// Where one tenant's vectors are, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantPlacement {
    pub placement: Placement,
    pub dimensions: u32,
    pub placed_at: OffsetDateTime,
}

/// Decides a placement from the current pool (the domain's `place`) and the audit entry that
/// records it. Called by the store while it holds the pool's lock.
pub type PlacementDecision<'a> = &'a (dyn Fn(&[PhysicalIndex]) -> (PlacementPlan, AuditRecord) + Send + Sync);

/// Documents, chunks, vectors and index placement. Every tenant-data method takes the tenant's
/// scope; the store finds the tenant's index from its recorded placement (inside the same
/// transaction) and still filters by tenant id, so a placement mistake cannot leak another
/// tenant's chunks. There is no method that searches across tenants.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Every physical index with its namespace count.
    async fn index_pool(&self, access: &PlatformScope) -> Result<Vec<IndexUsage>, StoreError>;
    async fn tenant_placement(&self, scope: &TenantScope) -> Result<Option<TenantPlacement>, StoreError>;
    /// Places `tenant` unless it is placed already (`Ok(None)`): under the pool's lock, reads the
    /// pool, asks `decide`, provisions the indexes the plan names (each with `dimensions`), and
    /// records the placement and the audit entry — one transaction.
    async fn place_tenant(
        &self,
        access: &PlatformScope,
        tenant: &TenantId,
        dimensions: u32,
        decide: PlacementDecision<'_>,
    ) -> Result<Option<PlacementPlan>, StoreError>;
    /// Stores documents with their chunks and audit entries, and the usage events that bill the
    /// ingest (the scope's tenant's only), all or nothing, if the tenant's usage stays within
    /// `quota` (`QuotaExceeded` otherwise, checked exactly under concurrent ingests);
    /// `AlreadyExists` if a client id is taken; `NotFound` if the tenant has no placement.
    async fn insert_documents(
        &self,
        scope: &TenantScope,
        writes: &[DocumentWrite],
        quota: IngestQuota,
        usage: &[UsageEvent],
    ) -> Result<(), StoreError>;
    /// Documents in id order, after the cursor.
    async fn list_documents(
        &self,
        scope: &TenantScope,
        after: Option<&DocumentId>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError>;
    async fn get_document(&self, scope: &TenantScope, id: &DocumentId) -> Result<Option<StoredDocument>, StoreError>;
    /// Removes the document and its chunks and vectors, recording `audit`; `NotFound` if absent.
    async fn delete_document(
        &self,
        scope: &TenantScope,
        id: &DocumentId,
        audit: &AuditRecord,
    ) -> Result<StoredDocument, StoreError>;
    async fn data_usage(&self, scope: &TenantScope) -> Result<DataUsage, StoreError>;
    /// The `top_k` chunks of the scope's tenant closest to `vector` (cosine) whose metadata
    /// matches `filter`, searched in the index `placement` names; fewer only if the tenant has
    /// fewer matching chunks there. The tenant filter (and RLS) still applies, so a wrong
    /// placement can only find nothing, never another tenant's chunks.
    async fn search(
        &self,
        scope: &TenantScope,
        placement: &TenantPlacement,
        vector: &[f32],
        top_k: u32,
        filter: &Metadata,
    ) -> Result<Vec<ChunkHit>, StoreError>;
}

/// Who a tenant-level flag write acts for, which decides who owns the definition it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagWriter {
    /// A platform principal; `platform_set: Some(true)` makes the value an entitlement the
    /// tenant's admins cannot change or remove, `Some(false)` lifts that, `None` keeps it as is.
    Platform { platform_set: Option<bool> },
    /// The tenant's own admin.
    Tenant,
}

/// A running server as it reports itself: which bus it hears and how far it has applied it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaRow {
    pub replica_id: String,
    /// The bus's name ([`crate::cache::InvalidationBus::name`]): sequence numbers compare only
    /// within one bus.
    pub bus: String,
    /// The highest bus sequence number this replica has applied (0: none since it started).
    pub applied_seq: u64,
    pub started_at: OffsetDateTime,
    pub seen_at: OffsetDateTime,
}

/// The change feed and the servers' progress: platform infrastructure that holds no tenant
/// data (a target names a tenant id, nothing else), so it takes no scope.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Numbers `target` (1, 2, 3, … with no gaps, visible in order) and records it.
    async fn feed_append(&self, target: &InvalidationTarget, at: OffsetDateTime) -> Result<u64, StoreError>;
    /// Entries numbered above `after`, oldest first, at most `limit`.
    async fn feed_after(&self, after: u64, limit: u32) -> Result<Vec<Invalidation>, StoreError>;
    /// The highest number given so far (0: none).
    async fn feed_head(&self) -> Result<u64, StoreError>;
    /// Removes entries recorded before `before`, keeping the newest; returns how many went.
    async fn feed_trim(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    /// Records (inserts or updates) a replica's report.
    async fn replica_report(&self, replica: &ReplicaRow) -> Result<(), StoreError>;
    /// Removes a replica's report (it is shutting down).
    async fn replica_leave(&self, replica_id: &str) -> Result<(), StoreError>;
    async fn replicas(&self) -> Result<Vec<ReplicaRow>, StoreError>;
}

/// Objects left behind in object storage: written for a batch whose rows did not commit, or
/// kept by a deleted document, when object storage could not remove them at the time. Recorded
/// on the platform path and removed later by [`crate::DataPlane::sweep_orphans`].
#[async_trait]
pub trait OrphanObjects: Send + Sync {
    async fn record_orphans(
        &self,
        access: &PlatformScope,
        keys: &[String],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// At most `limit` recorded keys, oldest first.
    async fn orphans(&self, access: &PlatformScope, limit: u32) -> Result<Vec<String>, StoreError>;
    async fn forget_orphans(&self, access: &PlatformScope, keys: &[String]) -> Result<(), StoreError>;
}

/// A stored reconciliation: the month's verdict and the report behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReconciliation {
    pub id: i64,
    pub month: String,
    pub currency: String,
    pub verdict: String,
    pub at: OffsetDateTime,
    pub detail: serde_json::Value,
}

/// A new version of an answer-configuration layer, as the use-case writes it; the store numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConfigVersion {
    /// One above the layer's current version (1 for the first).
    pub version: u32,
    pub settings: tenantry_domain::rag::RagSettings,
    pub author: String,
    pub reason: Option<String>,
    pub at: OffsetDateTime,
}

/// Answer configuration (the customization issue): versioned layers. Platform and tier layers
/// are written and listed on the platform path; a tenant's on its own path. A write appends the
/// next version (one above the highest) together with its audit entry; two writers racing for
/// one number: one of them gets `StoreError::VersionConflict` and nothing of it is written.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// `scope` is `Platform` or `Tier`. Returns the version written.
    async fn put_default_config(
        &self,
        access: &PlatformScope,
        scope: &tenantry_domain::rag::ConfigScope,
        version: &NewConfigVersion,
        audit: &AuditRecord,
    ) -> Result<u32, StoreError>;
    async fn put_tenant_config(
        &self,
        scope: &TenantScope,
        version: &NewConfigVersion,
        audit: &AuditRecord,
    ) -> Result<u32, StoreError>;
    /// Every version of a platform or tier layer, oldest first.
    async fn default_config_versions(
        &self,
        access: &PlatformScope,
        scope: &tenantry_domain::rag::ConfigScope,
    ) -> Result<Vec<tenantry_domain::rag::ConfigVersion>, StoreError>;
    /// Every version of the tenant's layer, oldest first.
    async fn tenant_config_versions(
        &self,
        scope: &TenantScope,
    ) -> Result<Vec<tenantry_domain::rag::ConfigVersion>, StoreError>;
    /// The current platform layer, `tier`'s and the tenant's, in one read on the tenant's path.
    async fn config_layers(
        &self,
        scope: &TenantScope,
        tier: &TierName,
    ) -> Result<tenantry_domain::rag::RagLayers, StoreError>;
}

/// The cost ledger: usage, prices, fixed costs, bills, reconciliations and budget alerts.
/// Usage is recorded on the platform path (one writer batches many tenants' events); a tenant
/// reads its own rollups on its path.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Records `events` in one transaction: each (tenant, key) once — an event whose key is
    /// already recorded is skipped — and the new ones added to their daily rollups. Returns how
    /// many were new.
    async fn record_usage(&self, access: &PlatformScope, events: &[UsageEvent]) -> Result<u64, StoreError>;
    /// Daily rollups for days in `from..until`, every tenant.
    async fn usage_rollups(
        &self,
        access: &PlatformScope,
        from: Date,
        until: Date,
    ) -> Result<Vec<(RollupKey, u64)>, StoreError>;
    /// The scope's tenant's daily rollups for days in `from..until`.
    async fn tenant_usage_rollups(
        &self,
        scope: &TenantScope,
        from: Date,
        until: Date,
    ) -> Result<Vec<(RollupKey, u64)>, StoreError>;
    /// How many raw events are recorded for the scope's tenant (tests and `doctor`).
    async fn tenant_usage_events(&self, scope: &TenantScope) -> Result<u64, StoreError>;
    /// Adds a price version; a version for the same meter, model, currency and day is replaced.
    async fn put_price(&self, access: &PlatformScope, price: &Price, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn prices(&self, access: &PlatformScope) -> Result<Vec<Price>, StoreError>;
    /// Creates or replaces the fixed cost item of that name.
    async fn put_fixed_cost(
        &self,
        access: &PlatformScope,
        item: &FixedCost,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Removes an item; `NotFound` when there is none.
    async fn delete_fixed_cost(
        &self,
        access: &PlatformScope,
        name: &Label,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn fixed_costs(&self, access: &PlatformScope) -> Result<Vec<FixedCost>, StoreError>;
    /// Records bills; a provider's bill for a month replaces the one imported before.
    async fn put_bills(&self, access: &PlatformScope, bills: &[Bill], audit: &AuditRecord) -> Result<(), StoreError>;
    async fn bills(&self, access: &PlatformScope, month: Month) -> Result<Vec<Bill>, StoreError>;
    async fn insert_reconciliation(
        &self,
        access: &PlatformScope,
        record: &StoredReconciliation,
        audit: &AuditRecord,
    ) -> Result<i64, StoreError>;
    /// The most recent reconciliation (of `month`, if given).
    async fn latest_reconciliation(
        &self,
        access: &PlatformScope,
        month: Option<Month>,
    ) -> Result<Option<StoredReconciliation>, StoreError>;
    /// Removes raw usage events recorded before `before` (at most `limit`); their rollups stay.
    /// A retry of a removed event's key would count again, so `before` bounds the idempotency
    /// window. Returns how many were removed.
    async fn prune_usage_events(
        &self,
        access: &PlatformScope,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Records `events` (all the scope's tenant's) and appends `audit` in one transaction on the
    /// tenant's path: an operation whose usage and audit entry commit together, in one commit.
    async fn record_usage_with_audit(
        &self,
        scope: &TenantScope,
        events: &[UsageEvent],
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    /// Claims the alert for `tenant` crossing `threshold` percent of its budget in `month`:
    /// true for the first claim only.
    async fn claim_budget_alert(
        &self,
        access: &PlatformScope,
        tenant: &TenantId,
        month: Month,
        threshold: u32,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// Everything a backend provides. The composite lets the shells hold one `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    TierStore
    + TenantStore
    + FlagStore
    + AuditLog
    + IdentityStore
    + DocumentStore
    + ChangeFeed
    + OrphanObjects
    + Ledger
    + ConfigStore
{
    /// Whether the backend answers (for readiness checks).
    async fn ping(&self) -> Result<(), StoreError>;
    /// The database's own isolation probes, run as the application (PostgreSQL: RLS with no and
    /// with a wrong tenant context); empty where the database enforces none (SQLite).
    async fn isolation_probes(&self) -> Result<Vec<IsolationProbe>, StoreError>;
    /// A short name for logs and `doctor`: "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// Connection pool occupancy, for `/metrics`.
    fn pool_stats(&self) -> PoolStats;
}

/// One database isolation probe: `passed` is `None` when it could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationProbe {
    pub name: String,
    pub passed: Option<bool>,
    pub detail: String,
}

/// Connection pool occupancy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections (idle + in use).
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}
