//! Hierarchical feature-flag evaluation: tenant override > tier default > global default.
//!
//! Evaluation is total: every (flag, tenant, tier) gets an [`Evaluation`] — a value with the level
//! that decided it, or an explicit [`Evaluation::Unknown`] (never a silent `false`).

use std::collections::HashMap;
use std::fmt;

use crate::ids::{FlagKey, TenantId, TierName};

/// A flag's value. Booleans are the common case; strings, numbers and JSON objects carry
/// configuration (the seed's point that long-lived flags are configuration).
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    Bool(bool),
    String(String),
    Number(f64),
    Json(serde_json::Value),
}

impl FlagValue {
    /// Reads a JSON value: booleans, strings and finite numbers map to their variants, objects to
    /// `Json`. Null and arrays are refused (a flag always has a definite, typed value).
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::Bool(b) => Ok(FlagValue::Bool(b)),
            serde_json::Value::String(s) => Ok(FlagValue::String(s)),
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(FlagValue::Number)
                .ok_or_else(|| "flag numbers must be finite".to_owned()),
            v @ serde_json::Value::Object(_) => Ok(FlagValue::Json(v)),
            serde_json::Value::Null => Err("a flag value cannot be null".to_owned()),
            serde_json::Value::Array(_) => Err("a flag value cannot be a bare array: wrap it in an object".to_owned()),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FlagValue::Bool(b) => serde_json::Value::Bool(*b),
            FlagValue::String(s) => serde_json::Value::String(s.clone()),
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

    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "global" => Ok(FlagLevel::Global),
            "tier" => Ok(FlagLevel::Tier),
            "tenant" => Ok(FlagLevel::Tenant),
            other => Err(format!("scope {other:?} is not valid: use global, tier or tenant")),
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
    pub fn from_parts(level: FlagLevel, scope_id: Option<&str>) -> Result<Self, String> {
        match (level, scope_id.filter(|s| !s.is_empty())) {
            (FlagLevel::Global, None) => Ok(FlagScope::Global),
            (FlagLevel::Global, Some(_)) => Err("a global flag takes no scope_id".to_owned()),
            (FlagLevel::Tier, Some(id)) => TierName::parse(id).map(FlagScope::Tier).map_err(|e| e.to_string()),
            (FlagLevel::Tenant, Some(id)) => TenantId::parse(id).map(FlagScope::Tenant).map_err(|e| e.to_string()),
            (FlagLevel::Tier, None) => Err("a tier flag needs scope_id: the tier's name".to_owned()),
            (FlagLevel::Tenant, None) => Err("a tenant flag needs scope_id: the tenant's id".to_owned()),
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
    /// A value was found; `level` says which level decided it.
    Resolved { value: FlagValue, level: FlagLevel },
    /// No level defines this flag.
    Unknown,
}

impl Evaluation {
    pub fn reason(&self) -> &'static str {
        match self {
            Evaluation::Resolved { level, .. } => level.reason(),
            Evaluation::Unknown => "unknown_flag",
        }
    }
}

/// Every flag value at every level, indexed for evaluation without allocation.
#[derive(Debug, Clone, Default)]
pub struct FlagSet {
    global: HashMap<FlagKey, FlagValue>,
    tier: HashMap<TierName, HashMap<FlagKey, FlagValue>>,
    tenant: HashMap<TenantId, HashMap<FlagKey, FlagValue>>,
}

impl FlagSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the value of `key` at `scope`.
    pub fn set(&mut self, scope: FlagScope, key: FlagKey, value: FlagValue) {
        match scope {
            FlagScope::Global => {
                self.global.insert(key, value);
            }
            FlagScope::Tier(t) => {
                self.tier.entry(t).or_default().insert(key, value);
            }
            FlagScope::Tenant(t) => {
                self.tenant.entry(t).or_default().insert(key, value);
            }
        }
    }

    /// Evaluates `key` for a tenant of `tier`: tenant override, then tier default, then global default.
    pub fn evaluate(&self, key: &FlagKey, tenant: &TenantId, tier: &TierName) -> Evaluation {
        let found = self
            .tenant
            .get(tenant)
            .and_then(|m| m.get(key))
            .map(|v| (v, FlagLevel::Tenant))
            .or_else(|| self.tier.get(tier).and_then(|m| m.get(key)).map(|v| (v, FlagLevel::Tier)))
            .or_else(|| self.global.get(key).map(|v| (v, FlagLevel::Global)));
        match found {
            Some((value, level)) => Evaluation::Resolved { value: value.clone(), level },
            None => Evaluation::Unknown,
        }
    }

    /// Every key defined at any level, sorted.
    pub fn keys(&self) -> Vec<&FlagKey> {
        let mut keys: Vec<&FlagKey> = self
            .global
            .keys()
            .chain(self.tier.values().flat_map(|m| m.keys()))
            .chain(self.tenant.values().flat_map(|m| m.keys()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Evaluates every defined flag for one tenant, sorted by key.
    pub fn evaluate_all(&self, tenant: &TenantId, tier: &TierName) -> Vec<(FlagKey, Evaluation)> {
        self.keys().into_iter().map(|k| (k.clone(), self.evaluate(k, tenant, tier))).collect()
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
            Evaluation::Resolved { value, level } => Some((value.as_bool().unwrap(), level)),
            Evaluation::Unknown => None,
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
    fn scope_parts_are_checked() {
        assert!(FlagScope::from_parts(FlagLevel::Tier, None).is_err());
        assert!(FlagScope::from_parts(FlagLevel::Global, Some("gold")).is_err());
        assert!(FlagScope::from_parts(FlagLevel::Tenant, Some("Bad Id")).is_err());
        assert_eq!(FlagScope::from_parts(FlagLevel::Tier, Some("gold")), Ok(FlagScope::Tier(tier("gold"))));
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
                            Evaluation::Resolved { value, level } => Some((value.as_bool().unwrap(), level)),
                            Evaluation::Unknown => None,
                        };
                        prop_assert_eq!(got, expected);
                    }
                }
            }
        }
    }
}
