//! Hierarchical feature-flag evaluation: tenant override > tier default > global default.
//!
//! Evaluation is total: every (flag, tenant, tier) gets an [`Evaluation`] — a value with the level
//! that decided it, or an explicit [`Evaluation::Unknown`] (never a silent `false`).
//!
//! A value at any level may be a **percentage rollout**: it applies to the tenants whose stable
//! bucket (a hash of flag key and tenant id, in 0..10,000) is below `percent × 100`; the others
//! fall through to the next level. Raising the percentage only adds tenants.

use rustc_hash::FxHashMap as HashMap;
use std::fmt;

use crate::ids::{FlagKey, TenantId, TierName};

/// 2^53: the largest magnitude below which every integer is exactly representable as an `f64`.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// A flag's value. Booleans are the common case; strings, numbers and JSON objects carry
/// configuration (the seed's point that long-lived flags are configuration).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FlagValue {
    Bool(bool),
    String(String),
    Number(f64),
    Json(serde_json::Value),
}

impl FlagValue {
    /// Reads a JSON value: booleans, strings and finite numbers map to their variants, objects to
    /// `Json`. Null and arrays are refused (a flag always has a definite, typed value).
    pub fn from_json(value: serde_json::Value) -> Result<Self, crate::Invalid> {
        match value {
            serde_json::Value::Bool(b) => Ok(FlagValue::Bool(b)),
            serde_json::Value::String(s) => Ok(FlagValue::String(s)),
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(FlagValue::Number)
                .ok_or_else(|| "flag numbers must be finite".into()),
            v @ serde_json::Value::Object(_) => Ok(FlagValue::Json(v)),
            serde_json::Value::Null => Err(crate::Invalid::from("a flag value cannot be null".to_owned())),
            serde_json::Value::Array(_) => {
                Err(crate::Invalid::from("a flag value cannot be a bare array: wrap it in an object".to_owned()))
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FlagValue::Bool(b) => serde_json::Value::Bool(*b),
            FlagValue::String(s) => serde_json::Value::String(s.clone()),
            // integral values go out as JSON integers, so typed clients (OpenFeature's integer
            // evaluation) accept them; others as floats
            FlagValue::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER => {
                serde_json::Value::Number(serde_json::Number::from(*n as i64))
            }
            FlagValue::Number(n) => {
                serde_json::Number::from_f64(*n).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
            }
            FlagValue::Json(v) => v.clone(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            FlagValue::Bool(_) => "boolean",
            FlagValue::String(_) => "string",
            FlagValue::Number(_) => "number",
            FlagValue::Json(_) => "object",
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            FlagValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl fmt::Display for FlagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagValue::String(s) => f.write_str(s),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

/// A flag's type, fixed when it is first defined: every value of the flag at any level has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagKind {
    Boolean,
    String,
    Number,
    Object,
}

impl FlagKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::Boolean => "boolean",
            FlagKind::String => "string",
            FlagKind::Number => "number",
            FlagKind::Object => "object",
        }
    }

    pub fn parse(value: &str) -> Result<Self, crate::Invalid> {
        match value {
            "boolean" => Ok(FlagKind::Boolean),
            "string" => Ok(FlagKind::String),
            "number" => Ok(FlagKind::Number),
            "object" => Ok(FlagKind::Object),
            other => {
                Err(crate::Invalid::from(format!("flag type {other:?} is not one of boolean, string, number, object")))
            }
        }
    }

    pub fn of(value: &FlagValue) -> Self {
        match value {
            FlagValue::Bool(_) => FlagKind::Boolean,
            FlagValue::String(_) => FlagKind::String,
            FlagValue::Number(_) => FlagKind::Number,
            FlagValue::Json(_) => FlagKind::Object,
        }
    }
}

/// A flag's definition: its type and what people need to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDefinition {
    pub key: FlagKey,
    pub kind: FlagKind,
    pub description: String,
    pub owner: Option<String>,
    pub created_at: time::OffsetDateTime,
    /// After this time the flag is reported stale (it should have been removed by then).
    pub expires_at: Option<time::OffsetDateTime>,
    /// Grows with every change to the definition or any of the flag's values.
    pub version: i64,
    pub updated_at: time::OffsetDateTime,
    /// The kill switch: a disabled flag evaluates to [`Evaluation::Disabled`] for every tenant
    /// (clients fall back to their code default), whatever its values.
    pub enabled: bool,
}

/// Metadata given with a flag change; `None` keeps what is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagMeta {
    pub description: Option<String>,
    pub owner: Option<String>,
    /// `Some(None)` clears the expiry.
    pub expires_at: Option<Option<time::OffsetDateTime>>,
}

impl FlagMeta {
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        if self.description.as_ref().is_some_and(|d| d.chars().count() > 1000) {
            return Err(crate::Invalid::from("a flag description must be at most 1000 characters".to_owned()));
        }
        if self.owner.as_ref().is_some_and(|o| o.trim().is_empty() || o.chars().count() > 200) {
            return Err(crate::Invalid::from("a flag owner must be 1 to 200 characters".to_owned()));
        }
        Ok(())
    }
}

/// Why a flag is on the stale report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// Older than the configured age (90 days by default: long-lived flags are configuration).
    Old,
    /// Past its expiry date.
    Expired,
    /// Evaluates to the same value for every tenant: it switches nothing.
    Uniform,
    /// Its kill switch is off: it serves nobody.
    Disabled,
}

impl StaleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StaleReason::Old => "older_than_max_age",
            StaleReason::Expired => "past_expiry",
            StaleReason::Uniform => "same_for_every_tenant",
            StaleReason::Disabled => "disabled",
        }
    }
}

/// The stale report: each definition with the reasons it is stale, skipping fresh ones.
pub fn stale_flags(
    definitions: &[FlagDefinition],
    flags: &FlagSet,
    tiers: &[TierName],
    now: time::OffsetDateTime,
    max_age: time::Duration,
) -> Vec<(FlagDefinition, Vec<StaleReason>)> {
    definitions
        .iter()
        .filter_map(|d| {
            let mut reasons = Vec::new();
            if now - d.created_at > max_age {
                reasons.push(StaleReason::Old);
            }
            if d.expires_at.is_some_and(|e| e <= now) {
                reasons.push(StaleReason::Expired);
            }
            if !d.enabled {
                reasons.push(StaleReason::Disabled);
            } else if flags.is_uniform(&d.key, tiers) {
                reasons.push(StaleReason::Uniform);
            }
            (!reasons.is_empty()).then(|| (d.clone(), reasons))
        })
        .collect()
}

/// The level of the hierarchy a value was set at, and so the reason an evaluation came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlagLevel {
    Global,
    Tier,
    Tenant,
}

impl FlagLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagLevel::Global => "global",
            FlagLevel::Tier => "tier",
            FlagLevel::Tenant => "tenant",
        }
    }

    pub fn parse(value: &str) -> Result<Self, crate::Invalid> {
        match value {
            "global" => Ok(FlagLevel::Global),
            "tier" => Ok(FlagLevel::Tier),
            "tenant" => Ok(FlagLevel::Tenant),
            other => Err(crate::Invalid::from(format!("scope {other:?} is not valid: use global, tier or tenant"))),
        }
    }

    /// The evaluation reason for a value found at this level.
    pub fn reason(self) -> &'static str {
        match self {
            FlagLevel::Global => "global_default",
            FlagLevel::Tier => "tier_default",
            FlagLevel::Tenant => "tenant_override",
        }
    }
}

/// Where a flag value is set: the level plus, for tier and tenant, which one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlagScope {
    Global,
    Tier(TierName),
    Tenant(TenantId),
}

impl FlagScope {
    pub fn level(&self) -> FlagLevel {
        match self {
            FlagScope::Global => FlagLevel::Global,
            FlagScope::Tier(_) => FlagLevel::Tier,
            FlagScope::Tenant(_) => FlagLevel::Tenant,
        }
    }

    /// The tenant this scope belongs to, if it is a tenant override.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            FlagScope::Tenant(t) => Some(t),
            _ => None,
        }
    }

    /// The scope id as stored: empty for global.
    pub fn scope_id(&self) -> &str {
        match self {
            FlagScope::Global => "",
            FlagScope::Tier(t) => t.as_str(),
            FlagScope::Tenant(t) => t.as_str(),
        }
    }

    /// Builds a scope from the wire form (`scope`, optional `scope_id`), refusing a missing or
    /// superfluous id with a sentence that says what to pass.
    pub fn from_parts(level: FlagLevel, scope_id: Option<&str>) -> Result<Self, crate::Invalid> {
        match (level, scope_id.filter(|s| !s.is_empty())) {
            (FlagLevel::Global, None) => Ok(FlagScope::Global),
            (FlagLevel::Global, Some(_)) => Err(crate::Invalid::from("a global flag takes no scope_id".to_owned())),
            (FlagLevel::Tier, Some(id)) => TierName::parse(id).map(FlagScope::Tier).map_err(|e| e.to_string().into()),
            (FlagLevel::Tenant, Some(id)) => {
                TenantId::parse(id).map(FlagScope::Tenant).map_err(|e| e.to_string().into())
            }
            (FlagLevel::Tier, None) => {
                Err(crate::Invalid::from("a tier flag needs scope_id: the tier's name".to_owned()))
            }
            (FlagLevel::Tenant, None) => {
                Err(crate::Invalid::from("a tenant flag needs scope_id: the tenant's id".to_owned()))
            }
        }
    }
}

impl fmt::Display for FlagScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagScope::Global => f.write_str("global"),
            FlagScope::Tier(t) => write!(f, "tier:{t}"),
            FlagScope::Tenant(t) => write!(f, "tenant:{t}"),
        }
    }
}

/// The outcome of evaluating one flag for one tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    /// A value was found; `level` says which level decided it, `split` whether a percentage
    /// rollout selected the tenant, `version` which version of the flag was evaluated.
    Resolved { value: FlagValue, level: FlagLevel, split: bool, version: i64 },
    /// No level defines this flag for this tenant (or every rule's rollout left it out).
    Unknown,
    /// The flag's kill switch is off: no value, for every tenant.
    Disabled { version: i64 },
}

impl Evaluation {
    pub fn reason(&self) -> &'static str {
        match self {
            Evaluation::Resolved { level, .. } => level.reason(),
            Evaluation::Unknown => "unknown_flag",
            Evaluation::Disabled { .. } => "flag_disabled",
        }
    }

    /// The OpenFeature reason: `SPLIT` for a rollout, `TARGETING_MATCH` for a tenant or tier
    /// value, `STATIC` for the global value, `DEFAULT` when nothing applied, `DISABLED` for a
    /// flag whose kill switch is off.
    pub fn openfeature_reason(&self) -> &'static str {
        match self {
            Evaluation::Resolved { split: true, .. } => "SPLIT",
            Evaluation::Resolved { level: FlagLevel::Global, .. } => "STATIC",
            Evaluation::Resolved { .. } => "TARGETING_MATCH",
            Evaluation::Unknown => "DEFAULT",
            Evaluation::Disabled { .. } => "DISABLED",
        }
    }
}

/// A value set at one scope, optionally for a percentage of tenants only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlagRule {
    pub value: FlagValue,
    /// `Some(p)`: only tenants in the first `p` percent of buckets get `value` (0..=100).
    pub rollout: Option<u8>,
}

impl FlagRule {
    pub fn all(value: FlagValue) -> Self {
        Self { value, rollout: None }
    }
}

/// The stable bucket of a tenant for a flag, in `0..10_000`: FNV-1a over `key 0xFF tenant`,
/// finished with the SplitMix64 mixer. Fixed forever: changing it would reshuffle rollouts.
pub fn rollout_bucket(key: &FlagKey, tenant: &TenantId) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_str().bytes().chain(std::iter::once(0xFF)).chain(tenant.as_str().bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % 10_000) as u32
}

/// Whether `tenant` is inside a rollout of `percent` for `key`.
pub fn in_rollout(key: &FlagKey, tenant: &TenantId, percent: u8) -> bool {
    rollout_bucket(key, tenant) < u32::from(percent.min(100)) * 100
}

/// Every flag value at every level, indexed for evaluation without allocation.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FlagSet {
    global: HashMap<FlagKey, FlagRule>,
    tier: HashMap<TierName, HashMap<FlagKey, FlagRule>>,
    tenant: HashMap<TenantId, HashMap<FlagKey, FlagRule>>,
    versions: HashMap<FlagKey, i64>,
    /// Keys defined globally or for a tier (not secret to any tenant), kept sorted.
    shared_keys: std::collections::BTreeSet<FlagKey>,
    /// Flags whose kill switch is off.
    #[serde(default)]
    disabled: std::collections::BTreeSet<FlagKey>,
}

impl FlagSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the value of `key` at `scope`, for every tenant of the scope.
    pub fn set(&mut self, scope: FlagScope, key: FlagKey, value: FlagValue) {
        self.set_rule(scope, key, FlagRule::all(value));
    }

    /// Sets (or replaces) the rule of `key` at `scope`.
    pub fn set_rule(&mut self, scope: FlagScope, key: FlagKey, rule: FlagRule) {
        if !matches!(scope, FlagScope::Tenant(_)) && !self.shared_keys.contains(&key) {
            self.shared_keys.insert(key.clone());
        }
        match scope {
            FlagScope::Global => {
                self.global.insert(key, rule);
            }
            FlagScope::Tier(t) => {
                self.tier.entry(t).or_default().insert(key, rule);
            }
            FlagScope::Tenant(t) => {
                self.tenant.entry(t).or_default().insert(key, rule);
            }
        }
    }

    /// Records the flag's version (it grows with every change of any of its values).
    pub fn set_version(&mut self, key: FlagKey, version: i64) {
        self.versions.insert(key, version);
    }

    /// Turns the flag's kill switch off: it evaluates to [`Evaluation::Disabled`] everywhere.
    pub fn disable(&mut self, key: FlagKey) {
        self.disabled.insert(key);
    }

    pub fn version(&self, key: &FlagKey) -> i64 {
        self.versions.get(key).copied().unwrap_or(0)
    }

    /// Evaluates `key` for a tenant of `tier`: tenant override, then tier default, then global
    /// default; at each level a rollout the tenant is outside of falls through to the next.
    pub fn evaluate(&self, key: &FlagKey, tenant: &TenantId, tier: &TierName) -> Evaluation {
        self.evaluate_in(key, tenant, self.tenant.get(tenant), self.tier.get(tier))
    }

    fn evaluate_in(
        &self,
        key: &FlagKey,
        tenant: &TenantId,
        tenant_rules: Option<&HashMap<FlagKey, FlagRule>>,
        tier_rules: Option<&HashMap<FlagKey, FlagRule>>,
    ) -> Evaluation {
        if !self.disabled.is_empty() && self.disabled.contains(key) {
            let defined = tenant_rules.is_some_and(|m| m.contains_key(key)) || self.shared_keys.contains(key);
            return if defined { Evaluation::Disabled { version: self.version(key) } } else { Evaluation::Unknown };
        }
        let levels = [
            (tenant_rules.and_then(|m| m.get(key)), FlagLevel::Tenant),
            (tier_rules.and_then(|m| m.get(key)), FlagLevel::Tier),
            (self.global.get(key), FlagLevel::Global),
        ];
        for (rule, level) in levels {
            let Some(rule) = rule else { continue };
            match rule.rollout {
                None => {
                    return Evaluation::Resolved {
                        value: rule.value.clone(),
                        level,
                        split: false,
                        version: self.version(key),
                    };
                }
                Some(p) if in_rollout(key, tenant, p) => {
                    return Evaluation::Resolved {
                        value: rule.value.clone(),
                        level,
                        split: true,
                        version: self.version(key),
                    };
                }
                Some(_) => {}
            }
        }
        Evaluation::Unknown
    }

    /// Whether `key` comes out the same for every tenant of every tier in `tiers`: no tenant
    /// overrides, no rollouts, and every tier's outcome equal (a platform view: needs every
    /// tenant's overrides loaded).
    pub fn is_uniform(&self, key: &FlagKey, tiers: &[TierName]) -> bool {
        if self.tenant.values().any(|m| m.contains_key(key)) {
            return false;
        }
        let global = self.global.get(key);
        if global.is_some_and(|r| r.rollout.is_some()) {
            return false;
        }
        let mut outcomes = tiers.iter().map(|t| match self.tier.get(t).and_then(|m| m.get(key)) {
            Some(rule) if rule.rollout.is_some() => None,
            Some(rule) => Some(Some(&rule.value)),
            None => Some(global.map(|g| &g.value)),
        });
        let Some(Some(first)) = outcomes.next() else { return false };
        outcomes.all(|o| o == Some(first))
    }

    /// Every key defined at any level, sorted (a platform view: includes every tenant's overrides).
    pub fn keys(&self) -> Vec<&FlagKey> {
        let mut keys: Vec<&FlagKey> =
            self.shared_keys.iter().chain(self.tenant.values().flat_map(|m| m.keys())).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Evaluates, for one tenant, every flag defined globally, for any tier, or for this tenant —
    /// never the names of other tenants' overrides. Sorted by key.
    pub fn evaluate_all(&self, tenant: &TenantId, tier: &TierName) -> Vec<(FlagKey, Evaluation)> {
        let tenant_rules = self.tenant.get(tenant);
        let tier_rules = self.tier.get(tier);
        let eval = |k: &FlagKey| self.evaluate_in(k, tenant, tenant_rules, tier_rules);
        let mut own: Vec<&FlagKey> =
            tenant_rules.map(|m| m.keys().filter(|k| !self.shared_keys.contains(*k)).collect()).unwrap_or_default();
        own.sort_unstable();
        let mut out = Vec::with_capacity(self.shared_keys.len() + own.len());
        let mut own = own.into_iter().peekable();
        for k in &self.shared_keys {
            while let Some(o) = own.next_if(|o| *o < k) {
                out.push((o.clone(), eval(o)));
            }
            out.push((k.clone(), eval(k)));
        }
        for o in own {
            out.push((o.clone(), eval(o)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(s: &str) -> FlagKey {
        FlagKey::parse(s).unwrap()
    }
    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }
    fn tier(s: &str) -> TierName {
        TierName::parse(s).unwrap()
    }

    /// Rollout buckets are promised stable forever (changing them reshuffles who is in a
    /// rollout). Known answers computed by an independent implementation of the documented
    /// algorithm (FNV-1a over `key 0xFF tenant`, SplitMix64 finish, modulo 10,000).
    #[test]
    fn rollout_buckets_match_known_answers() {
        let cases = [
            ("beta", "finance", 395),
            ("beta", "legal", 5430),
            ("new-ui", "acme", 8091),
            ("feature.f001", "bench-0", 3020),
            ("rag.rerank", "t1", 2183),
            ("a", "zz", 1275),
        ];
        for (k, t, bucket) in cases {
            assert_eq!(rollout_bucket(&key(k), &tenant(t)), bucket, "bucket of ({k}, {t})");
        }
        assert!(in_rollout(&key("beta"), &tenant("finance"), 4), "bucket 395 is inside 4%");
        assert!(!in_rollout(&key("beta"), &tenant("finance"), 3), "and outside 3%");
    }

    /// The seed's PractaThon hierarchy.
    fn seed_flags() -> FlagSet {
        let mut f = FlagSet::new();
        f.set(FlagScope::Global, key("basic_search"), FlagValue::Bool(true));
        f.set(FlagScope::Global, key("advanced_analytics"), FlagValue::Bool(false));
        for k in ["advanced_analytics", "dedicated_namespace", "priority_support"] {
            f.set(FlagScope::Tier(tier("platinum")), key(k), FlagValue::Bool(true));
        }
        for k in ["advanced_analytics", "shared_namespace"] {
            f.set(FlagScope::Tier(tier("gold")), key(k), FlagValue::Bool(true));
        }
        for k in ["basic_analytics", "shared_namespace"] {
            f.set(FlagScope::Tier(tier("silver")), key(k), FlagValue::Bool(true));
        }
        f.set(FlagScope::Tenant(tenant("marketing")), key("advanced_analytics"), FlagValue::Bool(true));
        f
    }

    fn check(flags: &FlagSet, t: &str, tr: &str, k: &str, expected: Option<(bool, FlagLevel)>) {
        let got = flags.evaluate(&key(k), &tenant(t), &tier(tr));
        let got = match got {
            Evaluation::Resolved { value, level, .. } => Some((value.as_bool().unwrap(), level)),
            Evaluation::Unknown | Evaluation::Disabled { .. } => None,
        };
        assert_eq!(got, expected, "{t}/{tr}/{k}");
    }

    #[test]
    fn seed_hierarchy_cases() {
        let f = seed_flags();
        use FlagLevel::*;
        for (t, tr, k, expected) in [
            ("finance", "platinum", "advanced_analytics", Some((true, Tier))),
            ("marketing", "silver", "advanced_analytics", Some((true, Tenant))),
            ("hr", "silver", "advanced_analytics", Some((false, Global))),
            ("ops", "silver", "advanced_analytics", Some((false, Global))),
            ("legal", "gold", "advanced_analytics", Some((true, Tier))),
            ("hr", "silver", "basic_search", Some((true, Global))),
            ("hr", "silver", "basic_analytics", Some((true, Tier))),
            ("finance", "platinum", "basic_analytics", None),
            ("finance", "platinum", "no_such_flag", None),
        ] {
            check(&f, t, tr, k, expected);
        }
    }

    #[test]
    fn evaluate_all_lists_every_key_once() {
        let f = seed_flags();
        let all = f.evaluate_all(&tenant("hr"), &tier("silver"));
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "advanced_analytics",
                "basic_analytics",
                "basic_search",
                "dedicated_namespace",
                "priority_support",
                "shared_namespace"
            ]
        );
        assert_eq!(all[3].1, Evaluation::Unknown);
    }

    #[test]
    fn evaluate_all_never_names_another_tenants_overrides() {
        let mut f = seed_flags();
        f.set(FlagScope::Tenant(tenant("acme")), key("acme_secret_project"), FlagValue::Bool(true));
        f.set(FlagScope::Tenant(tenant("hr")), key("hr_only"), FlagValue::Bool(true));
        let hr: Vec<String> =
            f.evaluate_all(&tenant("hr"), &tier("silver")).into_iter().map(|(k, _)| k.to_string()).collect();
        assert!(!hr.iter().any(|k| k == "acme_secret_project"), "{hr:?}");
        assert!(hr.iter().any(|k| k == "hr_only"));
        let mut sorted = hr.clone();
        sorted.sort();
        assert_eq!(hr, sorted);
    }

    #[test]
    fn uniform_flags_are_found() {
        let tiers: Vec<TierName> = ["bronze", "silver", "gold", "platinum"].iter().map(|t| tier(t)).collect();
        let mut f = FlagSet::new();
        f.set(FlagScope::Global, key("everyone"), FlagValue::Bool(true));
        f.set(FlagScope::Global, key("tiered"), FlagValue::Bool(false));
        f.set(FlagScope::Tier(tier("gold")), key("tiered"), FlagValue::Bool(true));
        f.set(FlagScope::Global, key("same_everywhere"), FlagValue::Bool(true));
        f.set(FlagScope::Tier(tier("gold")), key("same_everywhere"), FlagValue::Bool(true));
        f.set(FlagScope::Global, key("one_tenant"), FlagValue::Bool(false));
        f.set(FlagScope::Tenant(tenant("acme")), key("one_tenant"), FlagValue::Bool(true));
        f.set_rule(FlagScope::Global, key("rolling"), FlagRule { value: FlagValue::Bool(true), rollout: Some(30) });
        f.set(FlagScope::Tier(tier("gold")), key("gold_only"), FlagValue::Bool(true));
        for (k, uniform) in [
            ("everyone", true),
            ("same_everywhere", true),
            ("tiered", false),
            ("one_tenant", false),
            ("rolling", false),
            ("gold_only", false),
        ] {
            assert_eq!(f.is_uniform(&key(k), &tiers), uniform, "{k}");
        }
    }

    #[test]
    fn a_disabled_flag_is_disabled_for_every_tenant_and_only_where_defined() {
        let mut f = seed_flags();
        f.set_version(key("advanced_analytics"), 4);
        f.set(FlagScope::Tenant(tenant("legal")), key("secret_pilot"), FlagValue::Bool(true));
        f.disable(key("advanced_analytics"));
        f.disable(key("secret_pilot"));
        for (t, tr) in [("marketing", "silver"), ("finance", "platinum"), ("hr", "bronze")] {
            let e = f.evaluate(&key("advanced_analytics"), &tenant(t), &tier(tr));
            assert_eq!(e, Evaluation::Disabled { version: 4 }, "{t}");
            assert_eq!(e.openfeature_reason(), "DISABLED");
            assert_eq!(e.reason(), "flag_disabled");
        }
        // a tenant-only flag stays unknown to other tenants even when disabled (no existence oracle)
        assert_eq!(f.evaluate(&key("secret_pilot"), &tenant("finance"), &tier("gold")), Evaluation::Unknown);
        assert!(matches!(
            f.evaluate(&key("secret_pilot"), &tenant("legal"), &tier("gold")),
            Evaluation::Disabled { .. }
        ));
        // other flags are untouched
        check(&f, "hr", "bronze", "basic_search", Some((true, FlagLevel::Global)));
    }

    #[test]
    fn stale_report_names_its_reasons() {
        let now = time::macros::datetime!(2026-11-23 00:00 UTC);
        let def = |k: &str, age_days: i64, expires: Option<i64>| FlagDefinition {
            key: key(k),
            kind: FlagKind::Boolean,
            description: String::new(),
            owner: None,
            created_at: now - time::Duration::days(age_days),
            expires_at: expires.map(|d| now + time::Duration::days(d)),
            version: 1,
            updated_at: now,
            enabled: true,
        };
        let mut f = FlagSet::new();
        f.set(FlagScope::Global, key("fresh"), FlagValue::Bool(false));
        f.set(FlagScope::Tier(tier("gold")), key("fresh"), FlagValue::Bool(true));
        f.set(FlagScope::Global, key("old"), FlagValue::Bool(false));
        f.set(FlagScope::Tier(tier("gold")), key("old"), FlagValue::Bool(true));
        f.set(FlagScope::Global, key("expired"), FlagValue::Bool(false));
        f.set(FlagScope::Tier(tier("gold")), key("expired"), FlagValue::Bool(true));
        f.set(FlagScope::Global, key("flat"), FlagValue::Bool(true));
        let defs =
            [def("fresh", 10, Some(30)), def("old", 120, None), def("expired", 10, Some(-1)), def("flat", 5, None)];
        let report = stale_flags(&defs, &f, &[tier("silver"), tier("gold")], now, time::Duration::days(90));
        let got: Vec<(&str, Vec<&str>)> =
            report.iter().map(|(d, r)| (d.key.as_str(), r.iter().map(|x| x.as_str()).collect())).collect();
        assert_eq!(
            got,
            [
                ("old", vec!["older_than_max_age"]),
                ("expired", vec!["past_expiry"]),
                ("flat", vec!["same_for_every_tenant"])
            ]
        );
    }

    #[test]
    fn scope_parts_are_checked() {
        assert!(FlagScope::from_parts(FlagLevel::Tier, None).is_err());
        assert!(FlagScope::from_parts(FlagLevel::Global, Some("gold")).is_err());
        assert!(FlagScope::from_parts(FlagLevel::Tenant, Some("Bad Id")).is_err());
        assert_eq!(FlagScope::from_parts(FlagLevel::Tier, Some("gold")), Ok(FlagScope::Tier(tier("gold"))));
    }

    fn many_tenants(n: usize) -> Vec<TenantId> {
        (0..n).map(|i| tenant(&format!("tenant-{i:05}"))).collect()
    }

    #[test]
    fn rollout_falls_through_to_the_next_level() {
        let mut f = FlagSet::new();
        f.set(FlagScope::Global, key("new_ui"), FlagValue::Bool(false));
        f.set_rule(
            FlagScope::Tier(tier("gold")),
            key("new_ui"),
            FlagRule { value: FlagValue::Bool(true), rollout: Some(50) },
        );
        f.set_version(key("new_ui"), 7);
        let (mut inside, mut outside) = (0, 0);
        for t in many_tenants(400) {
            match f.evaluate(&key("new_ui"), &t, &tier("gold")) {
                Evaluation::Resolved {
                    value: FlagValue::Bool(true),
                    level: FlagLevel::Tier,
                    split: true,
                    version: 7,
                } => inside += 1,
                Evaluation::Resolved {
                    value: FlagValue::Bool(false),
                    level: FlagLevel::Global,
                    split: false,
                    version: 7,
                } => outside += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(inside > 150 && outside > 150, "{inside} / {outside}");
        // 0% selects nobody, 100% everybody
        f.set_rule(FlagScope::Global, key("x"), FlagRule { value: FlagValue::Bool(true), rollout: Some(0) });
        assert_eq!(f.evaluate(&key("x"), &tenant("a1"), &tier("gold")), Evaluation::Unknown);
        f.set_rule(FlagScope::Global, key("x"), FlagRule { value: FlagValue::Bool(true), rollout: Some(100) });
        assert!(matches!(
            f.evaluate(&key("x"), &tenant("a1"), &tier("gold")),
            Evaluation::Resolved { split: true, .. }
        ));
    }

    #[test]
    fn openfeature_reasons() {
        let f = seed_flags();
        assert_eq!(
            f.evaluate(&key("advanced_analytics"), &tenant("finance"), &tier("platinum")).openfeature_reason(),
            "TARGETING_MATCH"
        );
        assert_eq!(f.evaluate(&key("basic_search"), &tenant("hr"), &tier("silver")).openfeature_reason(), "STATIC");
        assert_eq!(f.evaluate(&key("nope"), &tenant("hr"), &tier("silver")).openfeature_reason(), "DEFAULT");
    }

    proptest! {
        /// Raising a rollout only adds tenants: everyone inside at p is inside at every q >= p.
        #[test]
        fn rollout_is_monotone(flag in "[a-z][a-z0-9_]{0,20}", t in "[a-z][a-z0-9-]{1,30}", p in 0u8..=100, q in 0u8..=100) {
            let (k, t) = (key(&flag), tenant(&t));
            let (lo, hi) = (p.min(q), p.max(q));
            prop_assert!(!in_rollout(&k, &t, lo) || in_rollout(&k, &t, hi));
        }

    }

    proptest! {
        // Fixed seed: the cases are random but reproducible, so a failure is a change of the hash,
        // never bad luck.
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x7e4a_4e77),
            ..ProptestConfig::default()
        })]

        /// At 1,000 tenants a rollout of p% selects p% ± 7 points for every flag key. (A hash that
        /// behaves like chance has a binomial spread: σ = 1.6 points at 50%, so ±3 points holds for
        /// ~94% of keys, not all — `rollout_shares_are_within_3_points_for_almost_every_key`.)
        #[test]
        fn rollout_distribution_is_bounded_for_every_key(flag in "[a-z][a-z0-9_.-]{0,30}", p in 0u8..=100) {
            let k = key(&flag);
            let tenants = many_tenants(1000);
            let selected = tenants.iter().filter(|t| in_rollout(&k, t, p)).count();
            let share = selected as f64 / 10.0;
            prop_assert!((share - f64::from(p)).abs() <= 7.0, "{}% selected for a {}% rollout", share, p);
        }
    }

    /// Over 2,000 flag keys and 1,000 tenants: the mean share is within 0.3 points of the target,
    /// and at least 94% of keys are within ±3 points at the worst percentage (50%).
    #[test]
    fn rollout_shares_are_within_3_points_for_almost_every_key() {
        let tenants = many_tenants(1000);
        for p in [1u8, 10, 25, 50, 75, 90, 99] {
            let shares: Vec<f64> = (0..2000)
                .map(|i| {
                    let k = key(&format!("flag-{i}"));
                    tenants.iter().filter(|t| in_rollout(&k, t, p)).count() as f64 / 10.0
                })
                .collect();
            let mean = shares.iter().sum::<f64>() / shares.len() as f64;
            assert!((mean - f64::from(p)).abs() <= 0.3, "mean share {mean} for {p}%");
            let within = shares.iter().filter(|s| (*s - f64::from(p)).abs() <= 3.0).count();
            assert!(within as f64 >= 0.94 * shares.len() as f64, "{within}/2000 keys within ±3 points at {p}%");
        }
    }

    const TENANTS: [&str; 4] = ["t0", "t1", "t2", "t3"];
    const TIERS: [&str; 3] = ["bronze", "silver", "gold"];
    const KEYS: [&str; 3] = ["f0", "f1", "f2"];

    fn scope_strategy() -> impl Strategy<Value = FlagScope> {
        prop_oneof![
            Just(FlagScope::Global),
            (0..TIERS.len()).prop_map(|i| FlagScope::Tier(tier(TIERS[i]))),
            (0..TENANTS.len()).prop_map(|i| FlagScope::Tenant(tenant(TENANTS[i]))),
        ]
    }

    proptest! {
        /// Over random hierarchies, evaluation is total and agrees with a naive reference model:
        /// the most specific level that defines the key wins, and its latest value is returned.
        #[test]
        fn evaluation_is_total_and_follows_precedence(
            writes in proptest::collection::vec((scope_strategy(), 0..KEYS.len(), any::<bool>()), 0..40)
        ) {
            let mut flags = FlagSet::new();
            for (scope, k, v) in &writes {
                flags.set(scope.clone(), key(KEYS[*k]), FlagValue::Bool(*v));
            }
            for t in TENANTS {
                for tr in TIERS {
                    for k in KEYS {
                        // reference: last write per level, most specific level first
                        let last_at = |want: &FlagScope| writes.iter().rev()
                            .find(|(s, kk, _)| s == want && KEYS[*kk] == k).map(|(_, _, v)| *v);
                        let expected = last_at(&FlagScope::Tenant(tenant(t))).map(|v| (v, FlagLevel::Tenant))
                            .or_else(|| last_at(&FlagScope::Tier(tier(tr))).map(|v| (v, FlagLevel::Tier)))
                            .or_else(|| last_at(&FlagScope::Global).map(|v| (v, FlagLevel::Global)));
                        let got = match flags.evaluate(&key(k), &tenant(t), &tier(tr)) {
                            Evaluation::Resolved { value, level, .. } => Some((value.as_bool().unwrap(), level)),
                            Evaluation::Unknown | Evaluation::Disabled { .. } => None,
                        };
                        prop_assert_eq!(got, expected);
                    }
                }
            }
        }
    }
}
