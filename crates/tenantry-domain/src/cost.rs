//! Cost rules that need no prices (issue 17, first part): splitting a fixed cost among tenants
//! exactly to the minor unit, and judging variances — reconciliation against a bill (±5% pass,
//! 5–10% warn, beyond 10% fail) and a tenant's spend against its budget (seed 004's ✓/⚠).
//! Amounts are integers of the currency's minor unit; percentages are exact ratios rounded only
//! for display, so no float ever decides a verdict.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use time::{Date, OffsetDateTime, UtcOffset};

use crate::ids::{Label, TenantId};
use crate::invalid::Invalid;

/// What a tenant is billed for, each with the unit its quantities are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Meter {
    /// Tokens sent to an embedding model (ingest and query).
    EmbeddingTokens,
    /// Tokens sent to a language model.
    LlmInputTokens,
    /// Tokens a language model produced.
    LlmOutputTokens,
    /// Vector searches.
    VectorQueries,
    /// API calls answered.
    ApiCalls,
    /// Stored bytes sampled over time, in byte-seconds (summed into GB-days and GB-months).
    StorageByteSeconds,
    /// Server time spent on the tenant's requests, in microseconds.
    ComputeMicros,
}

impl Meter {
    pub const ALL: [Meter; 7] = [
        Meter::EmbeddingTokens,
        Meter::LlmInputTokens,
        Meter::LlmOutputTokens,
        Meter::VectorQueries,
        Meter::ApiCalls,
        Meter::StorageByteSeconds,
        Meter::ComputeMicros,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Meter::EmbeddingTokens => "embedding_tokens",
            Meter::LlmInputTokens => "llm_input_tokens",
            Meter::LlmOutputTokens => "llm_output_tokens",
            Meter::VectorQueries => "vector_queries",
            Meter::ApiCalls => "api_calls",
            Meter::StorageByteSeconds => "storage_byte_seconds",
            Meter::ComputeMicros => "compute_micros",
        }
    }

    /// The unit of a quantity of this meter.
    pub fn unit(self) -> &'static str {
        match self {
            Meter::EmbeddingTokens | Meter::LlmInputTokens | Meter::LlmOutputTokens => "token",
            Meter::VectorQueries => "query",
            Meter::ApiCalls => "call",
            Meter::StorageByteSeconds => "byte_second",
            Meter::ComputeMicros => "microsecond",
        }
    }

    /// Whether events of this meter name the model (and provider) they were used with.
    pub fn per_model(self) -> bool {
        matches!(self, Meter::EmbeddingTokens | Meter::LlmInputTokens | Meter::LlmOutputTokens)
    }

    pub fn parse(name: &str) -> Result<Self, Invalid> {
        Self::ALL.iter().copied().find(|m| m.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
            Invalid::new(format!("{name:?} is not a meter: meters are {}", names.join(", ")))
        })
    }
}

/// One billable thing a tenant caused. `key` makes it idempotent: recording the same key twice
/// counts it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub tenant: TenantId,
    pub meter: Meter,
    pub quantity: u64,
    /// The model, for per-model meters (`provider/model`, e.g. `openai/text-embedding-3-small`).
    pub model: Option<Label>,
    pub at: OffsetDateTime,
    pub key: String,
}

impl UsageEvent {
    pub fn new(
        tenant: TenantId,
        meter: Meter,
        quantity: u64,
        model: Option<Label>,
        at: OffsetDateTime,
        key: impl Into<String>,
    ) -> Result<Self, Invalid> {
        let key = key.into();
        if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
            return Err(Invalid::new("a usage event's idempotency key is 1 to 200 printable characters"));
        }
        if meter.per_model() != model.is_some() {
            return Err(Invalid::new(format!(
                "{} events {} a model",
                meter.as_str(),
                if meter.per_model() { "need" } else { "take no" }
            )));
        }
        Ok(Self { tenant, meter, quantity, model, at, key })
    }

    /// The UTC day the event falls on (reports and month boundaries are in UTC).
    pub fn day(&self) -> Date {
        self.at.to_offset(UtcOffset::UTC).date()
    }
}

/// Where a day's usage rolls up: one row per tenant, meter, model and UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub tenant: TenantId,
    pub meter: Meter,
    pub model: Option<Label>,
    pub day: Date,
}

/// Sums events into daily rollups, counting each idempotency key once (the first event with a
/// key wins; a later one with the same key is a retry of the same thing).
pub fn roll_up<'a>(events: impl IntoIterator<Item = &'a UsageEvent>) -> BTreeMap<RollupKey, u64> {
    let mut seen = std::collections::HashSet::new();
    let mut rollups = BTreeMap::new();
    for e in events {
        if !seen.insert((e.tenant.clone(), e.key.as_str())) {
            continue;
        }
        let key = RollupKey { tenant: e.tenant.clone(), meter: e.meter, model: e.model.clone(), day: e.day() };
        *rollups.entry(key).or_insert(0) += e.quantity;
    }
    rollups
}

/// Splits `total` (minor units, ≥ 0) among the parties in proportion to their weights, by the
/// largest-remainder method: each gets the floor of its exact share, and the minor units left
/// over go one each to the largest remainders (ties to the earlier party). The shares sum to
/// `total` exactly. With every weight zero, the split is even (by the same rule).
pub fn allocate(total: i64, weights: &[u64]) -> Vec<i64> {
    if weights.is_empty() || total <= 0 {
        return vec![0; weights.len()];
    }
    let even = weights.iter().all(|w| *w == 0);
    let weight = |w: u64| if even { 1u128 } else { u128::from(w) };
    let sum: u128 = weights.iter().map(|w| weight(*w)).sum();
    let total = total as u128;
    let mut shares: Vec<(usize, u128, u128)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let exact = total * weight(*w);
            (i, exact / sum, exact % sum)
        })
        .collect();
    let given: u128 = shares.iter().map(|s| s.1).sum();
    let mut left = total - given;
    let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
    by_remainder.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2).then(a.cmp(b)));
    for i in by_remainder {
        if left == 0 {
            break;
        }
        shares[i].1 += 1;
        left -= 1;
    }
    shares.into_iter().map(|(_, share, _)| share as i64).collect()
}

/// A signed difference of `actual` from `expected` as an exact ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variance {
    /// `actual - expected`, in minor units.
    pub difference: i64,
    /// `expected`, in minor units (> 0).
    pub basis: i64,
}

impl Variance {
    /// `None` when `expected` is not positive (no basis to compare against).
    pub fn of(actual: i64, expected: i64) -> Option<Self> {
        (expected > 0).then(|| Variance { difference: actual - expected, basis: expected })
    }

    /// Whether |difference| / basis is at most `percent` / 100, exactly.
    pub fn within_percent(&self, percent: i64) -> bool {
        i128::from(self.difference).abs() * 100 <= i128::from(self.basis) * i128::from(percent)
    }

    /// The variance in percent, rounded half away from zero to one decimal (display only).
    pub fn percent_one_decimal(&self) -> f64 {
        self.tenths_of_percent() as f64 / 10.0
    }

    /// The variance in percent, rounded half away from zero to one decimal, exactly.
    pub fn percent(&self) -> rust_decimal::Decimal {
        rust_decimal::Decimal::new(self.tenths_of_percent() as i64, 1)
    }

    fn tenths_of_percent(&self) -> i128 {
        let (num, den) = (i128::from(self.difference) * 1000, i128::from(self.basis));
        let (mut tenths, rest) = (num / den, num % den);
        if 2 * rest.abs() >= den {
            tenths += num.signum();
        }
        tenths
    }
}

/// How allocated costs compare with an actual bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciliation {
    /// Within ±5%.
    Pass,
    /// Beyond 5%, within 10%.
    Warn,
    /// Beyond 10%: stop and find out why.
    Fail,
}

/// Judges allocated costs against the actual bill (the bill is the basis).
pub fn reconcile(allocated: i64, billed: i64) -> Option<Reconciliation> {
    let v = Variance::of(allocated, billed)?;
    Some(if v.within_percent(5) {
        Reconciliation::Pass
    } else if v.within_percent(10) {
        Reconciliation::Warn
    } else {
        Reconciliation::Fail
    })
}

/// A tenant's spend against its budget, as seed 004 reports it: under (✓) or over (⚠).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetMark {
    Under,
    Over,
}

impl BudgetMark {
    pub fn of(actual: i64, budget: i64) -> BudgetMark {
        match actual.cmp(&budget) {
            Ordering::Greater => BudgetMark::Over,
            Ordering::Less | Ordering::Equal => BudgetMark::Under,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BudgetMark::Under => "✓",
            BudgetMark::Over => "⚠",
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn events_are_checked_and_roll_up_per_tenant_meter_model_and_utc_day_once_per_key() {
        let model = Some(Label::parse("openai/text-embedding-3-small").unwrap());
        let at = time::macros::datetime!(2026-11-30 23:30 -02:00); // 2026-12-01 01:30 UTC
        let ev = |t: &str, m: Meter, q, key: &str| {
            UsageEvent::new(tenant(t), m, q, if m.per_model() { model.clone() } else { None }, at, key).unwrap()
        };
        let events = [
            ev("acme", Meter::EmbeddingTokens, 100, "req-1:embed"),
            ev("acme", Meter::EmbeddingTokens, 50, "req-2:embed"),
            ev("acme", Meter::EmbeddingTokens, 100, "req-1:embed"), // a retry of req-1
            ev("beta", Meter::EmbeddingTokens, 7, "req-1:embed"),   // another tenant's own key
            ev("acme", Meter::VectorQueries, 1, "req-2:query"),
        ];
        let rollups = roll_up(&events);
        let day = time::macros::date!(2026 - 12 - 01);
        let key = |t: &str, m: Meter| RollupKey {
            tenant: tenant(t),
            meter: m,
            model: if m.per_model() { model.clone() } else { None },
            day,
        };
        assert_eq!(rollups[&key("acme", Meter::EmbeddingTokens)], 150, "the retry counted once");
        assert_eq!(rollups[&key("beta", Meter::EmbeddingTokens)], 7);
        assert_eq!(rollups[&key("acme", Meter::VectorQueries)], 1);
        assert_eq!(rollups.len(), 3);
        // refused shapes
        assert!(UsageEvent::new(tenant("acme"), Meter::EmbeddingTokens, 1, None, at, "k").is_err(), "needs a model");
        assert!(UsageEvent::new(tenant("acme"), Meter::ApiCalls, 1, model.clone(), at, "k").is_err(), "takes no model");
        assert!(UsageEvent::new(tenant("acme"), Meter::ApiCalls, 1, None, at, "").is_err(), "needs a key");
        for m in Meter::ALL {
            assert_eq!(Meter::parse(m.as_str()).unwrap(), m);
            assert!(!m.unit().is_empty());
        }
        assert!(Meter::parse("coffee").unwrap_err().reason().contains("api_calls"));
    }

    #[test]
    fn allocation_sums_exactly_and_gives_leftovers_to_the_largest_remainders() {
        // $50.00 among weights 1:1:1 → 16.67, 16.67, 16.66
        assert_eq!(allocate(5_000, &[1, 1, 1]), [1_667, 1_667, 1_666]);
        // proportional: 100 minor units at 1:3 → 25, 75
        assert_eq!(allocate(100, &[1, 3]), [25, 75]);
        // remainders 0.5 each: ties go to the earlier party
        assert_eq!(allocate(1, &[1, 1]), [1, 0]);
        // no usage at all: an even split
        assert_eq!(allocate(10, &[0, 0, 0]), [4, 3, 3]);
        // a party with no weight gets nothing when others have weight
        assert_eq!(allocate(10, &[0, 5]), [0, 10]);
        assert_eq!(allocate(0, &[1, 2]), [0, 0]);
        assert!(allocate(7, &[]).is_empty());
    }

    proptest! {
        #[test]
        fn shares_always_sum_to_the_total(total in 0i64..10_000_000_000, weights in prop::collection::vec(0u64..1_000_000_000, 1..50)) {
            let shares = allocate(total, &weights);
            prop_assert_eq!(shares.iter().sum::<i64>(), total);
            prop_assert!(shares.iter().all(|s| *s >= 0));
        }
    }

    #[test]
    fn reconciliation_follows_the_seed_thresholds() {
        // bills at 3%, 7% and 12% variance
        assert_eq!(reconcile(10_300, 10_000), Some(Reconciliation::Pass));
        assert_eq!(reconcile(9_300, 10_000), Some(Reconciliation::Warn));
        assert_eq!(reconcile(11_200, 10_000), Some(Reconciliation::Fail));
        // the boundaries: exactly 5% passes, exactly 10% warns
        assert_eq!(reconcile(10_500, 10_000), Some(Reconciliation::Pass));
        assert_eq!(reconcile(10_501, 10_000), Some(Reconciliation::Warn));
        assert_eq!(reconcile(9_000, 10_000), Some(Reconciliation::Warn));
        assert_eq!(reconcile(8_999, 10_000), Some(Reconciliation::Fail));
        assert_eq!(reconcile(5, 0), None, "no bill to compare against");
    }

    #[test]
    fn seed_004_budget_variance_lines() {
        // in paise: Legal ₹2.5L budget, ₹2.48L actual; Finance ₹4.2L vs ₹4.7L; HR ₹1L vs ₹85.5K
        let lakh = 100_000 * 100;
        let cases = [
            ("legal", 250 * lakh / 100, 248 * lakh / 100, -0.8, BudgetMark::Under),
            ("finance", 420 * lakh / 100, 470 * lakh / 100, 11.9, BudgetMark::Over),
            ("hr", lakh, 85_500 * 100, -14.5, BudgetMark::Under),
        ];
        for (who, budget, actual, percent, mark) in cases {
            let v = Variance::of(actual, budget).unwrap();
            assert_eq!(v.percent_one_decimal(), percent, "{who}");
            assert_eq!(BudgetMark::of(actual, budget), mark, "{who}");
        }
        assert_eq!(BudgetMark::Over.symbol(), "⚠");
    }
}
