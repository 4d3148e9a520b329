//! The budget hard stop (`budget_action: block`): a billable request reserves its estimated cost
//! before any work is done and settles its actual cost after; a request whose reservation would
//! take the month's spend past the budget is refused (402 `budget_exceeded`).
//!
//! Spend is the tenant's variable cost this month (UTC), priced in the budget's currency: what the
//! ledger holds (read at most every `refresh`), plus what this process settled since, plus what
//! is reserved by requests in flight. Estimates are upper bounds (embedding tokens at most the
//! text's bytes — twice that for ingest, whose chunks overlap — and a second of compute), so
//! requests admitted together cannot pass the budget by more than the amount their actual costs
//! exceed their estimates. Fixed costs are allocated when the month is reported and are not part
//! of the stop (the 80%/100% alerts count them). The reservations live in this process: with
//! several replicas, each admits against the ledger and its own reservations, so the month can be
//! overspent by what the other replicas settled since this one last read the ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use tenantry_domain::cost::{Meter, UsageEvent};

/// The quantities of `events`, to settle a reservation with.
pub fn usage_of(events: &[UsageEvent]) -> Vec<Usage<'_>> {
    events.iter().map(|e| (e.meter, e.model.as_ref(), e.quantity)).collect()
}
use tenantry_domain::pricing::{Month, PriceBook, ReportInput, price_month};
use tenantry_domain::{BudgetAction, Currency, Label, Tenant, TenantId};

use crate::access::PlatformScope;
use crate::error::AppError;
use crate::ports::{Clock, Store};

/// How long the ledger's month-to-date spend and the price book are trusted before re-reading.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// One quantity of an estimate or a settlement.
pub type Usage<'a> = (Meter, Option<&'a Label>, u64);

struct Held {
    month: Month,
    /// The ledger's spend at the last read.
    recorded: Decimal,
    /// Settled by this process since that read.
    settled: Decimal,
    /// Reserved by requests in flight.
    reserved: Decimal,
    read_at: Instant,
}

struct Prices {
    book: PriceBook,
    read_at: Instant,
}

/// Reservations against budgets. Cheap to clone.
#[derive(Clone)]
pub struct BudgetGuard {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    refresh: Duration,
    held: Arc<Mutex<HashMap<TenantId, Held>>>,
    prices: Arc<Mutex<Option<Prices>>>,
}

/// A reservation: settle it with the actual usage, or drop it to release it.
pub struct Reservation {
    guard: BudgetGuard,
    tenant: TenantId,
    month: Month,
    currency: Currency,
    amount: Decimal,
    open: bool,
}

impl BudgetGuard {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, refresh: Duration) -> Self {
        Self { store, clock, refresh, held: Arc::default(), prices: Arc::default() }
    }

    /// Reserves `estimate` for `tenant` if it blocks on its budget (`None` otherwise: nothing to
    /// hold). Refused when the spend plus the reservations would pass the budget.
    pub async fn reserve(&self, tenant: &Tenant, estimate: &[Usage<'_>]) -> Result<Option<Reservation>, AppError> {
        let Some(budget) = tenant.monthly_budget.as_ref().filter(|_| tenant.budget_action == BudgetAction::Block)
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        let month = Month::of(now.date());
        let currency = budget.currency().clone();
        let book = self.price_book().await?;
        let amount = price(&book, &currency, month, now.date(), estimate);
        let limit = Decimal::new(budget.minor_units(), 2);
        let stale = {
            let held = self.held.lock().expect("budget lock is never poisoned");
            held.get(&tenant.id).is_none_or(|h| h.month != month || h.read_at.elapsed() >= self.refresh)
        };
        if stale {
            let recorded = self.recorded_spend(&tenant.id, month, &currency, &book).await?;
            let mut held = self.held.lock().expect("budget lock is never poisoned");
            let entry = held.entry(tenant.id.clone()).or_insert(Held {
                month,
                recorded,
                settled: Decimal::ZERO,
                reserved: Decimal::ZERO,
                read_at: Instant::now(),
            });
            if entry.month != month {
                entry.reserved = Decimal::ZERO;
            }
            entry.month = month;
            entry.recorded = recorded;
            entry.settled = Decimal::ZERO;
            entry.read_at = Instant::now();
        }
        let mut held = self.held.lock().expect("budget lock is never poisoned");
        let h = held.get_mut(&tenant.id).expect("just read");
        let spent = h.recorded + h.settled;
        if spent + h.reserved + amount > limit {
            return Err(AppError::BudgetExceeded {
                tenant: tenant.id.clone(),
                spent: (spent + h.reserved).round_dp(2).to_string(),
                budget: budget.amount_string(),
                currency: currency.as_str().to_owned(),
            });
        }
        h.reserved += amount;
        Ok(Some(Reservation { guard: self.clone(), tenant: tenant.id.clone(), month, currency, amount, open: true }))
    }

    /// The tenant's spend this month as the ledger holds it, exactly.
    async fn recorded_spend(
        &self,
        tenant: &TenantId,
        month: Month,
        currency: &Currency,
        book: &PriceBook,
    ) -> Result<Decimal, AppError> {
        let scope = PlatformScope::system("budget").act_in(tenant.clone());
        let rollups = self.store.tenant_usage_rollups(&scope, month.first_day(), month.end()).await?;
        let report = price_month(&ReportInput {
            month,
            currency: currency.clone(),
            tenants: &[],
            rollups: &rollups,
            prices: book,
            fixed: &[],
            indexes: &[],
        })?;
        Ok(report.tenants.iter().flat_map(|t| t.lines.iter()).map(|l| l.exact).sum())
    }

    async fn price_book(&self) -> Result<PriceBook, AppError> {
        {
            let prices = self.prices.lock().expect("budget lock is never poisoned");
            if let Some(p) = prices.as_ref().filter(|p| p.read_at.elapsed() < self.refresh) {
                return Ok(p.book.clone());
            }
        }
        let book = PriceBook::new(self.store.prices(&PlatformScope::system("budget")).await?);
        *self.prices.lock().expect("budget lock is never poisoned") =
            Some(Prices { book: book.clone(), read_at: Instant::now() });
        Ok(book)
    }

    fn finish(&self, r: &Reservation, actual: Decimal) {
        let mut held = self.held.lock().expect("budget lock is never poisoned");
        if let Some(h) = held.get_mut(&r.tenant).filter(|h| h.month == r.month) {
            h.reserved = (h.reserved - r.amount).max(Decimal::ZERO);
            h.settled += actual;
        }
    }
}

impl Reservation {
    /// Replaces the reservation by what the request actually used.
    pub async fn settle(mut self, usage: &[Usage<'_>]) {
        let now = self.guard.clock.now();
        let actual = match self.guard.price_book().await {
            Ok(book) => price(&book, &self.currency, self.month, now.date(), usage),
            // unknown: keep counting the estimate
            Err(_) => self.amount,
        };
        self.guard.finish(&self, actual);
        self.open = false;
    }
}

impl Drop for Reservation {
    /// A request that failed (or was cancelled) before settling releases what it held.
    fn drop(&mut self) {
        if self.open {
            self.guard.finish(self, Decimal::ZERO);
        }
    }
}

/// The exact price of `usage` on `day` in `currency` (quantities without a price cost nothing).
fn price(book: &PriceBook, currency: &Currency, month: Month, day: time::Date, usage: &[Usage<'_>]) -> Decimal {
    usage
        .iter()
        .filter_map(|(meter, model, quantity)| {
            let p = book.price_for(*meter, *model, day, currency)?;
            Decimal::from(*quantity)
                .checked_mul(p.unit_price)
                .and_then(|a| a.checked_div(meter.quantities_per_price_unit(month)))
        })
        .sum()
}
