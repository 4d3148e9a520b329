//! The budget hard stop (`budget_action: block`): a billable request reserves its estimated cost
//! before any work is done and settles its actual cost after; a request whose reservation would
//! take the month's spend past the budget is refused (402 `budget_exceeded`).
//!
//! Spend is the tenant's variable cost this month (UTC), priced in the budget's currency: what the
//! ledger holds (re-read at most every `refresh`), plus what was settled since that read, plus
//! what is reserved by requests in flight. These three are kept by a [`BudgetHolds`]: in this
//! process ([`LocalBudgetHolds`]), or in Redis for every replica together (one atomic script per
//! reservation, `tenantry-bus-redis`). Estimates are upper bounds (embedding tokens at most the
//! text's bytes — twice that for ingest, whose chunks overlap — and a second of compute), so
//! requests admitted together cannot pass the budget by more than their actual costs exceed their
//! estimates. Amounts are counted in millionths of the currency unit, reservations rounded up.
//! A reservation not settled (a crashed replica) is released when it expires. Fixed costs are
//! allocated when the month is reported and are not part of the stop (the 80%/100% alerts count
//! them). If the holds cannot be reached, requests are served and a warning logged, as with
//! query limits: the ledger still records every request, so the month's report stays exact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rust_decimal::Decimal;

use tenantry_domain::cost::{Meter, UsageEvent};
use tenantry_domain::pricing::{Month, PriceBook, ReportInput, price_month};
use tenantry_domain::{BudgetAction, Currency, Label, Tenant, TenantId};

use crate::access::PlatformScope;
use crate::error::AppError;
use crate::ports::{Clock, Store};

/// How long the ledger's month-to-date spend and the price book are trusted before re-reading.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// How long an unsettled reservation holds budget before it is released.
pub const HOLD_TTL: Duration = Duration::from_secs(300);

/// One quantity of an estimate or a settlement.
pub type Usage<'a> = (Meter, Option<&'a Label>, u64);

/// The quantities of `events`, to settle a reservation with.
pub fn usage_of(events: &[UsageEvent]) -> Vec<Usage<'_>> {
    events.iter().map(|e| (e.meter, e.model.as_ref(), e.quantity)).collect()
}

/// A reservation asked of a [`BudgetHolds`]. Amounts in millionths of the currency unit;
/// times in Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest<'a> {
    pub tenant: &'a TenantId,
    /// `YYYY-MM`
    pub month: &'a str,
    pub hold: &'a str,
    pub amount: i64,
    pub limit: i64,
    /// A fresh reading of the ledger's spend and when it was read: replaces an older one (and
    /// what was settled before it).
    pub recorded: Option<(i64, i64)>,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// Where reservations against budgets are counted.
#[async_trait]
pub trait BudgetHolds: Send + Sync {
    /// When the ledger's spend for the tenant's month was last read (Unix ms), if ever.
    async fn read_at(&self, tenant: &TenantId, month: &str) -> Result<Option<i64>, anyhow::Error>;
    /// Atomically: drops expired holds, takes the fresher ledger reading, and holds `amount`
    /// if spend plus reservations plus `amount` stays within `limit`. `Err(spent)` (settled and
    /// reserved included) when it would not.
    async fn reserve(&self, request: HoldRequest<'_>) -> Result<Result<(), i64>, anyhow::Error>;
    /// Releases a hold and counts `actual` as settled (0 for a request that did no work).
    async fn settle(&self, tenant: &TenantId, month: &str, hold: &str, actual: i64) -> Result<(), anyhow::Error>;
}

#[derive(Default)]
struct Account {
    recorded: i64,
    read_at: i64,
    settled: i64,
    holds: HashMap<String, (i64, i64)>,
}

/// Holds in this process (one replica; tests).
#[derive(Default)]
pub struct LocalBudgetHolds {
    accounts: Mutex<HashMap<(TenantId, String), Account>>,
}

#[async_trait]
impl BudgetHolds for LocalBudgetHolds {
    async fn read_at(&self, tenant: &TenantId, month: &str) -> Result<Option<i64>, anyhow::Error> {
        let accounts = self.accounts.lock().expect("budget lock is never poisoned");
        Ok(accounts.get(&(tenant.clone(), month.to_owned())).map(|a| a.read_at))
    }

    async fn reserve(&self, r: HoldRequest<'_>) -> Result<Result<(), i64>, anyhow::Error> {
        let mut accounts = self.accounts.lock().expect("budget lock is never poisoned");
        let a = accounts.entry((r.tenant.clone(), r.month.to_owned())).or_default();
        a.holds.retain(|_, (_, expires)| *expires > r.now_ms);
        if let Some((recorded, read_at)) = r.recorded
            && read_at > a.read_at
        {
            (a.recorded, a.read_at, a.settled) = (recorded, read_at, 0);
        }
        let spent = a.recorded + a.settled + a.holds.values().map(|(amount, _)| amount).sum::<i64>();
        if spent + r.amount > r.limit {
            return Ok(Err(spent));
        }
        a.holds.insert(r.hold.to_owned(), (r.amount, r.expires_ms));
        Ok(Ok(()))
    }

    async fn settle(&self, tenant: &TenantId, month: &str, hold: &str, actual: i64) -> Result<(), anyhow::Error> {
        let mut accounts = self.accounts.lock().expect("budget lock is never poisoned");
        if let Some(a) = accounts.get_mut(&(tenant.clone(), month.to_owned()))
            && a.holds.remove(hold).is_some()
        {
            a.settled += actual;
        }
        Ok(())
    }
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
    holds: Arc<dyn BudgetHolds>,
    refresh: Duration,
    prices: Arc<Mutex<Option<Prices>>>,
}

/// A reservation: settle it with the actual usage, or drop it to release it.
pub struct Reservation {
    guard: BudgetGuard,
    tenant: TenantId,
    month: Month,
    currency: Currency,
    hold: String,
    open: bool,
}

/// Millionths of the currency unit, rounded up (reservations never under-hold).
fn micros_up(amount: Decimal) -> i64 {
    i64::try_from((amount * Decimal::from(1_000_000)).ceil()).unwrap_or(i64::MAX)
}

/// Millionths of the currency unit, rounded half away from zero (what was spent).
fn micros(amount: Decimal) -> i64 {
    i64::try_from((amount * Decimal::from(1_000_000)).round()).unwrap_or(i64::MAX)
}

fn unix_ms(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl BudgetGuard {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, holds: Arc<dyn BudgetHolds>, refresh: Duration) -> Self {
        Self { store, clock, holds, refresh, prices: Arc::default() }
    }

    /// Reserves `estimate` for `tenant` if it blocks on its budget (`None` otherwise: nothing to
    /// hold). Refused when the spend plus the reservations would pass the budget.
    pub async fn reserve(&self, tenant: &Tenant, estimate: &[Usage<'_>]) -> Result<Option<Reservation>, AppError> {
        let Some(budget) = tenant.monthly_budget.as_ref().filter(|_| tenant.budget_action == BudgetAction::Block)
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        let now_ms = unix_ms(now);
        let month = Month::of(now.date());
        let month_name = month.to_string();
        let currency = budget.currency().clone();
        let book = self.price_book().await?;
        let amount = micros_up(price(&book, &currency, month, now.date(), estimate));
        let limit = budget.minor_units().saturating_mul(10_000);
        let refresh_ms = self.refresh.as_millis() as i64;
        let unavailable = |e: anyhow::Error| {
            tracing::warn!(tenant = tenant.id.as_str(), error = %e, "budget holds unavailable; request served without the hard stop");
        };
        let read_at = match self.holds.read_at(&tenant.id, &month_name).await {
            Ok(r) => r,
            Err(e) => {
                unavailable(e);
                return Ok(None);
            }
        };
        let recorded = if read_at.is_none_or(|at| now_ms - at >= refresh_ms) {
            Some((micros(self.recorded_spend(&tenant.id, month, &currency, &book).await?), now_ms))
        } else {
            None
        };
        let hold = crate::metering::operation_id()?;
        let request = HoldRequest {
            tenant: &tenant.id,
            month: &month_name,
            hold: &hold,
            amount,
            limit,
            recorded,
            now_ms,
            expires_ms: now_ms + HOLD_TTL.as_millis() as i64,
        };
        match self.holds.reserve(request).await {
            Ok(Ok(())) => {}
            Ok(Err(spent)) => {
                return Err(AppError::BudgetExceeded {
                    tenant: tenant.id.clone(),
                    spent: Decimal::new(spent, 6).round_dp(2).to_string(),
                    budget: budget.amount_string(),
                    currency: currency.as_str().to_owned(),
                });
            }
            Err(e) => {
                unavailable(e);
                return Ok(None);
            }
        }
        Ok(Some(Reservation { guard: self.clone(), tenant: tenant.id.clone(), month, currency, hold, open: true }))
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
}

impl Reservation {
    /// Replaces the reservation by what the request actually used.
    pub async fn settle(mut self, usage: &[Usage<'_>]) {
        self.open = false;
        let now = self.guard.clock.now();
        let actual = match self.guard.price_book().await {
            Ok(book) => micros(price(&book, &self.currency, self.month, now.date(), usage)),
            Err(e) => {
                // the hold expires and the next ledger read counts the usage
                tracing::warn!(error = %e, "could not price a settled request; its hold expires instead");
                return;
            }
        };
        if let Err(e) = self.guard.holds.settle(&self.tenant, &self.month.to_string(), &self.hold, actual).await {
            tracing::warn!(error = %e, "could not settle a budget hold; it expires instead");
        }
    }
}

impl Drop for Reservation {
    /// A request that failed (or was cancelled) before settling releases what it held; if no
    /// runtime is left to do it, the hold expires.
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (holds, tenant, month, hold) =
                (self.guard.holds.clone(), self.tenant.clone(), self.month.to_string(), std::mem::take(&mut self.hold));
            runtime.spawn(async move {
                if let Err(e) = holds.settle(&tenant, &month, &hold, 0).await {
                    tracing::warn!(error = %e, "could not release a budget hold; it expires instead");
                }
            });
        }
    }
}

/// The exact price of `usage` on `day` in `currency` (quantities without a price cost nothing).
fn price(book: &PriceBook, currency: &Currency, month: Month, day: time::Date, usage: &[Usage<'_>]) -> Decimal {
    usage
        .iter()
        .filter_map(|(meter, model, quantity)| book.price_for(*meter, *model, day, currency)?.amount(*quantity, month))
        .sum()
}
