//! Pricing a month of usage (issue 17): the versioned price book, fixed monthly costs and their
//! allocation, the per-tenant report, the chargeback by cost center and the reconciliation
//! against actual bills.
//!
//! Money rules: unit prices are exact decimals (`rust_decimal`), never floats. A report line
//! (tenant, meter, model, provider) is priced exactly — each day's quantity at the price in effect
//! on that day — and rounded once, half away from zero, to the minor unit (hundredths, as
//! [`Money`]); a tenant's variable cost is the sum of its rounded lines. Fixed costs are whole
//! minor units split by [`allocate`], so their shares sum exactly to the item.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::{Decimal, RoundingStrategy};
use time::{Date, Month as CalendarMonth};

use crate::cost::{BudgetMark, Meter, Reconciliation, RollupKey, Variance, allocate, reconcile};
use crate::ids::{Label, TenantId};
use crate::invalid::Invalid;
use crate::money::{Currency, Money};

/// A calendar month in UTC, e.g. `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: CalendarMonth,
}

impl Month {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new(format!("month {text:?} is not valid: use YYYY-MM, e.g. 2026-11"));
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        let month = CalendarMonth::try_from(month).map_err(|_| bad())?;
        if !(1970..=9998).contains(&year) {
            return Err(bad());
        }
        Ok(Self { year, month })
    }

    /// The month a day falls in.
    pub fn of(day: Date) -> Self {
        Self { year: day.year(), month: day.month() }
    }

    pub fn first_day(self) -> Date {
        Date::from_calendar_date(self.year, self.month, 1).expect("a valid month has a first day")
    }

    pub fn next(self) -> Self {
        match self.month {
            CalendarMonth::December => Self { year: self.year + 1, month: CalendarMonth::January },
            m => Self { year: self.year, month: m.next() },
        }
    }

    /// The first day after the month.
    pub fn end(self) -> Date {
        self.next().first_day()
    }

    pub fn days(self) -> i64 {
        (self.end() - self.first_day()).whole_days()
    }

    pub fn seconds(self) -> i64 {
        self.days() * 86_400
    }

    pub fn contains(self, day: Date) -> bool {
        Self::of(day) == self
    }
}

/// Parses a UTC day, `YYYY-MM-DD`; errors name `field`.
pub fn parse_day(field: &str, text: &str) -> Result<Date, Invalid> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format)
        .map_err(|_| Invalid::new(format!("{field} {text:?} is not a day: use YYYY-MM-DD, e.g. 2026-11-01")))
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

impl Meter {
    /// What a unit price of this meter is per: prices are quoted the way providers quote them.
    pub fn price_unit(self) -> &'static str {
        match self {
            Meter::EmbeddingTokens | Meter::LlmInputTokens | Meter::LlmOutputTokens => "1K tokens",
            Meter::VectorQueries => "query",
            Meter::ApiCalls => "call",
            Meter::StorageByteSeconds => "GB-month",
            Meter::ComputeMicros => "compute hour",
        }
    }

    /// How many of this meter's quantities make one price unit in `month` (a GB-month is
    /// 10⁹ bytes held for every second of the month being reported).
    pub fn quantities_per_price_unit(self, month: Month) -> Decimal {
        match self {
            Meter::EmbeddingTokens | Meter::LlmInputTokens | Meter::LlmOutputTokens => Decimal::from(1_000),
            Meter::VectorQueries | Meter::ApiCalls => Decimal::ONE,
            Meter::StorageByteSeconds => Decimal::from(1_000_000_000i64) * Decimal::from(month.seconds()),
            Meter::ComputeMicros => Decimal::from(3_600_000_000i64),
        }
    }
}

/// One version of a unit price: from `effective_from` on, until a later version of the same
/// meter, model and currency takes over. `model: None` prices every model of the meter that has
/// no price of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub meter: Meter,
    pub model: Option<Label>,
    /// Who bills it (reconciliation compares per provider).
    pub provider: Label,
    pub currency: Currency,
    /// Per [`Meter::price_unit`].
    pub unit_price: Decimal,
    pub effective_from: Date,
}

impl Price {
    pub fn new(
        meter: Meter,
        model: Option<Label>,
        provider: Label,
        currency: Currency,
        unit_price: Decimal,
        effective_from: Date,
    ) -> Result<Self, Invalid> {
        if unit_price.is_sign_negative() {
            return Err(Invalid::new("a unit price cannot be negative"));
        }
        if unit_price.scale() > 12 {
            return Err(Invalid::new("a unit price has at most 12 decimal places"));
        }
        if model.is_some() && !meter.per_model() {
            return Err(Invalid::new(format!("{} is not priced per model", meter.as_str())));
        }
        Ok(Self { meter, model, provider, currency, unit_price: unit_price.normalize(), effective_from })
    }

    /// The exact cost of `quantity` of this price's meter in `month` (`None` past `Decimal`'s range).
    pub fn amount(&self, quantity: u64, month: Month) -> Option<Decimal> {
        Decimal::from(quantity)
            .checked_mul(self.unit_price)
            .and_then(|a| a.checked_div(self.meter.quantities_per_price_unit(month)))
    }

    /// Parses a unit price such as `0.0001`.
    pub fn parse_unit_price(text: &str) -> Result<Decimal, Invalid> {
        let bad =
            || Invalid::new(format!("unit price {text:?} is not valid: use a non-negative decimal such as 0.0001"));
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(bad());
        }
        text.parse::<Decimal>().map_err(|_| bad())
    }
}

/// Every price version the platform has set.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    prices: Vec<Price>,
}

impl PriceBook {
    pub fn new(prices: Vec<Price>) -> Self {
        Self { prices }
    }

    pub fn prices(&self) -> &[Price] {
        &self.prices
    }

    /// The price of `meter` for `model` on `day` in `currency`: the model's own latest version
    /// effective by then, else the meter's any-model one.
    pub fn price_for(&self, meter: Meter, model: Option<&Label>, day: Date, currency: &Currency) -> Option<&Price> {
        let latest = |want_model: Option<&Label>| {
            self.prices
                .iter()
                .filter(|p| {
                    p.meter == meter
                        && &p.currency == currency
                        && p.effective_from <= day
                        && p.model.as_ref() == want_model
                })
                .max_by_key(|p| p.effective_from)
        };
        model.and_then(|m| latest(Some(m))).or_else(|| latest(None))
    }

    /// The currency of the most recently effective price (the platform's usual currency).
    pub fn usual_currency(&self) -> Option<&Currency> {
        self.prices.iter().max_by_key(|p| p.effective_from).map(|p| &p.currency)
    }

    /// Whether a language model's input and output tokens are both priced on `day` in the
    /// book's usual currency (by a price of the model's own, or the meter's price for every
    /// model): what answering with it needs, so that its answers can be costed.
    pub fn prices_model(&self, model: &Label, day: Date) -> bool {
        let Some(currency) = self.usual_currency() else { return false };
        [Meter::LlmInputTokens, Meter::LlmOutputTokens]
            .into_iter()
            .all(|m| self.price_for(m, Some(model), day, currency).is_some())
    }
}

/// The price books shipped with Tenantry, by name.
pub const PRESETS: [&str; 2] = ["seed-002-usd", "seed-004-inr"];

/// A shipped price book, effective from `from`: `seed-002-usd` (seed 002's per-query rates) or
/// `seed-004-inr` (seed 004's GCC rate card, `api_calls × ₹0.50 + storage_gb × ₹200 +
/// compute_hours × ₹50`, storage read as GB-month).
pub fn preset(name: &str, from: Date) -> Result<Vec<Price>, Invalid> {
    let label = |s: &str| Label::parse(s).expect("preset labels are valid");
    let dec = |s: &str| s.parse::<Decimal>().expect("preset prices are valid");
    let price = |meter, provider: &str, currency: &str, unit: &str| {
        Price::new(meter, None, label(provider), Currency::parse(currency).expect("valid"), dec(unit), from)
    };
    match name {
        "seed-002-usd" => [
            price(Meter::EmbeddingTokens, "embedding-provider", "USD", "0.0001"),
            price(Meter::LlmInputTokens, "llm-provider", "USD", "0.002"),
            price(Meter::LlmOutputTokens, "llm-provider", "USD", "0.002"),
            price(Meter::VectorQueries, "vector-db", "USD", "0.00001"),
        ]
        .into_iter()
        .collect(),
        "seed-004-inr" => [
            price(Meter::ApiCalls, "platform", "INR", "0.50"),
            price(Meter::StorageByteSeconds, "platform", "INR", "200"),
            price(Meter::ComputeMicros, "platform", "INR", "50"),
        ]
        .into_iter()
        .collect(),
        other => Err(Invalid::new(format!("{other:?} is not a price preset: presets are {}", PRESETS.join(", ")))),
    }
}

/// How a fixed cost is split among tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// In proportion to each tenant's variable cost (the default).
    Proportional,
    /// In proportion to each tenant's quantity of a meter.
    ByMeter(Meter),
    /// Evenly.
    Even,
    /// By fixed weights; tenants not named weigh nothing.
    Weights(Vec<(TenantId, u64)>),
    /// All to one tenant.
    Tenant(TenantId),
}

impl Allocation {
    /// `proportional`, `meter:<meter>`, `even`, `weights:<tenant>=<n>,…`, `tenant:<tenant>`.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::new(format!(
                "allocation {text:?} is not valid: use proportional, meter:<meter>, even, weights:<tenant>=<n>,… or tenant:<tenant>"
            ))
        };
        match text.split_once(':') {
            None if text == "proportional" => Ok(Self::Proportional),
            None if text == "even" => Ok(Self::Even),
            Some(("meter", m)) => Ok(Self::ByMeter(Meter::parse(m)?)),
            Some(("tenant", t)) => Ok(Self::Tenant(TenantId::parse(t).map_err(|e| Invalid::new(e.to_string()))?)),
            Some(("weights", list)) => {
                let mut weights = Vec::new();
                for part in list.split(',') {
                    let (t, w) = part.split_once('=').ok_or_else(bad)?;
                    let t = TenantId::parse(t).map_err(|e| Invalid::new(e.to_string()))?;
                    let w: u64 = w.parse().map_err(|_| bad())?;
                    if weights.iter().any(|(seen, _)| seen == &t) {
                        return Err(Invalid::new(format!("allocation weights name {t} twice")));
                    }
                    weights.push((t, w));
                }
                if weights.iter().all(|(_, w)| *w == 0) {
                    return Err(Invalid::new("allocation weights must not all be zero"));
                }
                Ok(Self::Weights(weights))
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Allocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allocation::Proportional => f.write_str("proportional"),
            Allocation::ByMeter(m) => write!(f, "meter:{}", m.as_str()),
            Allocation::Even => f.write_str("even"),
            Allocation::Weights(w) => {
                let parts: Vec<String> = w.iter().map(|(t, n)| format!("{t}={n}")).collect();
                write!(f, "weights:{}", parts.join(","))
            }
            Allocation::Tenant(t) => write!(f, "tenant:{t}"),
        }
    }
}

/// A monthly fixed cost, in effect for the months `from..=until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedCost {
    pub name: Label,
    pub provider: Label,
    /// Per month; with `per_index`, per physical index per month.
    pub amount: Money,
    /// Charged once per physical index: a dedicated index's cost goes to its tenant alone, a
    /// shared one's among the tenants placed on it.
    pub per_index: bool,
    pub allocation: Allocation,
    pub from: Month,
    pub until: Option<Month>,
}

impl FixedCost {
    pub fn applies_to(&self, month: Month) -> bool {
        self.from <= month && self.until.is_none_or(|u| month <= u)
    }
}

/// The tenants a report covers, with what the report shows beside their costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantBilling {
    pub tenant: TenantId,
    pub cost_center: Option<String>,
    pub budget: Option<Money>,
}

/// Which tenants a physical index serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTenants {
    pub index: String,
    pub dedicated: bool,
    pub tenants: Vec<TenantId>,
}

/// A priced quantity: one tenant's use of one meter (and model) through one provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MeterLine {
    pub meter: &'static str,
    pub model: Option<String>,
    pub provider: String,
    pub quantity: u64,
    pub unit: &'static str,
    /// The exact amount before rounding.
    pub exact: Decimal,
    /// Rounded to the minor unit.
    pub amount_minor: i64,
}

/// A tenant's share of one fixed cost item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FixedShare {
    pub name: String,
    pub provider: String,
    pub amount_minor: i64,
}

/// One tenant's month.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantCost {
    pub tenant: TenantId,
    pub cost_center: Option<String>,
    pub lines: Vec<MeterLine>,
    pub fixed: Vec<FixedShare>,
    pub variable_minor: i64,
    pub fixed_minor: i64,
    pub total_minor: i64,
    pub budget_minor: Option<i64>,
    /// `(total − budget) / budget`, in percent to one decimal; positive is over.
    pub budget_variance_percent: Option<Decimal>,
    /// ✓ under (or at) budget, ⚠ over.
    pub budget_mark: Option<&'static str>,
}

impl TenantCost {
    /// A month with nothing spent, yet.
    pub fn empty(tenant: TenantId, cost_center: Option<String>) -> Self {
        TenantCost {
            tenant,
            cost_center,
            lines: Vec::new(),
            fixed: Vec::new(),
            variable_minor: 0,
            fixed_minor: 0,
            total_minor: 0,
            budget_minor: None,
            budget_variance_percent: None,
            budget_mark: None,
        }
    }
}

/// Usage the price book has no price for in the report's currency: shown, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unpriced {
    pub tenant: TenantId,
    pub meter: &'static str,
    pub model: Option<String>,
    pub quantity: u64,
}

/// A fixed cost item as charged for the month.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FixedCharge {
    pub name: String,
    pub provider: String,
    pub allocation: String,
    /// Physical indexes charged (`per_index` items), else 1.
    pub units: u64,
    pub amount_minor: i64,
    /// Minor units no tenant could take (an item allocated to a tenant that is not in the report,
    /// or a per-index item on an index with no tenants).
    pub unallocated_minor: i64,
}

/// The month priced: what `cost report` and `GET /costs` show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonthReport {
    pub month: String,
    pub currency: String,
    pub tenants: Vec<TenantCost>,
    pub fixed: Vec<FixedCharge>,
    pub unpriced: Vec<Unpriced>,
    /// Expected spend per provider (variable lines plus whole fixed items): what bills are
    /// reconciled against.
    pub by_provider: BTreeMap<String, i64>,
    /// Provider expected spend per meter or fixed item, for naming what drives a variance.
    pub provider_drivers: BTreeMap<String, BTreeMap<String, i64>>,
    pub variable_minor: i64,
    pub fixed_minor: i64,
    pub total_minor: i64,
}

/// What a report is computed from.
pub struct ReportInput<'a> {
    pub month: Month,
    pub currency: Currency,
    pub tenants: &'a [TenantBilling],
    /// Daily rollups (only days within `month` count).
    pub rollups: &'a [(RollupKey, u64)],
    pub prices: &'a PriceBook,
    pub fixed: &'a [FixedCost],
    pub indexes: &'a [IndexTenants],
}

/// Rounds an exact amount to minor units, half away from zero.
pub fn to_minor(exact: Decimal) -> Result<i64, Invalid> {
    let cents = (exact * Decimal::ONE_HUNDRED).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(cents).map_err(|_| Invalid::new("an amount is too large to report"))
}

/// Formats minor units as a decimal amount, e.g. `-1234.05`.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Prices a month. Fails only on amounts too large to represent.
pub fn price_month(input: &ReportInput<'_>) -> Result<MonthReport, Invalid> {
    let month = input.month;
    // tenant → (meter, model, provider) → exact amount and quantity; price versions are applied
    // per day, quantities summed per version before multiplying
    type LineKey = (Meter, Option<Label>, Label);
    let mut exact: BTreeMap<TenantId, BTreeMap<LineKey, (u128, Decimal)>> = BTreeMap::new();
    let mut per_version: BTreeMap<(TenantId, Meter, Option<Label>, usize), u128> = BTreeMap::new();
    let mut unpriced: BTreeMap<(TenantId, Meter, Option<Label>), u128> = BTreeMap::new();
    let mut meter_quantity: BTreeMap<(TenantId, Meter), u128> = BTreeMap::new();
    for (key, quantity) in input.rollups.iter().filter(|(k, _)| month.contains(k.day)) {
        *meter_quantity.entry((key.tenant.clone(), key.meter)).or_default() += u128::from(*quantity);
        let found = input
            .prices
            .price_for(key.meter, key.model.as_ref(), key.day, &input.currency)
            .and_then(|p| input.prices.prices().iter().position(|q| std::ptr::eq(q, p)));
        match found {
            Some(version) => {
                *per_version.entry((key.tenant.clone(), key.meter, key.model.clone(), version)).or_default() +=
                    u128::from(*quantity)
            }
            None => {
                *unpriced.entry((key.tenant.clone(), key.meter, key.model.clone())).or_default() +=
                    u128::from(*quantity)
            }
        }
    }
    let too_large = || Invalid::new("a quantity is too large to price");
    for ((tenant, meter, model, version), quantity) in per_version {
        let price = &input.prices.prices()[version];
        let amount = price.amount(u64::try_from(quantity).map_err(|_| too_large())?, month).ok_or_else(too_large)?;
        let line = exact.entry(tenant).or_default().entry((meter, model, price.provider.clone())).or_default();
        line.0 += quantity;
        line.1 += amount;
    }

    // every tenant named, plus any with usage (a tenant deleted since still owes its month)
    let mut billing: BTreeMap<TenantId, TenantBilling> =
        input.tenants.iter().map(|t| (t.tenant.clone(), t.clone())).collect();
    for t in exact.keys().chain(meter_quantity.keys().map(|(t, _)| t)) {
        billing.entry(t.clone()).or_insert_with(|| TenantBilling {
            tenant: t.clone(),
            cost_center: None,
            budget: None,
        });
    }

    let mut by_provider: BTreeMap<String, i64> = BTreeMap::new();
    let mut drivers: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut costs: BTreeMap<TenantId, TenantCost> = BTreeMap::new();
    for (tenant, info) in &billing {
        let mut lines = Vec::new();
        for ((meter, model, provider), (quantity, amount)) in exact.get(tenant).into_iter().flatten() {
            let minor = to_minor(*amount)?;
            *by_provider.entry(provider.to_string()).or_default() += minor;
            let driver = match model {
                Some(m) => format!("{}:{m}", meter.as_str()),
                None => meter.as_str().to_owned(),
            };
            *drivers.entry(provider.to_string()).or_default().entry(driver).or_default() += minor;
            lines.push(MeterLine {
                meter: meter.as_str(),
                model: model.as_ref().map(Label::to_string),
                provider: provider.to_string(),
                quantity: u64::try_from(*quantity).unwrap_or(u64::MAX),
                unit: meter.unit(),
                exact: amount.normalize(),
                amount_minor: minor,
            });
        }
        let variable: i64 = lines.iter().map(|l| l.amount_minor).sum();
        let cost = TenantCost {
            lines,
            variable_minor: variable,
            ..TenantCost::empty(tenant.clone(), info.cost_center.clone())
        };
        costs.insert(tenant.clone(), cost);
    }

    let tenants: Vec<TenantId> = billing.keys().cloned().collect();
    let weight_of = |allocation: &Allocation, t: &TenantId| -> u64 {
        match allocation {
            Allocation::Proportional => costs.get(t).map_or(0, |c| c.variable_minor.max(0) as u64),
            Allocation::ByMeter(m) => {
                meter_quantity.get(&(t.clone(), *m)).map_or(0, |q| u64::try_from(*q).unwrap_or(u64::MAX))
            }
            Allocation::Even => 1,
            Allocation::Weights(w) => w.iter().find(|(n, _)| n == t).map_or(0, |(_, n)| *n),
            Allocation::Tenant(only) => u64::from(only == t),
        }
    };
    let mut charges = Vec::new();
    let mut shares: BTreeMap<TenantId, Vec<FixedShare>> = BTreeMap::new();
    for item in input.fixed.iter().filter(|f| f.applies_to(month) && f.amount.currency() == &input.currency) {
        // each pool is (its amount, the tenants who share it)
        let pools: Vec<(i64, Vec<TenantId>, bool)> = if item.per_index {
            input.indexes.iter().map(|ix| (item.amount.minor_units(), ix.tenants.clone(), ix.dedicated)).collect()
        } else {
            vec![(item.amount.minor_units(), tenants.clone(), false)]
        };
        let mut unallocated = 0;
        let mut taken: BTreeMap<TenantId, i64> = BTreeMap::new();
        for (amount, parties, dedicated) in &pools {
            let parties: Vec<&TenantId> = parties.iter().filter(|t| billing.contains_key(*t)).collect();
            let weights: Vec<u64> = if *dedicated {
                vec![1; parties.len()]
            } else {
                parties.iter().map(|t| weight_of(&item.allocation, t)).collect()
            };
            // fixed targets (weights, one tenant) that are absent take nothing: leave it unallocated
            let targeted = matches!(item.allocation, Allocation::Weights(_) | Allocation::Tenant(_));
            if parties.is_empty() || (!*dedicated && targeted && weights.iter().all(|w| *w == 0)) {
                unallocated += amount;
                continue;
            }
            for (t, share) in parties.iter().zip(allocate(*amount, &weights)) {
                *taken.entry((*t).clone()).or_default() += share;
            }
        }
        let total: i64 = pools.iter().map(|p| p.0).sum();
        for (t, share) in taken {
            shares.entry(t).or_default().push(FixedShare {
                name: item.name.to_string(),
                provider: item.provider.to_string(),
                amount_minor: share,
            });
        }
        *by_provider.entry(item.provider.to_string()).or_default() += total;
        *drivers.entry(item.provider.to_string()).or_default().entry(format!("fixed:{}", item.name)).or_default() +=
            total;
        charges.push(FixedCharge {
            name: item.name.to_string(),
            provider: item.provider.to_string(),
            allocation: item.allocation.to_string(),
            units: pools.len() as u64,
            amount_minor: total,
            unallocated_minor: unallocated,
        });
    }

    let mut tenant_costs: Vec<TenantCost> = costs.into_values().collect();
    for cost in &mut tenant_costs {
        cost.fixed = shares.remove(&cost.tenant).unwrap_or_default();
        cost.fixed_minor = cost.fixed.iter().map(|s| s.amount_minor).sum();
        cost.total_minor = cost.variable_minor + cost.fixed_minor;
        if let Some(budget) = billing[&cost.tenant].budget.as_ref().filter(|b| b.currency() == &input.currency) {
            cost.budget_minor = Some(budget.minor_units());
            (cost.budget_variance_percent, cost.budget_mark) = budget_standing(cost.total_minor, budget.minor_units());
        }
    }
    let variable: i64 = tenant_costs.iter().map(|c| c.variable_minor).sum();
    let fixed: i64 = tenant_costs.iter().map(|c| c.fixed_minor).sum();
    Ok(MonthReport {
        month: month.to_string(),
        currency: input.currency.as_str().to_owned(),
        tenants: tenant_costs,
        fixed: charges,
        unpriced: unpriced
            .into_iter()
            .map(|((tenant, meter, model), q)| Unpriced {
                tenant,
                meter: meter.as_str(),
                model: model.map(|m| m.to_string()),
                quantity: u64::try_from(q).unwrap_or(u64::MAX),
            })
            .collect(),
        by_provider,
        provider_drivers: drivers,
        variable_minor: variable,
        fixed_minor: fixed,
        total_minor: variable + fixed,
    })
}

/// One cost center's month: the CFO's chargeback line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CostCenterLine {
    /// `None`: tenants with no cost center.
    pub cost_center: Option<String>,
    pub tenants: Vec<TenantId>,
    pub variable_minor: i64,
    pub fixed_minor: i64,
    pub total_minor: i64,
    /// The sum of its tenants' budgets (in the report's currency), when any has one.
    pub budget_minor: Option<i64>,
    pub budget_variance_percent: Option<Decimal>,
    pub budget_mark: Option<&'static str>,
}

/// Spend against a budget as seed 004 shows it: the variance in percent (positive is over) and ✓/⚠.
fn budget_standing(total: i64, budget: i64) -> (Option<Decimal>, Option<&'static str>) {
    (Variance::of(total, budget).map(|v| v.percent()), Some(BudgetMark::of(total, budget).symbol()))
}

/// Groups a report by cost center.
pub fn chargeback(report: &MonthReport) -> Vec<CostCenterLine> {
    let mut groups: BTreeMap<Option<String>, CostCenterLine> = BTreeMap::new();
    for t in &report.tenants {
        let line = groups.entry(t.cost_center.clone()).or_insert_with(|| CostCenterLine {
            cost_center: t.cost_center.clone(),
            tenants: Vec::new(),
            variable_minor: 0,
            fixed_minor: 0,
            total_minor: 0,
            budget_minor: None,
            budget_variance_percent: None,
            budget_mark: None,
        });
        line.tenants.push(t.tenant.clone());
        line.variable_minor += t.variable_minor;
        line.fixed_minor += t.fixed_minor;
        line.total_minor += t.total_minor;
        if let Some(b) = t.budget_minor {
            line.budget_minor = Some(line.budget_minor.unwrap_or(0) + b);
        }
    }
    let mut lines: Vec<CostCenterLine> = groups.into_values().collect();
    for line in &mut lines {
        if let Some(budget) = line.budget_minor {
            (line.budget_variance_percent, line.budget_mark) = budget_standing(line.total_minor, budget);
        }
    }
    lines
}

/// A provider's actual bill for a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub provider: Label,
    pub month: Month,
    pub amount: Money,
}

impl Bill {
    /// Parses bill rows as CSV with a header naming `provider`, `month`, `currency` and
    /// `amount` (any order; other columns are ignored). Errors name the line.
    pub fn parse_csv(text: &str) -> Result<Vec<Bill>, Invalid> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| Invalid::new("the bills file is empty"))?;
        let columns: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
        let col = |name: &str| {
            columns.iter().position(|c| c == name).ok_or_else(|| {
                Invalid::new(format!(
                    "the bills header has no {name:?} column (needs provider, month, currency, amount)"
                ))
            })
        };
        let (p, m, c, a) = (col("provider")?, col("month")?, col("currency")?, col("amount")?);
        let mut bills: Vec<Bill> = Vec::new();
        for (n, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let at = |i: usize| cells.get(i).copied().unwrap_or("");
            let row = || -> Result<Bill, Invalid> {
                let currency = Currency::parse(at(c))?;
                Ok(Bill {
                    provider: Label::parse(at(p)).map_err(|e| Invalid::new(e.to_string()))?,
                    month: Month::parse(at(m))?,
                    amount: Money::parse_decimal(at(a), currency)?,
                })
            };
            let bill = row().map_err(|e| Invalid::new(format!("bills line {}: {}", n + 1, e.reason())))?;
            bills.push(bill);
            if let Err(e) = Bill::check_distinct(&bills) {
                return Err(Invalid::new(format!("bills line {}: {}", n + 1, e.reason())));
            }
        }
        Ok(bills)
    }

    /// Refuses a second bill of one provider for one month among `bills`, naming the last one.
    pub fn check_distinct(bills: &[Bill]) -> Result<(), Invalid> {
        for (i, bill) in bills.iter().enumerate() {
            if bills[..i].iter().any(|b| b.provider == bill.provider && b.month == bill.month) {
                return Err(Invalid::new(format!("a second bill for {} in {}", bill.provider, bill.month)));
            }
        }
        Ok(())
    }
}

/// One provider's expected spend against its bill.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderReconciliation {
    pub provider: String,
    pub expected_minor: i64,
    pub billed_minor: Option<i64>,
    /// `(expected − billed) / billed` in percent to one decimal.
    pub variance_percent: Option<Decimal>,
    pub verdict: &'static str,
    /// The meters and fixed items behind the expected spend, largest first.
    pub drivers: Vec<(String, i64)>,
}

/// The month's reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconciliationReport {
    pub month: String,
    pub currency: String,
    pub providers: Vec<ProviderReconciliation>,
    pub expected_minor: i64,
    pub billed_minor: i64,
    pub variance_percent: Option<Decimal>,
    /// The worst of the providers' verdicts and the total's: `pass`, `warn` or `fail`.
    pub verdict: &'static str,
}

fn verdict_name(r: Reconciliation) -> &'static str {
    match r {
        Reconciliation::Pass => "pass",
        Reconciliation::Warn => "warn",
        Reconciliation::Fail => "fail",
    }
}

fn severity(v: &str) -> u8 {
    match v {
        "pass" => 0,
        "warn" => 1,
        _ => 2,
    }
}

/// Compares the report's expected spend per provider with the bills in its currency. A provider
/// with expected spend and no bill, or a bill and nothing expected, fails: the two sides must
/// name the same providers before a month can pass.
pub fn reconcile_month(report: &MonthReport, bills: &[Bill]) -> ReconciliationReport {
    let currency = report.currency.as_str();
    let billed: BTreeMap<String, i64> = bills
        .iter()
        .filter(|b| b.month.to_string() == report.month && b.amount.currency().as_str() == currency)
        .map(|b| (b.provider.to_string(), b.amount.minor_units()))
        .collect();
    let providers: BTreeSet<&String> = report.by_provider.keys().chain(billed.keys()).collect();
    let mut lines = Vec::new();
    for provider in providers {
        let expected = report.by_provider.get(provider).copied().unwrap_or(0);
        let bill = billed.get(provider).copied();
        let (variance, verdict) = match bill {
            Some(b) => (
                Variance::of(expected, b).map(|v| v.percent()),
                reconcile(expected, b).map_or(if expected == 0 { "pass" } else { "fail" }, verdict_name),
            ),
            None => (None, "fail"),
        };
        let mut drivers: Vec<(String, i64)> =
            report.provider_drivers.get(provider).map(|d| d.clone().into_iter().collect()).unwrap_or_default();
        drivers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        lines.push(ProviderReconciliation {
            provider: provider.clone(),
            expected_minor: expected,
            billed_minor: bill,
            variance_percent: variance,
            verdict,
            drivers,
        });
    }
    let expected: i64 = lines.iter().map(|l| l.expected_minor).sum();
    let billed_total: i64 = billed.values().sum();
    let total_verdict = reconcile(expected, billed_total).map_or("fail", verdict_name);
    let verdict = lines.iter().map(|l| l.verdict).chain([total_verdict]).max_by_key(|v| severity(v)).unwrap_or("fail");
    ReconciliationReport {
        month: report.month.clone(),
        currency: currency.to_owned(),
        providers: lines,
        expected_minor: expected,
        billed_minor: billed_total,
        variance_percent: Variance::of(expected, billed_total).map(|v| v.percent()),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn t(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }
    fn l(s: &str) -> Label {
        Label::parse(s).unwrap()
    }
    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }
    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn usd_money(s: &str) -> Money {
        Money::parse_decimal(s, usd()).unwrap()
    }
    fn roll(tenant: &str, meter: Meter, model: Option<&str>, day: Date, q: u64) -> (RollupKey, u64) {
        (RollupKey { tenant: t(tenant), meter, model: model.map(l), day }, q)
    }
    fn billing(id: &str, cc: &str, budget: Option<&str>) -> TenantBilling {
        TenantBilling { tenant: t(id), cost_center: Some(cc.to_owned()), budget: budget.map(usd_money) }
    }

    #[test]
    fn months_parse_and_know_their_length() {
        let nov = Month::parse("2026-11").unwrap();
        assert_eq!(nov.to_string(), "2026-11");
        assert_eq!(nov.days(), 30);
        assert_eq!(Month::parse("2028-02").unwrap().days(), 29);
        assert_eq!(Month::parse("2026-12").unwrap().next().to_string(), "2027-01");
        assert!(nov.contains(date!(2026 - 11 - 30)) && !nov.contains(date!(2026 - 12 - 01)));
        assert_eq!(parse_day("from", "2026-11-05").unwrap(), date!(2026 - 11 - 05));
        assert!(parse_day("from", "2026-11-31").unwrap_err().reason().starts_with("from"));
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_price_change_mid_month_prices_each_part_at_its_own_price() {
        let from = date!(2026 - 01 - 01);
        let mut prices = preset("seed-002-usd", from).unwrap();
        // vector queries get dearer from the 16th
        prices.push(
            Price::new(Meter::VectorQueries, None, l("vector-db"), usd(), dec("0.00002"), date!(2026 - 11 - 16))
                .unwrap(),
        );
        // one model has its own embedding price
        prices.push(
            Price::new(
                Meter::EmbeddingTokens,
                Some(l("openai/big")),
                l("embedding-provider"),
                usd(),
                dec("0.00013"),
                from,
            )
            .unwrap(),
        );
        let book = PriceBook::new(prices);
        let rollups = vec![
            roll("acme", Meter::VectorQueries, None, date!(2026 - 11 - 10), 1_000_000),
            roll("acme", Meter::VectorQueries, None, date!(2026 - 11 - 20), 1_000_000),
            roll("acme", Meter::EmbeddingTokens, Some("local/hash"), date!(2026 - 11 - 03), 2_500_000),
            roll("acme", Meter::EmbeddingTokens, Some("openai/big"), date!(2026 - 11 - 03), 1_000_000),
            roll("acme", Meter::VectorQueries, None, date!(2026 - 12 - 01), 9_999_999), // another month
            roll("acme", Meter::ApiCalls, None, date!(2026 - 11 - 03), 10),             // no USD price
        ];
        let report = price_month(&ReportInput {
            month: Month::parse("2026-11").unwrap(),
            currency: usd(),
            tenants: &[billing("acme", "eng", Some("100"))],
            rollups: &rollups,
            prices: &book,
            fixed: &[],
            indexes: &[],
        })
        .unwrap();
        let acme = &report.tenants[0];
        // 1M × 0.00001 + 1M × 0.00002 = $30.00; 2.5M tokens × 0.0001/1K = $0.25; 1M × 0.00013/1K = $0.13
        let line = |meter: &str, model: Option<&str>| {
            acme.lines.iter().find(|x| x.meter == meter && x.model.as_deref() == model).unwrap().amount_minor
        };
        assert_eq!(line("vector_queries", None), 3_000);
        assert_eq!(line("embedding_tokens", Some("local/hash")), 25);
        assert_eq!(line("embedding_tokens", Some("openai/big")), 13);
        assert_eq!(acme.variable_minor, 3_038);
        assert_eq!(report.unpriced.len(), 1, "api calls have no USD price: {:?}", report.unpriced);
        assert_eq!(report.by_provider["vector-db"], 3_000);
        // $30.38 against $100: 69.6% under
        assert_eq!(acme.budget_variance_percent, Some(dec("-69.6")));
        assert_eq!(acme.budget_mark, Some("✓"));
    }

    #[test]
    fn storage_is_priced_per_gb_month_of_the_reported_month_and_compute_per_hour() {
        let book = PriceBook::new(preset("seed-004-inr", date!(2026 - 01 - 01)).unwrap());
        let nov = Month::parse("2026-11").unwrap();
        // 2 GB held all month, 3 compute hours, 1,000 calls: ₹400 + ₹150 + ₹500
        let gb_all_month_per_day = 2 * 1_000_000_000u64 * 86_400;
        let mut rollups: Vec<(RollupKey, u64)> = (1..=30)
            .map(|d| {
                roll(
                    "legal",
                    Meter::StorageByteSeconds,
                    None,
                    Date::from_calendar_date(2026, CalendarMonth::November, d).unwrap(),
                    gb_all_month_per_day,
                )
            })
            .collect();
        rollups.push(roll("legal", Meter::ComputeMicros, None, date!(2026 - 11 - 02), 3 * 3_600_000_000));
        rollups.push(roll("legal", Meter::ApiCalls, None, date!(2026 - 11 - 02), 1_000));
        let inr = Currency::parse("INR").unwrap();
        let report = price_month(&ReportInput {
            month: nov,
            currency: inr,
            tenants: &[],
            rollups: &rollups,
            prices: &book,
            fixed: &[],
            indexes: &[],
        })
        .unwrap();
        assert_eq!(report.tenants[0].variable_minor, 105_000);
        assert_eq!(report.tenants[0].cost_center, None, "a tenant known only from usage still owes its month");
    }

    #[test]
    fn fixed_costs_split_exactly_by_each_method_and_dedicated_indexes_go_to_their_tenant() {
        let book = PriceBook::new(preset("seed-002-usd", date!(2026 - 01 - 01)).unwrap());
        let day = date!(2026 - 11 - 05);
        let rollups = vec![
            roll("aa", Meter::VectorQueries, None, day, 1_000_000), // $10
            roll("bb", Meter::VectorQueries, None, day, 3_000_000), // $30
        ];
        let tenants = [billing("aa", "x", None), billing("bb", "x", None), billing("cc", "y", None)];
        let nov = Month::parse("2026-11").unwrap();
        let item = |name: &str, amount: &str, allocation: Allocation, per_index: bool| FixedCost {
            name: l(name),
            provider: l("cloud"),
            amount: usd_money(amount),
            per_index,
            allocation,
            from: Month::parse("2026-10").unwrap(),
            until: None,
        };
        let fixed = [
            item("postgres", "30", Allocation::Proportional, false),
            item("lb", "35", Allocation::Even, false),
            item("weights", "10", Allocation::Weights(vec![(t("aa"), 1), (t("cc"), 3)]), false),
            item("index", "50", Allocation::ByMeter(Meter::VectorQueries), true),
            item("old", "999", Allocation::Even, false).clone(),
        ];
        let mut fixed = fixed.to_vec();
        fixed[4].until = Some(Month::parse("2026-10").unwrap()); // ended before November
        let indexes = [
            IndexTenants { index: "shared-1".into(), dedicated: false, tenants: vec![t("aa"), t("bb")] },
            IndexTenants { index: "dedicated-c".into(), dedicated: true, tenants: vec![t("cc")] },
        ];
        let report = price_month(&ReportInput {
            month: nov,
            currency: usd(),
            tenants: &tenants,
            rollups: &rollups,
            prices: &book,
            fixed: &fixed,
            indexes: &indexes,
        })
        .unwrap();
        let share = |tenant: &str, name: &str| {
            let c = report.tenants.iter().find(|c| c.tenant.as_str() == tenant).unwrap();
            c.fixed.iter().find(|s| s.name == name).map_or(0, |s| s.amount_minor)
        };
        assert_eq!((share("aa", "postgres"), share("bb", "postgres"), share("cc", "postgres")), (750, 2_250, 0));
        assert_eq!((share("aa", "lb"), share("bb", "lb"), share("cc", "lb")), (1_167, 1_167, 1_166));
        assert_eq!((share("aa", "weights"), share("bb", "weights"), share("cc", "weights")), (250, 0, 750));
        // the shared index by vector queries 1:3, the dedicated one all to c
        assert_eq!((share("aa", "index"), share("bb", "index"), share("cc", "index")), (1_250, 3_750, 5_000));
        assert!(report.fixed.iter().all(|f| f.name != "old"));
        for charge in &report.fixed {
            let sum: i64 = report
                .tenants
                .iter()
                .flat_map(|c| c.fixed.iter())
                .filter(|s| s.name == charge.name)
                .map(|s| s.amount_minor)
                .sum();
            assert_eq!(sum + charge.unallocated_minor, charge.amount_minor, "{}", charge.name);
        }
        assert_eq!(report.total_minor, 4_000 + 3_000 + 3_500 + 1_000 + 10_000);
        let centers = chargeback(&report);
        assert_eq!(centers.len(), 2);
        assert_eq!(centers.iter().map(|c| c.total_minor).sum::<i64>(), report.total_minor);
    }

    #[test]
    fn allocations_parse_and_print_back() {
        for text in ["proportional", "even", "meter:vector_queries", "weights:a1=3,b1=1", "tenant:acme"] {
            assert_eq!(Allocation::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "meter:coffee", "weights:a1", "weights:a1=0", "weights:a1=1,a1=2", "share"] {
            assert!(Allocation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bills_reconcile_per_provider_with_the_seed_thresholds() {
        let mut report = MonthReport {
            month: "2026-11".into(),
            currency: "USD".into(),
            tenants: vec![],
            fixed: vec![],
            unpriced: vec![],
            by_provider: BTreeMap::from([("llm".to_owned(), 10_000), ("cloud".to_owned(), 10_000)]),
            provider_drivers: BTreeMap::from([(
                "llm".to_owned(),
                BTreeMap::from([("llm_input_tokens".to_owned(), 3_000), ("llm_output_tokens".to_owned(), 7_000)]),
            )]),
            variable_minor: 20_000,
            fixed_minor: 0,
            total_minor: 20_000,
        };
        let bills = |llm: &str, cloud: &str| {
            Bill::parse_csv(&format!(
                "provider,month,currency,amount\nllm,2026-11,USD,{llm}\ncloud,2026-11,USD,{cloud}\n"
            ))
            .unwrap()
        };
        // expected 100 vs bills: 3% → pass, 7% → warn, 12% → fail (bill is the basis)
        let r = reconcile_month(&report, &bills("97.09", "100"));
        assert_eq!(r.verdict, "pass");
        let r = reconcile_month(&report, &bills("93.46", "100"));
        assert_eq!((r.providers[1].verdict, r.verdict), ("warn", "warn"));
        let r = reconcile_month(&report, &bills("89.29", "100"));
        assert_eq!(r.verdict, "fail");
        assert_eq!(r.providers[1].drivers[0], ("llm_output_tokens".to_owned(), 7_000), "largest driver first");
        // a provider with spend and no bill fails the month
        report.by_provider.insert("vector-db".into(), 1);
        assert_eq!(reconcile_month(&report, &bills("100", "100")).verdict, "fail");
        assert!(Bill::parse_csv("provider,month,amount\n").unwrap_err().reason().contains("currency"));
        assert!(
            Bill::parse_csv("provider,month,currency,amount\nx,2026-11,USD,-1\n")
                .unwrap_err()
                .reason()
                .contains("line 2")
        );
        assert!(Bill::parse_csv("provider,month,currency,amount\nx,2026-11,USD,1\nx,2026-11,USD,2\n").is_err());
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_minor_unit() {
        assert_eq!(to_minor(dec("0.005")).unwrap(), 1);
        assert_eq!(to_minor(dec("0.00499")).unwrap(), 0);
        assert_eq!(to_minor(dec("-0.005")).unwrap(), -1);
        assert_eq!(format_minor(-123_405), "-1234.05");
        assert_eq!(format_minor(7), "0.07");
        assert!(Price::parse_unit_price("-1").is_err() && Price::parse_unit_price("1e3").is_err());
        assert!(preset("nope", date!(2026 - 01 - 01)).is_err());
    }
}
