//! Tampering with the audit log as a database administrator would — protections off, raw SQL —
//! and `verify` naming the first bad entry every time. Each backend supplies [`RawAccess`].

use std::sync::Arc;

use tenantry_app::ports::Store;
use tenantry_app::{AuditKey, Auditor, EntrySigner, KeyOwner, VerifyReport};
use tenantry_domain::audit::{ChainFields, entry_hash, entry_message, from_hex, to_hex};
use tenantry_domain::{FlagScope, FlagValue, Role, TenantStatus, UserId};

use crate::{Ctx, create, key, tid};

/// Raw access to the store's database with every audit protection off (append-only triggers
/// disabled, row-level security bypassed): what a DBA or an attacker with superuser rights has.
#[async_trait::async_trait]
pub trait RawAccess: Send + Sync {
    async fn exec_unprotected(&self, sql: &str);
}

/// The signing key every tamper test's store signs with.
pub fn signing_key() -> Arc<AuditKey> {
    Arc::new(AuditKey::from_seed([21; 32]))
}

pub struct History {
    pub ctx: Ctx,
    pub auditor: Auditor,
    pub key: Arc<AuditKey>,
    pub last_seq: i64,
}

/// A realistic history (tenants, users, memberships, flags, lifecycle moves, reads) on a store
/// that signs with [`signing_key`]; verified intact before anyone tampers.
pub async fn history(store: Arc<dyn Store>) -> History {
    let signer = signing_key();
    let ctx = Ctx::new(store.clone()).await;
    let directory = ctx.app.directory.clone();
    for id in ["finance", "legal", "hr"] {
        create(&ctx, id, "gold").await;
    }
    let alice = UserId::parse("alice").unwrap();
    directory.create_user(&ctx.admin, alice.clone(), "Alice").await.unwrap();
    directory.put_member(&ctx.admin.act_in(tid("finance")), &alice, Role::Analyst).await.unwrap();
    directory.create_key(&ctx.admin, KeyOwner::User(alice), "k", None).await.unwrap();
    ctx.registry.set_flag(&ctx.admin, FlagScope::Global, key("beta"), FlagValue::Bool(false)).await.unwrap();
    ctx.registry
        .set_flag(&ctx.admin, FlagScope::Tenant(tid("legal")), key("beta"), FlagValue::Bool(true))
        .await
        .unwrap();
    let legal = ctx.admin.act_in(tid("legal"));
    ctx.registry.transition(&legal, TenantStatus::Suspended, "matter on hold", None, None).await.unwrap();
    ctx.registry.get_tenant(&legal).await.unwrap();
    ctx.registry.transition(&legal, TenantStatus::Active, "resumed", None, None).await.unwrap();
    ctx.registry.statistics(&ctx.admin).await.unwrap();
    let auditor = Auditor::new(store, ctx.clock.clone(), Some(signer.clone()), signer.trusted());
    let report = auditor.verify(&ctx.admin, None).await.unwrap();
    assert_eq!(report.fault, None, "a fresh history verifies");
    assert!(report.signatures_checked);
    let last_seq = report.head.as_ref().unwrap().0;
    assert!(last_seq >= 10, "history has {last_seq} entries");
    History { ctx, auditor, key: signer, last_seq }
}

async fn verify(h: &History) -> VerifyReport {
    h.auditor.verify(&h.ctx.admin, None).await.unwrap()
}

fn assert_fault(report: &VerifyReport, seq: i64, kinds: &[&str]) {
    let fault = report.fault.as_ref().unwrap_or_else(|| panic!("tampering went unnoticed: {report:?}"));
    assert_eq!(fault.seq(), seq, "first bad entry: {fault}");
    assert!(kinds.contains(&fault.kind()), "fault kind {} ({fault}), expected one of {kinds:?}", fault.kind());
}

pub async fn tamper_modify_a_middle_entry(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let middle = h.last_seq / 2;
    raw.exec_unprotected(&format!("update audit_log set reason = 'nothing happened' where seq = {middle}")).await;
    assert_fault(&verify(&h).await, middle, &["hash_mismatch"]);
    // `--from`: starting at the edited entry finds it; starting after it trusts it and passes
    let from_middle = h.auditor.verify(&h.ctx.admin, Some(middle)).await.unwrap();
    assert_fault(&from_middle, middle, &["hash_mismatch"]);
    let after = h.auditor.verify(&h.ctx.admin, Some(middle + 1)).await.unwrap();
    assert_eq!(after.fault, None);
    assert!(after.verified >= 1 && after.verified < h.last_seq as u64);
}

pub async fn tamper_modify_the_actor_of_an_entry(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let seq = h.last_seq - 3;
    raw.exec_unprotected(&format!("update audit_log set actor_id = 'someone-else' where seq = {seq}")).await;
    assert_fault(&verify(&h).await, seq, &["hash_mismatch"]);
}

pub async fn tamper_delete_an_entry(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let victim = h.last_seq / 2;
    raw.exec_unprotected(&format!("delete from audit_log where seq = {victim}")).await;
    assert_fault(&verify(&h).await, victim + 1, &["gap", "broken_link"]);
}

pub async fn tamper_swap_two_entries(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let (a, b) = (4, 7);
    raw.exec_unprotected(&format!(
        "update audit_log set seq = -1 where seq = {a};
         update audit_log set seq = {a} where seq = {b};
         update audit_log set seq = {b} where seq = -1;"
    ))
    .await;
    assert_fault(&verify(&h).await, a, &["hash_mismatch", "broken_link"]);
}

/// Appends an entry with a correctly computed hash: only the signature can give it away.
async fn forge(h: &History, raw: &dyn RawAccess, signer: Option<&dyn EntrySigner>) -> i64 {
    // the newest entry (verify itself appends one after the history)
    let newest = h.ctx.store().recent_audit(&h.ctx.admin, 1).await.unwrap();
    let last = newest.first().expect("the last entry");
    let prev_hex = last.seal.as_ref().unwrap().hash.clone();
    let prev = from_hex::<32>(&prev_hex).unwrap();
    let seq = last.seq + 1;
    let fields = ChainFields {
        seq,
        at_micros: last.record.chain_fields(last.seq).at_micros,
        actor_kind: "platform_admin",
        actor_id: "mallory",
        tenant_id: Some("finance"),
        operation: "tenant.transition.suspended",
        before: None,
        after: None,
        reason: Some("forged"),
        request_id: None,
    };
    let hash = entry_hash(&prev, &fields);
    let (key_id, signature) = match signer {
        Some(s) => (format!("'{}'", s.key_id()), format!("'{}'", s.sign(&entry_message(&hash)))),
        None => ("null".to_owned(), "null".to_owned()),
    };
    raw.exec_unprotected(&format!(
        "insert into audit_log (seq, at, actor_kind, actor_id, tenant_id, operation, before, after, reason,
             request_id, prev_hash, hash, key_id, signature)
         select {seq}, at, 'platform_admin', 'mallory', 'finance', 'tenant.transition.suspended', null, null, 'forged',
             null, '{prev_hex}', '{}', {key_id}, {signature}
         from audit_log where seq = {};
         update audit_head set seq = {seq}, hash = '{}'",
        to_hex(&hash),
        last.seq,
        to_hex(&hash)
    ))
    .await;
    seq
}

pub async fn tamper_append_a_forged_unsigned_entry(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let seq = forge(&h, raw.as_ref(), None).await;
    assert_fault(&verify(&h).await, seq, &["bad_signature"]);
}

pub async fn tamper_append_an_entry_signed_by_another_key(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let mallory = AuditKey::from_seed([66; 32]);
    let seq = forge(&h, raw.as_ref(), Some(&mallory)).await;
    let report = verify(&h).await;
    assert_fault(&report, seq, &["bad_signature"]);
    assert!(report.fault.unwrap().to_string().contains("not trusted"));
}

pub async fn tamper_truncate_the_tail_after_a_checkpoint(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let cp = h.auditor.checkpoint(&h.ctx.admin).await.unwrap();
    assert_eq!(verify(&h).await.fault, None, "a checkpoint verifies");
    assert!(verify(&h).await.checkpoints_checked >= 1);
    // drop the checkpointed entry and everything after it, and rewind the head to match
    let keep = cp.seq - 2;
    raw.exec_unprotected(&format!(
        "delete from audit_log where seq > {keep};
         update audit_head set seq = {keep}, hash = (select hash from audit_log where seq = {keep});"
    ))
    .await;
    assert_fault(&verify(&h).await, cp.seq, &["checkpoint"]);
}

pub async fn tamper_forge_a_checkpoint(store: Arc<dyn Store>, raw: Arc<dyn RawAccess>) {
    let h = history(store).await;
    let cp = h.auditor.checkpoint(&h.ctx.admin).await.unwrap();
    let other = "0".repeat(64);
    raw.exec_unprotected(&format!(
        "insert into audit_checkpoints (seq, head_hash, at, key_id, signature)
         select seq, '{other}', at, key_id, signature from audit_checkpoints where seq = {}",
        cp.seq
    ))
    .await;
    assert_fault(&verify(&h).await, cp.seq, &["checkpoint"]);
}

/// Appends from many writers at once keep the chain linear, gap-free and verifiable.
pub async fn concurrent_appends_keep_the_chain_linear(store: Arc<dyn Store>) {
    let h = history(store.clone()).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let registry = h.ctx.registry.clone();
        let admin = h.ctx.app.operator(format!("writer-{i}"));
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                registry
                    .set_flag(&admin, FlagScope::Global, key(&format!("w{i}-{j}")), FlagValue::Bool(true))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = verify(&h).await;
    assert_eq!(report.fault, None);
    assert!(report.head.unwrap().0 >= h.last_seq + 80);
}

/// Generates one `#[tokio::test]` per tamper case. `$make` yields
/// `Some((store signing with tamper::signing_key(), raw access))`, or `None` to skip outside CI.
#[macro_export]
macro_rules! tamper_suite {
    ($make:expr) => {
        $crate::tamper_suite!(@cases $make;
            tamper_modify_a_middle_entry,
            tamper_modify_the_actor_of_an_entry,
            tamper_delete_an_entry,
            tamper_swap_two_entries,
            tamper_append_a_forged_unsigned_entry,
            tamper_append_an_entry_signed_by_another_key,
            tamper_truncate_the_tail_after_a_checkpoint,
            tamper_forge_a_checkpoint,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_appends_keep_the_chain_linear() {
            let Some((store, _raw)) = $make else { return };
            $crate::tamper::concurrent_appends_keep_the_chain_linear(store).await;
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((store, raw)) = $make else { return };
                $crate::tamper::$case(store, raw).await;
            }
        )*
    };
}
