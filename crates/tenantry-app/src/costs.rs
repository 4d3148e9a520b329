//! The cost ledger's use-cases: the price book, fixed costs, the monthly report and chargeback,
//! bills and reconciliation, and budget alerts. The arithmetic is the domain's
//! (`tenantry_domain::pricing`); this gathers its inputs from the store and records the results.

use std::sync::Arc;

use time::Date;

use tenantry_domain::cost::{Meter, UsageEvent};
use tenantry_domain::pricing::{
    Bill, FixedCost, IndexTenants, Month, MonthReport, Price, PriceBook, ReconciliationReport, ReportInput,
    TenantBilling, TenantCost, Unpriced, price_month, reconcile_month,
};
use tenantry_domain::{Currency, IndexKind, Label, Permission, Placement, TenantId, TenantStatus};

use crate::access::{PlatformScope, TenantScope};
use crate::error::AppError;
use crate::operations::{AuditOp, PlatformRead};
use crate::ports::{AuditRecord, Clock, Store, StoredReconciliation, TenantFilter};

/// Budget thresholds that alert, in percent of the monthly budget.
pub const BUDGET_THRESHOLDS: [u32; 2] = [80, 100];

/// A tenant crossed a threshold of its monthly budget.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BudgetAlert {
    pub tenant: TenantId,
    pub month: String,
    pub threshold_percent: u32,
    pub spent_minor: i64,
    pub budget_minor: i64,
    pub currency: String,
}

/// Where budget alerts go (the alerting issue connects Alertmanager and webhooks; the default
/// logs them).
pub trait BudgetAlerts: Send + Sync {
    fn budget_alert(&self, alert: &BudgetAlert);
}

/// Logs budget alerts as warnings.
#[derive(Default)]
pub struct LogBudgetAlerts;

impl BudgetAlerts for LogBudgetAlerts {
    fn budget_alert(&self, a: &BudgetAlert) {
        tracing::warn!(
            tenant = a.tenant.as_str(),
            month = a.month.as_str(),
            threshold = a.threshold_percent,
            spent_minor = a.spent_minor,
            budget_minor = a.budget_minor,
            currency = a.currency.as_str(),
            "tenant crossed a budget threshold"
        );
    }
}

/// A tenant's month as its own members see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantMonth {
    pub month: String,
    pub currency: String,
    pub cost: TenantCost,
    /// The tenant's usage without a price in the currency.
    pub unpriced: Vec<Unpriced>,
}

/// How long a month computed for a tenant's own view is reused (every tenant's view needs the
/// whole month: fixed shares depend on everyone's usage).
pub const TENANT_VIEW_TTL: std::time::Duration = std::time::Duration::from_secs(60);

type MonthCache = std::collections::HashMap<(Month, Option<Currency>), (std::time::Instant, Arc<MonthReport>)>;

/// The cost ledger's use-cases.
#[derive(Clone)]
pub struct Costs {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    alerts: Arc<dyn BudgetAlerts>,
    months: Arc<std::sync::Mutex<MonthCache>>,
}

impl Costs {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, alerts: Arc<dyn BudgetAlerts>) -> Self {
        Self { store, clock, alerts, months: Arc::default() }
    }

    /// The month for tenants' own views: computed at most every [`TENANT_VIEW_TTL`].
    async fn month_for_tenants(&self, month: Month, currency: Option<Currency>) -> Result<Arc<MonthReport>, AppError> {
        let key = (month, currency.clone());
        {
            let months = self.months.lock().expect("cost cache lock is never poisoned");
            if let Some((_, report)) = months.get(&key).filter(|(at, _)| at.elapsed() < TENANT_VIEW_TTL) {
                return Ok(report.clone());
            }
        }
        let report = Arc::new(self.compute(&PlatformScope::system("costs"), month, currency).await?);
        let mut months = self.months.lock().expect("cost cache lock is never poisoned");
        months.retain(|_, (at, _)| at.elapsed() < TENANT_VIEW_TTL);
        months.insert(key, (std::time::Instant::now(), report.clone()));
        Ok(report)
    }

    // ---- price book -----------------------------------------------------------------------------

    pub async fn set_price(&self, access: &PlatformScope, price: Price) -> Result<(), AppError> {
        let audit =
            AuditRecord::platform(access, self.clock.now(), AuditOp::CostPrice).change(None, Some(price_json(&price)));
        self.store.put_price(access, &price, &audit).await?;
        Ok(())
    }

    /// Loads a shipped price book (`seed-002-usd`, `seed-004-inr`) effective from `from`.
    pub async fn load_preset(&self, access: &PlatformScope, name: &str, from: Date) -> Result<Vec<Price>, AppError> {
        let prices = tenantry_domain::pricing::preset(name, from)?;
        for p in &prices {
            self.set_price(access, p.clone()).await?;
        }
        Ok(prices)
    }

    pub async fn prices(&self, access: &PlatformScope) -> Result<Vec<Price>, AppError> {
        let prices = self.store.prices(access).await?;
        self.audit_read(access, PlatformRead::Prices, serde_json::json!({"count": prices.len()})).await?;
        Ok(prices)
    }

    // ---- fixed costs ----------------------------------------------------------------------------

    pub async fn put_fixed_cost(&self, access: &PlatformScope, item: FixedCost) -> Result<(), AppError> {
        if item.until.is_some_and(|u| u < item.from) {
            return Err(AppError::Invalid(format!("fixed cost {} ends before it starts", item.name)));
        }
        let audit = AuditRecord::platform(access, self.clock.now(), AuditOp::CostFixedPut)
            .change(None, Some(fixed_json(&item)));
        self.store.put_fixed_cost(access, &item, &audit).await?;
        Ok(())
    }

    pub async fn delete_fixed_cost(&self, access: &PlatformScope, name: &Label) -> Result<(), AppError> {
        let audit = AuditRecord::platform(access, self.clock.now(), AuditOp::CostFixedDelete)
            .change(Some(serde_json::json!({"name": name.as_str()})), None);
        self.store.delete_fixed_cost(access, name, &audit).await?;
        Ok(())
    }

    pub async fn fixed_costs(&self, access: &PlatformScope) -> Result<Vec<FixedCost>, AppError> {
        let items = self.store.fixed_costs(access).await?;
        self.audit_read(access, PlatformRead::FixedCosts, serde_json::json!({"count": items.len()})).await?;
        Ok(items)
    }

    // ---- reports --------------------------------------------------------------------------------

    /// The month priced for every tenant, in `currency` (default: the price book's usual one).
    pub async fn report(
        &self,
        access: &PlatformScope,
        month: Month,
        currency: Option<Currency>,
    ) -> Result<MonthReport, AppError> {
        let report = self.compute(access, month, currency).await?;
        let detail =
            serde_json::json!({"month": report.month, "currency": report.currency, "tenants": report.tenants.len()});
        self.audit_read(access, PlatformRead::Costs, detail).await?;
        Ok(report)
    }

    /// One tenant's month: its lines and its share of the fixed costs. The shares depend on every
    /// tenant's usage, so the month is computed on the platform path; only the scope's tenant's
    /// line leaves this function.
    pub async fn tenant_report(
        &self,
        scope: &TenantScope,
        month: Month,
        currency: Option<Currency>,
    ) -> Result<TenantMonth, AppError> {
        scope.require(Permission::ReadCosts)?;
        let report = self.month_for_tenants(month, currency).await?;
        let cost = report
            .tenants
            .iter()
            .find(|c| &c.tenant == scope.tenant())
            .cloned()
            .unwrap_or_else(|| TenantCost::empty(scope.tenant().clone(), None));
        let audit = AuditRecord::tenant(scope, self.clock.now(), AuditOp::CostRead)
            .change(None, Some(serde_json::json!({"month": report.month, "total_minor": cost.total_minor})));
        self.store.append_tenant_audit(scope, &audit).await?;
        let unpriced = report.unpriced.iter().filter(|u| &u.tenant == scope.tenant()).cloned().collect();
        Ok(TenantMonth { month: report.month.clone(), currency: report.currency.clone(), cost, unpriced })
    }

    async fn compute(
        &self,
        access: &PlatformScope,
        month: Month,
        currency: Option<Currency>,
    ) -> Result<MonthReport, AppError> {
        let prices = PriceBook::new(self.store.prices(access).await?);
        let currency = match currency {
            Some(c) => c,
            None => prices.usual_currency().cloned().ok_or_else(|| {
                AppError::Invalid(
                    "the price book is empty: set prices with `tenantry cost prices set` or load a preset first"
                        .to_owned(),
                )
            })?,
        };
        let rollups = self.store.usage_rollups(access, month.first_day(), month.end()).await?;
        let fixed = self.store.fixed_costs(access).await?;
        let tenants = self.all_tenants(access).await?;
        let mut billing = Vec::with_capacity(tenants.len());
        let per_index = fixed.iter().any(|f| f.per_index && f.applies_to(month));
        // every index in the pool is charged, an idle one (no tenants) as unallocated
        let mut indexes: Vec<IndexTenants> = if per_index {
            self.store
                .index_pool(access)
                .await?
                .into_iter()
                .map(|u| IndexTenants {
                    index: u.index.name.to_string(),
                    dedicated: u.index.kind == IndexKind::Dedicated,
                    tenants: Vec::new(),
                })
                .collect()
        } else {
            Vec::new()
        };
        for t in &tenants {
            billing.push(TenantBilling {
                tenant: t.id.clone(),
                cost_center: t.cost_center.clone(),
                budget: t.monthly_budget.clone(),
            });
            if per_index && let Some(p) = self.store.tenant_placement(&access.act_in(t.id.clone())).await? {
                let (name, dedicated) = match &p.placement {
                    Placement::Dedicated { index } => (index.to_string(), true),
                    Placement::Namespace { index } => (index.to_string(), false),
                };
                match indexes.iter_mut().find(|i| i.index == name) {
                    Some(i) => i.tenants.push(t.id.clone()),
                    None => indexes.push(IndexTenants { index: name, dedicated, tenants: vec![t.id.clone()] }),
                }
            }
        }
        Ok(price_month(&ReportInput {
            month,
            currency,
            tenants: &billing,
            rollups: &rollups,
            prices: &prices,
            fixed: &fixed,
            indexes: &indexes,
        })?)
    }

    async fn all_tenants(&self, access: &PlatformScope) -> Result<Vec<tenantry_domain::Tenant>, AppError> {
        let mut all = Vec::new();
        let mut filter = TenantFilter { limit: 1_000, ..TenantFilter::default() };
        loop {
            let page = self.store.list_tenants(access, &filter).await?;
            let more = page.len() == filter.limit as usize;
            filter.after = page.last().map(|t| t.id.clone());
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }

    // ---- bills and reconciliation ---------------------------------------------------------------

    pub async fn import_bills(&self, access: &PlatformScope, bills: Vec<Bill>) -> Result<usize, AppError> {
        if bills.is_empty() {
            return Err(AppError::Invalid("no bills to import".to_owned()));
        }
        Bill::check_distinct(&bills)?;
        let detail: Vec<serde_json::Value> = bills
            .iter()
            .map(|b| {
                serde_json::json!({"provider": b.provider.as_str(), "month": b.month.to_string(),
                    "currency": b.amount.currency().as_str(), "amount_minor": b.amount.minor_units()})
            })
            .collect();
        let audit = AuditRecord::platform(access, self.clock.now(), AuditOp::CostBills)
            .change(None, Some(serde_json::Value::Array(detail)));
        self.store.put_bills(access, &bills, &audit).await?;
        Ok(bills.len())
    }

    /// Reconciles the month against its imported bills and records the result (audited).
    pub async fn reconcile(
        &self,
        access: &PlatformScope,
        month: Month,
        currency: Option<Currency>,
    ) -> Result<(i64, ReconciliationReport), AppError> {
        let bills = self.store.bills(access, month).await?;
        if bills.is_empty() {
            return Err(AppError::Invalid(format!(
                "no bills imported for {month}: import them with `tenantry cost bills import`"
            )));
        }
        let currency = currency.or_else(|| bills.first().map(|b| b.amount.currency().clone()));
        let report = self.compute(access, month, currency).await?;
        let result = reconcile_month(&report, &bills);
        let detail = serde_json::to_value(&result).map_err(|e| AppError::Unexpected(e.into()))?;
        let now = self.clock.now();
        let record = StoredReconciliation {
            id: 0,
            month: result.month.clone(),
            currency: result.currency.clone(),
            verdict: result.verdict.to_owned(),
            at: now,
            detail: detail.clone(),
        };
        let audit = AuditRecord::platform(access, now, AuditOp::CostReconcile).change(
            None,
            Some(serde_json::json!({"month": result.month, "verdict": result.verdict,
                "expected_minor": result.expected_minor, "billed_minor": result.billed_minor})),
        );
        let id = self.store.insert_reconciliation(access, &record, &audit).await?;
        Ok((id, result))
    }

    /// The last recorded reconciliation (what the readiness check reads).
    pub async fn latest_reconciliation(
        &self,
        access: &PlatformScope,
        month: Option<Month>,
    ) -> Result<Option<StoredReconciliation>, AppError> {
        Ok(self.store.latest_reconciliation(access, month).await?)
    }

    // ---- storage sampling -----------------------------------------------------------------------

    /// Samples every tenant's stored bytes into the ledger as byte-seconds for the current
    /// interval of `interval_secs` (intervals are aligned to the Unix epoch). The key names the
    /// interval, so sampling again within it — or on another replica — counts once; an interval
    /// in which no server sampled is not billed. Returns how many tenants were newly charged.
    pub async fn sample_storage(&self, access: &PlatformScope, interval_secs: u64) -> Result<u64, AppError> {
        let interval = interval_secs.max(1);
        let now = self.clock.now();
        let bucket = now.unix_timestamp().max(0) as u64 / interval;
        let at = time::OffsetDateTime::from_unix_timestamp((bucket * interval) as i64)
            .map_err(|e| AppError::Unexpected(e.into()))?;
        let mut events = Vec::new();
        for t in self.all_tenants(access).await? {
            if t.status == TenantStatus::Deleted {
                continue;
            }
            let usage = self.store.data_usage(&access.act_in(t.id.clone())).await?;
            let bytes = u64::try_from(usage.bytes).unwrap_or(0);
            if bytes == 0 {
                continue;
            }
            let key = format!("storage:{interval}:{bucket}");
            events.push(UsageEvent::new(
                t.id,
                Meter::StorageByteSeconds,
                bytes.saturating_mul(interval),
                None,
                at,
                key,
            )?);
        }
        Ok(self.store.record_usage(access, &events).await?)
    }

    /// Removes raw usage events older than `retention_days`, in batches; returns how many.
    pub async fn prune_usage_events(&self, access: &PlatformScope, retention_days: u32) -> Result<u64, AppError> {
        let before = self.clock.now() - time::Duration::days(i64::from(retention_days));
        let mut removed = 0;
        loop {
            let n = self.store.prune_usage_events(access, before, 10_000).await?;
            removed += n;
            if n < 10_000 {
                return Ok(removed);
            }
        }
    }

    // ---- budgets --------------------------------------------------------------------------------

    /// Checks every active tenant's spend this month against its budget and raises each crossed
    /// threshold once per month (however often this runs, on however many replicas).
    pub async fn check_budgets(&self, access: &PlatformScope) -> Result<Vec<BudgetAlert>, AppError> {
        let now = self.clock.now();
        let month = Month::of(now.date());
        let prices = PriceBook::new(self.store.prices(access).await?);
        if prices.prices().is_empty() {
            return Ok(Vec::new());
        }
        let report = self.compute(access, month, None).await?;
        let tenants = self.all_tenants(access).await?;
        let mut fired = Vec::new();
        for cost in &report.tenants {
            let active = tenants.iter().any(|t| t.id == cost.tenant && t.status == TenantStatus::Active);
            let Some(budget) = cost.budget_minor.filter(|b| *b > 0) else { continue };
            if !active {
                continue;
            }
            for threshold in BUDGET_THRESHOLDS {
                let crossed = i128::from(cost.total_minor) * 100 >= i128::from(budget) * i128::from(threshold);
                if crossed && self.store.claim_budget_alert(access, &cost.tenant, month, threshold, now).await? {
                    let alert = BudgetAlert {
                        tenant: cost.tenant.clone(),
                        month: report.month.clone(),
                        threshold_percent: threshold,
                        spent_minor: cost.total_minor,
                        budget_minor: budget,
                        currency: report.currency.clone(),
                    };
                    self.alerts.budget_alert(&alert);
                    fired.push(alert);
                }
            }
        }
        Ok(fired)
    }

    async fn audit_read(
        &self,
        access: &PlatformScope,
        what: PlatformRead,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        let audit = AuditRecord::platform_read(access, self.clock.now(), AuditOp::PlatformRead(what), detail);
        self.store.append_audit(access, &audit).await?;
        Ok(())
    }
}

/// A price as the API and the audit log show it.
pub fn price_json(p: &Price) -> serde_json::Value {
    serde_json::json!({
        "meter": p.meter.as_str(), "model": p.model.as_ref().map(Label::as_str), "provider": p.provider.as_str(),
        "currency": p.currency.as_str(), "unit_price": p.unit_price.to_string(), "per": p.meter.price_unit(),
        "effective_from": p.effective_from.to_string(),
    })
}

/// A fixed cost item as the API and the audit log show it.
pub fn fixed_json(f: &FixedCost) -> serde_json::Value {
    serde_json::json!({
        "name": f.name.as_str(), "provider": f.provider.as_str(), "amount": f.amount.amount_string(),
        "currency": f.amount.currency().as_str(), "per_index": f.per_index, "allocation": f.allocation.to_string(),
        "from": f.from.to_string(), "until": f.until.map(|u| u.to_string()),
    })
}

/// Every meter with its unit and price unit (for `cost meters`).
pub fn meters_json() -> serde_json::Value {
    serde_json::Value::Array(
        Meter::ALL
            .iter()
            .map(|m| serde_json::json!({"meter": m.as_str(), "unit": m.unit(), "priced_per": m.price_unit(), "per_model": m.per_model()}))
            .collect(),
    )
}
