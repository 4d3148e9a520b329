//! The cost ledger's port, written once for both SQL backends ([`ledger_store!`], expanded in the
//! store's crate beside `registry_store!`, whose requirements it shares).
//!
//! Recording is one transaction per batch: a multi-row insert of the events that skips keys
//! already recorded and returns the new ones, then one multi-row upsert adding them to their
//! daily rollups. Rows are written in key order, so concurrent writers (several replicas) take
//! row locks in the same order and cannot deadlock.

use std::collections::BTreeMap;

use tenantry_app::StoreError;
use tenantry_domain::cost::{Meter, RollupKey, UsageEvent};
use tenantry_domain::pricing::{Allocation, FixedCost, Month, Price};
use tenantry_domain::{Currency, Label, Money, TenantId};

/// Events per statement: 7 parameters each stays far below both backends' limits.
pub const EVENTS_PER_STATEMENT: usize = 1_000;

/// The events of a batch without repeats of one (tenant, key), in key order.
pub fn distinct_events(events: &[UsageEvent]) -> Vec<&UsageEvent> {
    let mut by_key: BTreeMap<(&str, &str), &UsageEvent> = BTreeMap::new();
    for e in events {
        by_key.entry((e.tenant.as_str(), e.key.as_str())).or_insert(e);
    }
    by_key.into_values().collect()
}

/// The rollup increments of the events that were new, in key order.
pub fn rollup_increments(
    events: &[&UsageEvent],
    new: &std::collections::HashSet<(&str, &str)>,
) -> BTreeMap<(String, &'static str, String, time::Date), i64> {
    let mut sums = BTreeMap::new();
    for e in events.iter().filter(|e| new.contains(&(e.tenant.as_str(), e.key.as_str()))) {
        let model = e.model.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default();
        *sums.entry((e.tenant.as_str().to_owned(), e.meter.as_str(), model, e.day())).or_insert(0i64) +=
            i64::try_from(e.quantity).unwrap_or(i64::MAX);
    }
    sums
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("stored {what} is not valid: {detail}"))
}

fn model_of(stored: &str) -> Result<Option<Label>, StoreError> {
    if stored.is_empty() { Ok(None) } else { Label::parse(stored).map(Some).map_err(|e| corrupt("model", e)) }
}

/// A rollup row as read.
pub fn rollup_from_columns(
    (tenant, meter, model, day, quantity): (String, String, String, time::Date, i64),
) -> Result<(RollupKey, u64), StoreError> {
    Ok((
        RollupKey {
            tenant: TenantId::parse(&tenant).map_err(|e| corrupt("tenant id", e))?,
            meter: Meter::parse(&meter).map_err(|e| corrupt("meter", e.reason()))?,
            model: model_of(&model)?,
            day,
        },
        u64::try_from(quantity).unwrap_or(0),
    ))
}

/// The columns of `prices` read back, in `select` order.
pub type PriceColumns = (String, String, String, time::Date, String, String);

pub fn price_from_columns((meter, model, currency, from, provider, unit): PriceColumns) -> Result<Price, StoreError> {
    Price::new(
        Meter::parse(&meter).map_err(|e| corrupt("meter", e.reason()))?,
        model_of(&model)?,
        Label::parse(&provider).map_err(|e| corrupt("provider", e))?,
        Currency::parse(&currency).map_err(|e| corrupt("currency", e.reason()))?,
        Price::parse_unit_price(&unit).map_err(|e| corrupt("unit price", e.reason()))?,
        from,
    )
    .map_err(|e| corrupt("price", e.reason()))
}

/// The columns of `fixed_costs` read back, in `select` order.
pub type FixedCostColumns = (String, String, i64, String, bool, String, String, Option<String>);

pub fn fixed_cost_from_columns(
    (name, provider, amount, currency, per_index, allocation, from, until): FixedCostColumns,
) -> Result<FixedCost, StoreError> {
    let currency = Currency::parse(&currency).map_err(|e| corrupt("currency", e.reason()))?;
    Ok(FixedCost {
        name: Label::parse(&name).map_err(|e| corrupt("fixed cost name", e))?,
        provider: Label::parse(&provider).map_err(|e| corrupt("provider", e))?,
        amount: Money::new(amount, currency).map_err(|e| corrupt("amount", e.reason()))?,
        per_index,
        allocation: Allocation::parse(&allocation).map_err(|e| corrupt("allocation", e.reason()))?,
        from: Month::parse(&from).map_err(|e| corrupt("month", e.reason()))?,
        until: until.map(|u| Month::parse(&u)).transpose().map_err(|e| corrupt("month", e.reason()))?,
    })
}

/// A rollup increment: (tenant, meter, model or "", day) and the quantity to add.
pub type RollupIncrement = ((String, &'static str, String, time::Date), i64);

/// The usage writes as multi-row `VALUES` statements (SQLite; PostgreSQL binds arrays instead):
/// `insert_usage_rows` inserts events skipping recorded keys and returns the new (tenant, key)
/// pairs; `add_usage_rollups` adds increments to the daily rows.
#[macro_export]
macro_rules! usage_rows_by_values {
    ($store:ident, $db:ty) => {
        impl $store {
            pub(crate) async fn write_usage(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                events: &[&::tenantry_domain::cost::UsageEvent],
            ) -> Result<u64, ::tenantry_app::StoreError> {
                let mut inserted: Vec<(String, String)> = Vec::with_capacity(events.len());
                for chunk in events.chunks($crate::ledger::EVENTS_PER_STATEMENT) {
                    inserted.extend(Self::insert_usage_rows(tx, chunk).await?);
                }
                let new: ::std::collections::HashSet<(&str, &str)> =
                    inserted.iter().map(|(t, k)| (t.as_str(), k.as_str())).collect();
                let rows: Vec<_> = $crate::ledger::rollup_increments(events, &new).into_iter().collect();
                for chunk in rows.chunks($crate::ledger::EVENTS_PER_STATEMENT) {
                    Self::add_usage_rollups(tx, chunk).await?;
                }
                Ok(inserted.len() as u64)
            }

            pub(crate) async fn insert_usage_rows(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                chunk: &[&::tenantry_domain::cost::UsageEvent],
            ) -> Result<Vec<(String, String)>, ::tenantry_app::StoreError> {
                let mut insert = ::sqlx::QueryBuilder::<$db>::new(
                    "insert into usage_events (tenant_id, idem_key, meter, model, quantity, at) ",
                );
                insert.push_values(chunk, |mut row, e| {
                    row.push_bind(e.tenant.as_str().to_owned())
                        .push_bind(e.key.clone())
                        .push_bind(e.meter.as_str())
                        .push_bind(e.model.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default())
                        .push_bind(i64::try_from(e.quantity).unwrap_or(i64::MAX))
                        .push_bind(e.at);
                });
                insert.push(" on conflict (tenant_id, idem_key) do nothing returning tenant_id, idem_key");
                insert
                    .build_query_as()
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(|e| $crate::store_error(e, "record usage events"))
            }

            pub(crate) async fn add_usage_rollups(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                chunk: &[$crate::ledger::RollupIncrement],
            ) -> Result<(), ::tenantry_app::StoreError> {
                let mut upsert = ::sqlx::QueryBuilder::<$db>::new(
                    "insert into usage_daily (tenant_id, meter, model, day, quantity) ",
                );
                upsert.push_values(chunk, |mut row, ((tenant, meter, model, day), q)| {
                    row.push_bind(tenant.clone()).push_bind(*meter).push_bind(model.clone()).push_bind(*day).push_bind(*q);
                });
                upsert.push(
                    " on conflict (tenant_id, meter, model, day) do update set quantity = usage_daily.quantity + excluded.quantity",
                );
                upsert.build().execute(&mut **tx).await.map_err(|e| $crate::store_error(e, "roll up usage"))?;
                Ok(())
            }
        }
    };
}

/// Implements `Ledger` for `$store` over database `$db`; `$store` also has
/// `async fn write_usage(&mut Transaction, &[&UsageEvent]) -> Result<u64, StoreError>`: record
/// the (distinct, key-ordered) events skipping recorded keys, add the new ones to their rollups,
/// and say how many were new (see [`usage_rows_by_values!`]).
#[macro_export]
macro_rules! ledger_store {
    ($store:ident, $db:ty) => {
        pub(crate) mod ledger {
            use super::*;
            use ::sqlx::types::Json;
            use ::tenantry_app::ports::{AuditRecord, Ledger, StoredReconciliation};
            use ::tenantry_app::{PlatformScope, StoreError, TenantScope};
            use ::tenantry_domain::cost::{RollupKey, UsageEvent};
            use ::tenantry_domain::pricing::{Bill, FixedCost, Month, Price};
            use ::tenantry_domain::{Label, Money, TenantId};
            use $crate::ledger::{
                FixedCostColumns, PriceColumns, distinct_events, fixed_cost_from_columns, price_from_columns,
                rollup_from_columns,
            };
            use $crate::store_error;

            type RollupRow = (String, String, String, ::time::Date, i64);

            #[::async_trait::async_trait]
            impl Ledger for $store {
                async fn record_usage(&self, access: &PlatformScope, events: &[UsageEvent]) -> Result<u64, StoreError> {
                    let events = distinct_events(events);
                    if events.is_empty() {
                        return Ok(0);
                    }
                    let mut tx = self.platform_tx(access).await?;
                    let new = $store::write_usage(&mut tx, &events).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit usage"))?;
                    Ok(new)
                }

                async fn usage_rollups(
                    &self,
                    access: &PlatformScope,
                    from: ::time::Date,
                    until: ::time::Date,
                ) -> Result<Vec<(RollupKey, u64)>, StoreError> {
                    let mut tx = self.platform_read(access).await?;
                    let rows: Vec<RollupRow> = ::sqlx::query_as(
                        "select tenant_id, meter, model, day, quantity from usage_daily where day >= $1 and day < $2",
                    )
                    .bind(from)
                    .bind(until)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "read usage rollups"))?;
                    $store::end_read(tx).await?;
                    rows.into_iter().map(rollup_from_columns).collect()
                }

                async fn tenant_usage_rollups(
                    &self,
                    scope: &TenantScope,
                    from: ::time::Date,
                    until: ::time::Date,
                ) -> Result<Vec<(RollupKey, u64)>, StoreError> {
                    let mut tx = self.tenant_read(scope).await?;
                    let rows: Vec<RollupRow> = ::sqlx::query_as(
                        "select tenant_id, meter, model, day, quantity from usage_daily
                         where tenant_id = $1 and day >= $2 and day < $3",
                    )
                    .bind(scope.tenant().as_str())
                    .bind(from)
                    .bind(until)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "read the tenant's usage rollups"))?;
                    $store::end_read(tx).await?;
                    rows.into_iter().map(rollup_from_columns).collect()
                }

                async fn tenant_usage_events(&self, scope: &TenantScope) -> Result<u64, StoreError> {
                    let mut tx = self.tenant_read(scope).await?;
                    let n: i64 = ::sqlx::query_scalar("select count(*) from usage_events where tenant_id = $1")
                        .bind(scope.tenant().as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "count usage events"))?;
                    $store::end_read(tx).await?;
                    Ok(u64::try_from(n).unwrap_or(0))
                }

                async fn put_price(&self, access: &PlatformScope, p: &Price, audit: &AuditRecord) -> Result<(), StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    ::sqlx::query(
                        "insert into prices (meter, model, currency, effective_from, provider, unit_price, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7)
                         on conflict (meter, model, currency, effective_from)
                         do update set provider = excluded.provider, unit_price = excluded.unit_price, created_at = excluded.created_at",
                    )
                    .bind(p.meter.as_str())
                    .bind(p.model.as_ref().map(|m| m.as_str()).unwrap_or(""))
                    .bind(p.currency.as_str())
                    .bind(p.effective_from)
                    .bind(p.provider.as_str())
                    .bind(p.unit_price.to_string())
                    .bind(audit.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "put price"))?;
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit price"))
                }

                async fn prices(&self, access: &PlatformScope) -> Result<Vec<Price>, StoreError> {
                    let mut tx = self.platform_read(access).await?;
                    let rows: Vec<PriceColumns> = ::sqlx::query_as(
                        "select meter, model, currency, effective_from, provider, unit_price from prices
                         order by meter, model, currency, effective_from",
                    )
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "list prices"))?;
                    $store::end_read(tx).await?;
                    rows.into_iter().map(price_from_columns).collect()
                }

                async fn put_fixed_cost(
                    &self,
                    access: &PlatformScope,
                    f: &FixedCost,
                    audit: &AuditRecord,
                ) -> Result<(), StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    ::sqlx::query(
                        "insert into fixed_costs (name, provider, amount_minor, currency, per_index, allocation, from_month, until_month, updated_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         on conflict (name) do update set provider = excluded.provider, amount_minor = excluded.amount_minor,
                           currency = excluded.currency, per_index = excluded.per_index, allocation = excluded.allocation,
                           from_month = excluded.from_month, until_month = excluded.until_month, updated_at = excluded.updated_at",
                    )
                    .bind(f.name.as_str())
                    .bind(f.provider.as_str())
                    .bind(f.amount.minor_units())
                    .bind(f.amount.currency().as_str())
                    .bind(f.per_index)
                    .bind(f.allocation.to_string())
                    .bind(f.from.to_string())
                    .bind(f.until.map(|u| u.to_string()))
                    .bind(audit.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "put fixed cost"))?;
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit fixed cost"))
                }

                async fn delete_fixed_cost(
                    &self,
                    access: &PlatformScope,
                    name: &Label,
                    audit: &AuditRecord,
                ) -> Result<(), StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    let gone = ::sqlx::query("delete from fixed_costs where name = $1")
                        .bind(name.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "delete fixed cost"))?;
                    if gone.rows_affected() == 0 {
                        return Err(StoreError::NotFound(::tenantry_app::Missing::FixedCost(name.clone())));
                    }
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit fixed cost"))
                }

                async fn fixed_costs(&self, access: &PlatformScope) -> Result<Vec<FixedCost>, StoreError> {
                    let mut tx = self.platform_read(access).await?;
                    let rows: Vec<FixedCostColumns> = ::sqlx::query_as(
                        "select name, provider, amount_minor, currency, per_index, allocation, from_month, until_month
                         from fixed_costs order by name",
                    )
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "list fixed costs"))?;
                    $store::end_read(tx).await?;
                    rows.into_iter().map(fixed_cost_from_columns).collect()
                }

                async fn put_bills(&self, access: &PlatformScope, bills: &[Bill], audit: &AuditRecord) -> Result<(), StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    for b in bills {
                        ::sqlx::query(
                            "insert into bills (provider, month, currency, amount_minor, imported_at) values ($1, $2, $3, $4, $5)
                             on conflict (provider, month) do update set currency = excluded.currency,
                               amount_minor = excluded.amount_minor, imported_at = excluded.imported_at",
                        )
                        .bind(b.provider.as_str())
                        .bind(b.month.to_string())
                        .bind(b.amount.currency().as_str())
                        .bind(b.amount.minor_units())
                        .bind(audit.at)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "import bill"))?;
                    }
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit bills"))
                }

                async fn bills(&self, access: &PlatformScope, month: Month) -> Result<Vec<Bill>, StoreError> {
                    let mut tx = self.platform_read(access).await?;
                    let rows: Vec<(String, String, i64)> = ::sqlx::query_as(
                        "select provider, currency, amount_minor from bills where month = $1 order by provider",
                    )
                    .bind(month.to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "list bills"))?;
                    $store::end_read(tx).await?;
                    rows.into_iter()
                        .map(|(provider, currency, amount)| {
                            let bad = |e: String| StoreError::Unexpected(::anyhow::anyhow!("stored bill is not valid: {e}"));
                            let currency = ::tenantry_domain::Currency::parse(&currency).map_err(|e| bad(e.reason().to_owned()))?;
                            Ok(Bill {
                                provider: Label::parse(&provider).map_err(|e| bad(e.to_string()))?,
                                month,
                                amount: Money::new(amount, currency).map_err(|e| bad(e.reason().to_owned()))?,
                            })
                        })
                        .collect()
                }

                async fn insert_reconciliation(
                    &self,
                    access: &PlatformScope,
                    r: &StoredReconciliation,
                    audit: &AuditRecord,
                ) -> Result<i64, StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    let id: i64 = ::sqlx::query_scalar(
                        "insert into reconciliations (month, currency, verdict, at, detail) values ($1, $2, $3, $4, $5) returning id",
                    )
                    .bind(&r.month)
                    .bind(&r.currency)
                    .bind(&r.verdict)
                    .bind(r.at)
                    .bind(Json(&r.detail))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "record reconciliation"))?;
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit reconciliation"))?;
                    Ok(id)
                }

                async fn latest_reconciliation(
                    &self,
                    access: &PlatformScope,
                    month: Option<Month>,
                ) -> Result<Option<StoredReconciliation>, StoreError> {
                    let mut tx = self.platform_read(access).await?;
                    let row: Option<(i64, String, String, String, ::time::OffsetDateTime, Json<::serde_json::Value>)> =
                        ::sqlx::query_as(
                            "select id, month, currency, verdict, at, detail from reconciliations
                             where $1 is null or month = $1 order by id desc limit 1",
                        )
                        .bind(month.map(|m| m.to_string()))
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "read reconciliation"))?;
                    $store::end_read(tx).await?;
                    Ok(row.map(|(id, month, currency, verdict, at, Json(detail))| StoredReconciliation {
                        id,
                        month,
                        currency,
                        verdict,
                        at,
                        detail,
                    }))
                }

                async fn record_usage_with_audit(
                    &self,
                    scope: &TenantScope,
                    events: &[UsageEvent],
                    audit: &AuditRecord,
                ) -> Result<(), StoreError> {
                    if events.iter().any(|e| &e.tenant != scope.tenant()) || audit.tenant.as_ref() != Some(scope.tenant()) {
                        return Err(StoreError::ConstraintViolated(
                            "usage and audit entry must name the scope's tenant".to_owned(),
                        ));
                    }
                    let mut tx = self.tenant_tx(scope).await?;
                    $store::write_usage(&mut tx, &distinct_events(events)).await?;
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit usage and audit entry"))
                }

                async fn prune_usage_events(
                    &self,
                    access: &PlatformScope,
                    before: ::time::OffsetDateTime,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    let gone = ::sqlx::query(
                        "delete from usage_events where (tenant_id, idem_key) in
                           (select tenant_id, idem_key from usage_events where at < $1 limit $2)",
                    )
                    .bind(before)
                    .bind(i64::from(limit))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "prune usage events"))?;
                    tx.commit().await.map_err(|e| store_error(e, "commit usage pruning"))?;
                    Ok(gone.rows_affected())
                }

                async fn claim_budget_alert(
                    &self,
                    access: &PlatformScope,
                    tenant: &TenantId,
                    month: Month,
                    threshold: u32,
                    at: ::time::OffsetDateTime,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.platform_tx(access).await?;
                    let done = ::sqlx::query(
                        "insert into budget_alerts (tenant_id, month, threshold, fired_at) values ($1, $2, $3, $4)
                         on conflict (tenant_id, month, threshold) do nothing",
                    )
                    .bind(tenant.as_str())
                    .bind(month.to_string())
                    .bind(i64::from(threshold))
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "claim budget alert"))?;
                    tx.commit().await.map_err(|e| store_error(e, "commit budget alert"))?;
                    Ok(done.rows_affected() == 1)
                }
            }
        }
    };
}
