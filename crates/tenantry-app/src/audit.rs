//! The audit use-cases: verify the chain and its checkpoints, sign checkpoints, read and export
//! entries. The chain rules are the domain's (`tenantry_domain::audit`); signatures are checked
//! here against the keys the verifier trusts.

use std::collections::BTreeMap;
use std::sync::Arc;

use tenantry_domain::audit::{ChainFault, ChainWalker, checkpoint_message, entry_message, from_hex, to_hex};

use crate::access::{PlatformScope, TenantScope};
use crate::error::AppError;
use crate::operations::{AuditOp, PlatformRead};
use crate::ports::{AuditEntry, AuditFilter, AuditRecord, Checkpoint, Clock, EntrySigner, Store};
use crate::signing::{AuditKey, TrustedKeys};

pub const VERIFY_PAGE: u32 = 1000;
pub const MAX_PAGE: u32 = 10_000;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// Entries whose hash and link were checked.
    pub verified: u64,
    /// Entries written before the chain existed (cannot be checked).
    pub legacy: u64,
    /// Whether signatures were checked (a trusted public key was given).
    pub signatures_checked: bool,
    pub checkpoints_checked: u64,
    /// Sequence number and hash of the last entry walked.
    pub head: Option<(i64, String)>,
    /// The first problem, if any.
    pub fault: Option<ChainFault>,
}

#[derive(Clone)]
pub struct Auditor {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    key: Option<Arc<AuditKey>>,
    trusted: TrustedKeys,
}

impl Auditor {
    /// `key` signs checkpoints; `trusted` are the public keys whose signatures verify accepts.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, key: Option<Arc<AuditKey>>, trusted: TrustedKeys) -> Self {
        Self { store, clock, key, trusted }
    }

    /// Walks the chain from the start (or from entry `from`, trusting entry `from - 1`), checking
    /// sequence, links, hashes, signatures and every checkpoint at or after the start.
    pub async fn verify(&self, access: &PlatformScope, from: Option<i64>) -> Result<VerifyReport, AppError> {
        let mut walker = ChainWalker::from_genesis();
        let mut after_seq = 0;
        if let Some(from) = from.filter(|n| *n > 1) {
            let anchor = self
                .store
                .audit_entries(access, &AuditFilter { after_seq: from - 2, limit: 1, ..Default::default() })
                .await?;
            match anchor.first() {
                Some(e) if e.seq == from - 1 => {
                    let hash = e.seal.as_ref().and_then(|s| from_hex::<32>(&s.hash));
                    walker = match hash {
                        Some(h) => ChainWalker::after(e.seq, h),
                        None => ChainWalker::from_genesis(),
                    };
                    after_seq = e.seq;
                }
                _ => return Err(AppError::Invalid(format!("there is no audit entry {} to start after", from - 1))),
            }
        }
        let mut report = VerifyReport {
            verified: 0,
            legacy: 0,
            signatures_checked: !self.trusted.is_empty(),
            checkpoints_checked: 0,
            head: None,
            fault: None,
        };
        let checkpoints = self.store.checkpoints(access).await?;
        let wanted: BTreeMap<i64, ()> = checkpoints.iter().filter(|c| c.seq > after_seq).map(|c| (c.seq, ())).collect();
        let mut hashes_at: BTreeMap<i64, [u8; 32]> = BTreeMap::new();
        loop {
            let page = self
                .store
                .audit_entries(access, &AuditFilter { after_seq, limit: VERIFY_PAGE, ..Default::default() })
                .await?;
            for entry in &page {
                if let Err(fault) = self.check_entry(&mut walker, entry) {
                    report.fault = Some(fault);
                    break;
                }
                if wanted.contains_key(&entry.seq) {
                    hashes_at.insert(entry.seq, walker.head());
                }
                after_seq = entry.seq;
            }
            if report.fault.is_some() || page.len() < VERIFY_PAGE as usize {
                break;
            }
        }
        report.verified = walker.verified;
        report.legacy = walker.legacy;
        report.head = walker.last_seq().map(|seq| (seq, to_hex(&walker.head())));
        if report.fault.is_none() {
            let last = walker.last_seq().unwrap_or(0);
            for cp in checkpoints.iter().filter(|c| c.seq > after_seq.min(from.unwrap_or(1) - 1)) {
                if let Err(fault) = self.check_checkpoint(cp, last, &hashes_at) {
                    report.fault = Some(fault);
                    break;
                }
                report.checkpoints_checked += 1;
            }
        }
        let detail = serde_json::json!({
            "verified": report.verified, "fault": report.fault.as_ref().map(ToString::to_string),
        });
        self.record(access, AuditOp::PlatformRead(PlatformRead::AuditVerify), detail).await?;
        Ok(report)
    }

    fn check_entry(&self, walker: &mut ChainWalker, entry: &AuditEntry) -> Result<(), ChainFault> {
        let seal = entry.seal.as_ref();
        check_entry(
            &self.trusted,
            walker,
            &entry.record.chain_fields(entry.seq),
            seal.map(|s| (s.prev_hash.as_str(), s.hash.as_str())),
            seal.map(|s| (s.key_id.as_deref(), s.signature.as_deref())),
        )
    }

    fn check_checkpoint(
        &self,
        cp: &Checkpoint,
        last_seq: i64,
        hashes_at: &BTreeMap<i64, [u8; 32]>,
    ) -> Result<(), ChainFault> {
        let seq = cp.seq;
        let fault = |detail: String| ChainFault::Checkpoint { seq, detail };
        let head = from_hex::<32>(&cp.head_hash).ok_or_else(|| fault("its head hash is not valid hex".to_owned()))?;
        if !self.trusted.is_empty() {
            let message = checkpoint_message(cp.seq, &head, micros(cp.at));
            self.trusted.verify(&cp.key_id, &message, &cp.signature).map_err(fault)?;
        }
        if cp.seq > last_seq {
            return Err(fault(format!(
                "the log ends at entry {last_seq}, before this signed checkpoint (entries were truncated)"
            )));
        }
        match hashes_at.get(&cp.seq) {
            Some(h) if *h == head => Ok(()),
            _ => Err(fault("the chain's hash at this entry differs from the signed one".to_owned())),
        }
    }

    /// Signs the current chain head. Refuses without a signing key or with an empty log.
    pub async fn checkpoint(&self, access: &PlatformScope) -> Result<Checkpoint, AppError> {
        let key = self.key.as_ref().ok_or_else(|| {
            AppError::Invalid("no audit signing key is configured (TENANTRY_AUDIT_KEY or --audit-key-file)".to_owned())
        })?;
        let last = self.store.recent_audit(access, 1).await?;
        let entry = last.first().ok_or_else(|| AppError::Invalid("the audit log is empty".to_owned()))?;
        let seal = entry
            .seal
            .as_ref()
            .ok_or_else(|| AppError::Invalid("the newest audit entry is not sealed into the chain".to_owned()))?;
        let head = from_hex::<32>(&seal.hash)
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("stored hash of entry {} is not hex", entry.seq)))?;
        let at = self.clock.now();
        let signature = key.sign(&checkpoint_message(entry.seq, &head, micros(at)));
        let checkpoint =
            Checkpoint { seq: entry.seq, head_hash: seal.hash.clone(), at, key_id: key.key_id().to_owned(), signature };
        self.store.insert_checkpoint(access, &checkpoint).await?;
        Ok(checkpoint)
    }

    /// Signs the head if it moved since the newest checkpoint (the periodic job).
    pub async fn checkpoint_if_moved(&self, access: &PlatformScope) -> Result<Option<Checkpoint>, AppError> {
        let last_signed = self.store.checkpoints(access).await?.last().map(|c| c.seq);
        let head = self.store.recent_audit(access, 1).await?.first().map(|e| e.seq);
        match (head, last_signed) {
            (None, _) => Ok(None),
            (Some(h), Some(s)) if h <= s => Ok(None),
            _ => self.checkpoint(access).await.map(Some),
        }
    }

    /// Entries of every scope (platform view), in sequence order; the read is recorded.
    pub async fn entries(&self, access: &PlatformScope, filter: AuditFilter) -> Result<Vec<AuditEntry>, AppError> {
        let filter = bounded(filter)?;
        let entries = self.store.audit_entries(access, &filter).await?;
        let detail = serde_json::json!({
            "tenant_id": filter.tenant.as_ref().map(|t| t.as_str()), "after_seq": filter.after_seq,
            "returned": entries.len(),
        });
        self.record(access, AuditOp::PlatformRead(PlatformRead::Audit), detail).await?;
        Ok(entries)
    }

    /// The scope's tenant's history as the tenant sees it (its reviewers and admins; positions,
    /// not global sequence numbers, in `filter.after_seq` and in the answer); the read is recorded.
    pub async fn tenant_entries(
        &self,
        scope: &TenantScope,
        filter: AuditFilter,
    ) -> Result<Vec<crate::ports::TenantAuditEntry>, AppError> {
        scope.require(tenantry_domain::Permission::ReadAudit)?;
        let filter = bounded(filter)?;
        let entries = self.store.tenant_audit(scope, &filter).await?;
        let record = AuditRecord::tenant(scope, self.clock.now(), AuditOp::AuditRead)
            .change(None, Some(serde_json::json!({"after_position": filter.after_seq, "returned": entries.len()})));
        self.store.append_tenant_audit(scope, &record).await?;
        Ok(entries)
    }

    pub async fn checkpoints(&self, access: &PlatformScope) -> Result<Vec<Checkpoint>, AppError> {
        Ok(self.store.checkpoints(access).await?)
    }

    async fn record(
        &self,
        access: &PlatformScope,
        operation: crate::AuditOp,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        let record = AuditRecord::platform_read(access, self.clock.now(), operation, detail);
        Ok(self.store.append_audit(access, &record).await?)
    }
}

/// One entry of an export file, as a third party reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedEntry {
    pub seq: i64,
    pub at_micros: i64,
    pub actor_kind: String,
    pub actor_id: String,
    pub tenant_id: Option<String>,
    pub operation: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    pub key_id: Option<String>,
    pub signature: Option<String>,
}

/// Verifies an export without the database: every entry's hash from its own fields and its stated
/// predecessor, its signature, and the link between entries with consecutive sequence numbers
/// (a full export is one unbroken chain; a filtered one is checked entry by entry).
pub fn verify_exported(entries: &[ExportedEntry], trusted: &TrustedKeys) -> VerifyReport {
    let mut report = VerifyReport {
        verified: 0,
        legacy: 0,
        signatures_checked: !trusted.is_empty(),
        checkpoints_checked: 0,
        head: None,
        fault: None,
    };
    let mut walker = ChainWalker::sparse();
    for e in entries {
        let fields = tenantry_domain::audit::ChainFields {
            seq: e.seq,
            at_micros: e.at_micros,
            actor_kind: &e.actor_kind,
            actor_id: &e.actor_id,
            tenant_id: e.tenant_id.as_deref(),
            operation: &e.operation,
            before: e.before.as_ref(),
            after: e.after.as_ref(),
            reason: e.reason.as_deref(),
            request_id: e.request_id.as_deref(),
        };
        let hashes = match (&e.prev_hash, &e.hash) {
            (Some(prev), Some(hash)) => Some((prev.as_str(), hash.as_str())),
            (None, None) => None,
            // half a seal is a damaged entry, not a pre-chain one
            _ => {
                report.fault = Some(ChainFault::BrokenLink { seq: e.seq });
                break;
            }
        };
        let signature = hashes.map(|_| (e.key_id.as_deref(), e.signature.as_deref()));
        if let Err(fault) = check_entry(trusted, &mut walker, &fields, hashes, signature) {
            report.fault = Some(fault);
            break;
        }
    }
    report.verified = walker.verified;
    report.legacy = walker.legacy;
    report.head = walker.last_seq().filter(|_| walker.verified > 0).map(|seq| (seq, to_hex(&walker.head())));
    report
}

/// The one check of an entry, for the stored log (`Auditor::verify`) and for export files
/// (`verify_exported`): its place in the chain (`walker`: sequence, link, hash) and, with trusted
/// keys, the signature of a sealed entry. `hashes` is `(prev_hash, hash)` as recorded, `None` for
/// a pre-chain entry; `signature` is `(key_id, signature)`.
fn check_entry(
    trusted: &TrustedKeys,
    walker: &mut ChainWalker,
    fields: &tenantry_domain::audit::ChainFields<'_>,
    hashes: Option<(&str, &str)>,
    signature: Option<(Option<&str>, Option<&str>)>,
) -> Result<(), ChainFault> {
    let seq = fields.seq;
    let hash = walker.step(fields, hashes)?;
    if let Some(signature) = signature
        && !trusted.is_empty()
    {
        match signature {
            (Some(key_id), Some(sig)) => trusted
                .verify(key_id, &entry_message(&hash), sig)
                .map_err(|detail| ChainFault::BadSignature { seq, detail })?,
            _ => return Err(ChainFault::BadSignature { seq, detail: "the entry is not signed".to_owned() }),
        }
    }
    Ok(())
}

fn bounded(mut filter: AuditFilter) -> Result<AuditFilter, AppError> {
    if filter.limit == 0 {
        filter.limit = VERIFY_PAGE;
    }
    if filter.limit > MAX_PAGE {
        return Err(AppError::Invalid(format!("limit must be at most {MAX_PAGE}")));
    }
    Ok(filter)
}

pub fn micros(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}
