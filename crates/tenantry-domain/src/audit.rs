//! The audit hash chain: the canonical encoding of an entry, its SHA-256 hash, and the walk that
//! checks a sequence of stored entries. Pure: the store appends, the app signs, this decides.
//!
//! # Canonical encoding (version 1)
//!
//! An outside verifier recomputes an entry's hash as
//! `SHA-256(prev_hash || encode(entry))`, where `prev_hash` is the previous entry's hash as 32 raw
//! bytes (32 zero bytes for the first entry) and `encode` is the byte string
//!
//! ```text
//! "tenantry-audit-v1"
//! field(seq)  field(at)  field(actor_kind)  field(actor_id)  field(tenant_id)  field(operation)
//! field(before)  field(after)  field(reason)  field(request_id)
//! ```
//!
//! Each `field` is a 4-byte big-endian length followed by that many bytes of UTF-8, or the four
//! bytes `FF FF FF FF` for an absent value. `seq` is the decimal sequence number; `at` is the
//! timestamp as decimal microseconds since the Unix epoch (UTC); `before` and `after` are JSON
//! in canonical form: no whitespace, object keys sorted by their UTF-8 bytes, strings escaped as
//! `serde_json` escapes them (only `"`, `\` and control characters), numbers as `serde_json`
//! prints them. Hashes are written as 64 lowercase hex digits.

use sha2::{Digest, Sha256};

pub const ENCODING_TAG: &[u8] = b"tenantry-audit-v1";
/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hashed fields of one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainFields<'a> {
    pub seq: i64,
    pub at_micros: i64,
    pub actor_kind: &'a str,
    pub actor_id: &'a str,
    pub tenant_id: Option<&'a str>,
    pub operation: &'a str,
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
    pub reason: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// JSON in canonical form (sorted keys, compact). `serde_json`'s map is ordered by key unless its
/// `preserve_order` feature is on, which this workspace never enables; the sort below does not
/// rely on that.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX - 1);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&bytes[..len as usize]);
        }
        None => out.extend_from_slice(&[0xFF; 4]),
    }
}

/// The canonical encoding of an entry (see the module documentation).
pub fn encode(e: &ChainFields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(ENCODING_TAG);
    field(&mut out, Some(e.seq.to_string().as_bytes()));
    field(&mut out, Some(e.at_micros.to_string().as_bytes()));
    field(&mut out, Some(e.actor_kind.as_bytes()));
    field(&mut out, Some(e.actor_id.as_bytes()));
    field(&mut out, e.tenant_id.map(str::as_bytes));
    field(&mut out, Some(e.operation.as_bytes()));
    field(&mut out, e.before.map(canonical_json).as_deref().map(str::as_bytes));
    field(&mut out, e.after.map(canonical_json).as_deref().map(str::as_bytes));
    field(&mut out, e.reason.map(str::as_bytes));
    field(&mut out, e.request_id.map(str::as_bytes));
    out
}

/// `SHA-256(prev || encode(entry))`.
pub fn entry_hash(prev: &[u8; 32], e: &ChainFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(encode(e));
    h.finalize().into()
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Parses exactly `N` bytes of lowercase hex (the only stored form: an uppercase digit in a stored
/// hash is an alteration, so it is refused rather than read as the same value).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// What the walk found wrong, at the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    #[error("entry {seq}: its hash does not match its contents (the entry was modified)")]
    HashMismatch { seq: i64 },
    #[error("entry {seq}: it does not link to the entry before it (an entry was removed, reordered or inserted)")]
    BrokenLink { seq: i64 },
    #[error("entry {seq}: expected sequence number {expected} (entries are missing or reordered)")]
    Gap { seq: i64, expected: i64 },
    #[error("entry {seq}: it carries no hash after the chain began (a forged or altered entry)")]
    Unsealed { seq: i64 },
    #[error("entry {seq}: {detail}")]
    BadSignature { seq: i64, detail: String },
    #[error("checkpoint at entry {seq}: {detail}")]
    Checkpoint { seq: i64, detail: String },
}

impl ChainFault {
    /// The sequence number of the first bad entry (or checkpoint).
    pub fn seq(&self) -> i64 {
        match self {
            ChainFault::HashMismatch { seq }
            | ChainFault::BrokenLink { seq }
            | ChainFault::Gap { seq, .. }
            | ChainFault::Unsealed { seq }
            | ChainFault::BadSignature { seq, .. }
            | ChainFault::Checkpoint { seq, .. } => *seq,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ChainFault::HashMismatch { .. } => "hash_mismatch",
            ChainFault::BrokenLink { .. } => "broken_link",
            ChainFault::Gap { .. } => "gap",
            ChainFault::Unsealed { .. } => "unsealed",
            ChainFault::BadSignature { .. } => "bad_signature",
            ChainFault::Checkpoint { .. } => "checkpoint",
        }
    }
}

/// The incremental walk over entries in sequence order — the one chain check, for the stored log
/// and for export files alike. Entries written before the chain existed (no hash) may only
/// precede the first sealed entry.
#[derive(Debug, Clone)]
pub struct ChainWalker {
    /// Hash of the last sealed entry seen (or the trusted starting point).
    prev: [u8; 32],
    /// The sequence number the next entry must carry, once known.
    expected_seq: Option<i64>,
    sealed_seen: bool,
    /// Entries may be missing (an export filtered to one tenant): where one is, the next entry's
    /// stated predecessor is taken as given; consecutive entries must still link.
    sparse: bool,
    pub legacy: u64,
    pub verified: u64,
}

impl ChainWalker {
    /// Starts at the beginning of the log.
    pub fn from_genesis() -> Self {
        Self { prev: GENESIS, expected_seq: None, sealed_seen: false, sparse: false, legacy: 0, verified: 0 }
    }

    /// Starts after a trusted entry `seq` with hash `prev` (for `verify --from N`).
    pub fn after(seq: i64, prev: [u8; 32]) -> Self {
        Self { prev, expected_seq: Some(seq + 1), sealed_seen: true, sparse: false, legacy: 0, verified: 0 }
    }

    /// Walks entries that may skip sequence numbers (an export file, possibly filtered): each
    /// entry's hash is checked from its own fields and stated predecessor, and entries with
    /// consecutive numbers must link. Numbers must still increase.
    pub fn sparse() -> Self {
        Self { sparse: true, ..Self::from_genesis() }
    }

    /// Checks the next entry: its sequence number, its link to the previous one and its hash.
    /// `stored` is `(prev_hash, hash)` as stored, or `None` for a legacy (pre-chain) entry.
    pub fn step(&mut self, fields: &ChainFields<'_>, stored: Option<(&str, &str)>) -> Result<[u8; 32], ChainFault> {
        let seq = fields.seq;
        let skipped = match self.expected_seq {
            Some(expected) if seq == expected => false,
            Some(expected) if !(self.sparse && seq > expected) => return Err(ChainFault::Gap { seq, expected }),
            // sparse: the first entry seen, or entries left out before this one
            _ => self.sparse,
        };
        self.expected_seq = Some(seq + 1);
        let Some((prev_text, hash_text)) = stored else {
            if self.sealed_seen {
                return Err(ChainFault::Unsealed { seq });
            }
            self.legacy += 1;
            return Ok(self.prev);
        };
        self.sealed_seen = true;
        let prev = from_hex::<32>(prev_text).ok_or(ChainFault::BrokenLink { seq })?;
        if skipped {
            self.prev = prev;
        } else if prev != self.prev {
            return Err(ChainFault::BrokenLink { seq });
        }
        let computed = entry_hash(&self.prev, fields);
        if from_hex::<32>(hash_text) != Some(computed) {
            return Err(ChainFault::HashMismatch { seq });
        }
        self.prev = computed;
        self.verified += 1;
        Ok(computed)
    }

    /// The hash of the last entry walked.
    pub fn head(&self) -> [u8; 32] {
        self.prev
    }

    /// The sequence number of the last entry walked, if any.
    pub fn last_seq(&self) -> Option<i64> {
        self.expected_seq.map(|n| n - 1)
    }
}

/// The message an entry's signature covers: its hash, with a domain-separation tag.
pub fn entry_message(hash: &[u8; 32]) -> Vec<u8> {
    let mut out = b"tenantry-entry-v1".to_vec();
    out.extend_from_slice(hash);
    out
}

/// The message a checkpoint signs: the chain head at `seq`, and when.
pub fn checkpoint_message(seq: i64, head: &[u8; 32], at_micros: i64) -> Vec<u8> {
    let mut out = b"tenantry-checkpoint-v1".to_vec();
    field(&mut out, Some(seq.to_string().as_bytes()));
    field(&mut out, Some(to_hex(head).as_bytes()));
    field(&mut out, Some(at_micros.to_string().as_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fields<'a>(seq: i64, after: Option<&'a serde_json::Value>, reason: Option<&'a str>) -> ChainFields<'a> {
        ChainFields {
            seq,
            at_micros: 1_700_000_000_000_000 + seq,
            actor_kind: "user",
            actor_id: "alice",
            tenant_id: Some("finance"),
            operation: "tenant.update",
            before: None,
            after,
            reason,
            request_id: Some("req-1"),
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": 1, "a": [ {"z": null, "y": "é\n"} ], "c": 1.5 }"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"a":[{"y":"é\n","z":null}],"b":1,"c":1.5}"#);
    }

    #[test]
    fn known_answer_hash_of_the_first_entry() {
        // Recomputable by an outside verifier from the documented encoding alone.
        let after = json!({"status": "suspended"});
        let e = fields(1, Some(&after), Some("on hold"));
        let mut expected_input = GENESIS.to_vec();
        expected_input.extend_from_slice(b"tenantry-audit-v1");
        for part in [
            Some("1"),
            Some("1700000000000001"),
            Some("user"),
            Some("alice"),
            Some("finance"),
            Some("tenant.update"),
            None,
            Some(r#"{"status":"suspended"}"#),
            Some("on hold"),
            Some("req-1"),
        ] {
            match part {
                Some(p) => {
                    expected_input.extend_from_slice(&(p.len() as u32).to_be_bytes());
                    expected_input.extend_from_slice(p.as_bytes());
                }
                None => expected_input.extend_from_slice(&[0xFF; 4]),
            }
        }
        let expected: [u8; 32] = Sha256::digest(&expected_input).into();
        assert_eq!(entry_hash(&GENESIS, &e), expected);
    }

    #[test]
    fn absent_and_empty_values_hash_differently() {
        let a = fields(1, None, None);
        let b = fields(1, None, Some(""));
        assert_ne!(entry_hash(&GENESIS, &a), entry_hash(&GENESIS, &b));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(from_hex::<4>(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex::<4>("zz00abff"), None);
        assert_eq!(from_hex::<4>("00"), None);
        assert_eq!(from_hex::<4>("0001ABFF"), None, "stored hex is lowercase only");
    }

    /// A stored entry as bytes an attacker could flip: every hashed field and both hashes.
    #[derive(Debug, Clone)]
    struct Row {
        seq: i64,
        at: i64,
        actor_id: String,
        tenant: Option<String>,
        operation: String,
        after: Option<String>,
        reason: Option<String>,
        prev: String,
        hash: String,
    }

    impl Row {
        fn fields(&self) -> (ChainFields<'_>, Option<serde_json::Value>) {
            let after = self.after.as_deref().map(|a| serde_json::from_str(a).unwrap_or(serde_json::Value::Null));
            (
                ChainFields {
                    seq: self.seq,
                    at_micros: self.at,
                    actor_kind: "user",
                    actor_id: &self.actor_id,
                    tenant_id: self.tenant.as_deref(),
                    operation: &self.operation,
                    before: None,
                    after: None,
                    reason: self.reason.as_deref(),
                    request_id: None,
                },
                after,
            )
        }
    }

    fn build(history: &[(String, Option<String>, String, Option<String>)]) -> Vec<Row> {
        let mut prev = GENESIS;
        let mut rows = Vec::new();
        for (i, (actor, tenant, op, reason)) in history.iter().enumerate() {
            let seq = i as i64 + 1;
            let after = format!("{{\"n\":{seq}}}");
            let after_value: serde_json::Value = serde_json::from_str(&after).unwrap();
            let f = ChainFields {
                seq,
                at_micros: 1_000 * seq,
                actor_kind: "user",
                actor_id: actor,
                tenant_id: tenant.as_deref(),
                operation: op,
                before: None,
                after: Some(&after_value),
                reason: reason.as_deref(),
                request_id: None,
            };
            let hash = entry_hash(&prev, &f);
            rows.push(Row {
                seq,
                at: 1_000 * seq,
                actor_id: actor.clone(),
                tenant: tenant.clone(),
                operation: op.clone(),
                after: Some(after),
                reason: reason.clone(),
                prev: to_hex(&prev),
                hash: to_hex(&hash),
            });
            prev = hash;
        }
        rows
    }

    fn walk(rows: &[Row]) -> Result<(), ChainFault> {
        let mut w = ChainWalker::from_genesis();
        for r in rows {
            let (mut f, after) = r.fields();
            f.after = after.as_ref();
            w.step(&f, Some((&r.prev, &r.hash)))?;
        }
        Ok(())
    }

    fn walk_sparse(rows: &[&Row]) -> Result<u64, ChainFault> {
        let mut w = ChainWalker::sparse();
        for r in rows {
            let (mut f, after) = r.fields();
            f.after = after.as_ref();
            w.step(&f, Some((&r.prev, &r.hash)))?;
        }
        Ok(w.verified)
    }

    /// The sparse walk (export files, possibly filtered): entries may be missing, but each one
    /// left is checked, consecutive ones must link, and numbers must increase.
    #[test]
    fn a_sparse_walk_checks_what_is_there_and_refuses_what_is_wrong() {
        let history: Vec<_> =
            (0..8).map(|i| (format!("u{i}"), Some(format!("t{}", i % 2)), "tenant.update".to_owned(), None)).collect();
        let rows = build(&history);
        let all: Vec<&Row> = rows.iter().collect();
        assert_eq!(walk_sparse(&all), Ok(8), "the whole log");
        let odd: Vec<&Row> = rows.iter().filter(|r| r.seq % 2 == 1).collect();
        assert_eq!(walk_sparse(&odd), Ok(4), "one tenant's entries, with gaps");
        let tail: Vec<&Row> = rows.iter().skip(3).collect();
        assert_eq!(walk_sparse(&tail), Ok(5), "starting anywhere");
        // a strict walk refuses the gaps
        let mut w = ChainWalker::from_genesis();
        let mut gap = Ok([0; 32]);
        for r in &odd {
            let (mut f, after) = r.fields();
            f.after = after.as_ref();
            gap = w.step(&f, Some((&r.prev, &r.hash)));
            if gap.is_err() {
                break;
            }
        }
        assert_eq!(gap, Err(ChainFault::Gap { seq: 3, expected: 2 }));
        // out of order
        let swapped: Vec<&Row> = vec![&rows[2], &rows[1]];
        assert_eq!(walk_sparse(&swapped), Err(ChainFault::Gap { seq: 2, expected: 4 }));
        // a consecutive pair whose link was rewritten
        let mut forged = build(&history);
        forged[5].prev = forged[3].hash.clone();
        let refs: Vec<&Row> = forged.iter().collect();
        assert_eq!(walk_sparse(&refs), Err(ChainFault::BrokenLink { seq: 6 }));
        // an edited entry, even with its neighbours left out
        let mut edited = build(&history);
        edited[4].actor_id = "mallory".into();
        let lone: Vec<&Row> = edited.iter().filter(|r| r.seq == 5).collect();
        assert_eq!(walk_sparse(&lone), Err(ChainFault::HashMismatch { seq: 5 }));
    }

    /// Flips one byte of one textual field of one row (in place, staying valid UTF-8 where the
    /// field is text, as a database edit would).
    fn tamper(rows: &mut [Row], row: usize, field_no: usize, pos: usize, byte: u8) -> bool {
        let r = &mut rows[row];
        let target: &mut String = match field_no % 7 {
            0 => &mut r.actor_id,
            1 => &mut r.operation,
            2 => match r.tenant.as_mut() {
                Some(t) => t,
                None => {
                    r.tenant = Some("x".into());
                    return true;
                }
            },
            3 => r.after.as_mut().unwrap(),
            4 => match r.reason.as_mut() {
                Some(t) => t,
                None => {
                    r.reason = Some(String::new());
                    return true;
                }
            },
            5 => &mut r.prev,
            _ => &mut r.hash,
        };
        if target.is_empty() {
            target.push(char::from(byte.clamp(b'a', b'z')));
            return true;
        }
        let mut bytes = target.clone().into_bytes();
        let i = pos % bytes.len();
        let replacement = if bytes[i].is_ascii_alphanumeric() && byte.is_ascii_alphanumeric() { byte } else { b'q' };
        if bytes[i] == replacement {
            bytes[i] = if replacement == b'q' { b'r' } else { b'q' };
        } else {
            bytes[i] = replacement;
        }
        match String::from_utf8(bytes) {
            Ok(s) if s != *target => {
                *target = s;
                true
            }
            _ => false,
        }
    }

    fn history() -> impl Strategy<Value = Vec<(String, Option<String>, String, Option<String>)>> {
        prop::collection::vec(
            ("[a-z]{1,8}", prop::option::of("[a-z]{2,6}"), "[a-z.]{1,12}", prop::option::of("[ -~]{0,20}")),
            1..30,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn an_untouched_chain_verifies(h in history()) {
            prop_assert!(walk(&build(&h)).is_ok());
        }

        #[test]
        fn every_single_byte_tampering_is_detected(
            h in history(), row in any::<prop::sample::Index>(), field_no in 0usize..7, pos in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut rows = build(&h);
            let row = row.index(rows.len());
            let original = rows.clone();
            if tamper(&mut rows, row, field_no, pos, byte) {
                let changed_json = rows[row].after != original[row].after
                    && serde_json::from_str::<serde_json::Value>(rows[row].after.as_deref().unwrap()).ok()
                        == serde_json::from_str::<serde_json::Value>(original[row].after.as_deref().unwrap()).ok();
                // a byte change that leaves the same JSON value (e.g. whitespace) changes nothing hashed
                prop_assume!(!changed_json);
                prop_assert!(walk(&rows).is_err(), "tampering row {} field {} went unnoticed", row, field_no);
            }
        }

        #[test]
        fn deleting_swapping_or_forging_is_detected(h in history(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
            let rows = build(&h);
            // delete (not the last: dropping the tail is what checkpoints catch)
            if rows.len() > 1 {
                let i = a.index(rows.len() - 1);
                let mut deleted = rows.clone();
                deleted.remove(i);
                prop_assert!(walk(&deleted).is_err());
            }
            // swap two entries, keeping their stored sequence numbers in order
            let (i, j) = (a.index(rows.len()), b.index(rows.len()));
            if i != j {
                let mut swapped = rows.clone();
                swapped.swap(i, j);
                prop_assert!(walk(&swapped).is_err());
                let mut renumbered = swapped.clone();
                for (k, r) in renumbered.iter_mut().enumerate() {
                    r.seq = k as i64 + 1;
                }
                prop_assert!(walk(&renumbered).is_err());
            }
            // forge an entry in the middle with a correctly computed hash: the next link breaks
            let mut forged = rows.clone();
            let at = a.index(rows.len());
            let mut fake = forged[at].clone();
            fake.operation = "tenant.transition.suspended".into();
            forged.insert(at, fake);
            prop_assert!(walk(&forged).is_err());
        }
    }
}
