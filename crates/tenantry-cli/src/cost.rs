//! `tenantry cost …`: the cost ledger from the command line.

use serde_json::{Value, json};

use tenantry_app::costs::{fixed_json, meters_json, price_json};
use tenantry_app::{Costs, PlatformScope};
use tenantry_domain::cost::Meter;
use tenantry_domain::pricing::{
    Allocation, Bill, FixedCost, Month, MonthReport, Price, ReconciliationReport, chargeback, format_minor, parse_day,
};
use tenantry_domain::{Currency, Label, Money};

use crate::cli::{BillsCmd, BudgetsCmd, CostCmd, FixedCmd, PricesCmd, ReportFormat};
use crate::commands::CliError;
use crate::output::{Out, print_json, table};

type Result<T> = std::result::Result<T, CliError>;

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn month_arg(month: &str) -> Result<Month> {
    Month::parse(month).map_err(|e| usage(format!("--month: {}", e.reason())))
}

fn currency_arg(currency: Option<&str>) -> Result<Option<Currency>> {
    currency.map(Currency::parse).transpose().map_err(|e| usage(format!("--currency: {}", e.reason())))
}

fn label_arg(field: &str, value: &str) -> Result<Label> {
    Label::parse(value).map_err(|e| usage(format!("{field}: {e}")))
}

fn json_of(v: impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| CliError::Failed(e.into()))
}

pub async fn cost(costs: &Costs, admin: &PlatformScope, cmd: CostCmd, out: &Out) -> Result<()> {
    match cmd {
        CostCmd::Report { month, tenant, currency, format } => {
            let mut report = costs.report(admin, month_arg(&month)?, currency_arg(currency.as_deref())?).await?;
            if let Some(tenant) = tenant {
                let id = tenantry_domain::TenantId::parse(&tenant).map_err(|e| usage(format!("--tenant: {e}")))?;
                report.tenants.retain(|t| t.tenant == id);
                report.unpriced.retain(|u| u.tenant == id);
                if report.tenants.is_empty() {
                    return Err(CliError::Refused(tenantry_app::AppError::TenantNotFound(id)));
                }
                // the totals are the tenant's; the platform-wide parts are left out
                report.variable_minor = report.tenants.iter().map(|t| t.variable_minor).sum();
                report.fixed_minor = report.tenants.iter().map(|t| t.fixed_minor).sum();
                report.total_minor = report.variable_minor + report.fixed_minor;
                report.fixed.clear();
                report.by_provider.clear();
                report.provider_drivers.clear();
            }
            print_report(&report, if out.json { ReportFormat::Json } else { format })
        }
        CostCmd::Chargeback { month, currency, format } => {
            let report = costs.report(admin, month_arg(&month)?, currency_arg(currency.as_deref())?).await?;
            print_chargeback(&report, if out.json { ReportFormat::Json } else { format })
        }
        CostCmd::Meters => {
            let meters = meters_json();
            if out.json {
                print_json(&meters);
            } else {
                let rows = Meter::ALL
                    .iter()
                    .map(|m| {
                        vec![
                            m.as_str().to_owned(),
                            m.unit().to_owned(),
                            m.price_unit().to_owned(),
                            m.per_model().to_string(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["meter", "unit", "priced per", "per model"], &rows);
            }
            Ok(())
        }
        CostCmd::Prices(cmd) => prices(costs, admin, cmd, out).await,
        CostCmd::Fixed(cmd) => fixed(costs, admin, cmd, out).await,
        CostCmd::Bills(BillsCmd::Import { file }) => {
            let text = std::fs::read_to_string(&file).map_err(|e| usage(format!("read {}: {e}", file.display())))?;
            let bills = Bill::parse_csv(&text).map_err(|e| usage(format!("{}: {}", file.display(), e.reason())))?;
            let n = costs.import_bills(admin, bills).await?;
            out.message(&format!("imported {n} bills from {}", file.display()));
            Ok(())
        }
        CostCmd::Reconcile { month, currency } => {
            let (id, result) = costs.reconcile(admin, month_arg(&month)?, currency_arg(currency.as_deref())?).await?;
            if out.json {
                print_json(&json!({"id": id, "reconciliation": json_of(&result)?}));
            } else {
                print_reconciliation(&result);
            }
            match result.verdict {
                "pass" => Ok(()),
                "warn" => Err(CliError::Warned(format!(
                    "reconciliation {id}: allocated costs are 5–10% from the bills; find out why"
                ))),
                _ => Err(CliError::ChecksFailed(format!(
                    "reconciliation {id}: allocated costs are more than 10% from the bills (or a bill is missing); stop here"
                ))),
            }
        }
        CostCmd::Budgets(BudgetsCmd::Check) => {
            let fired = costs.check_budgets(admin).await?;
            if out.json {
                print_json(&json!({"alerts": json_of(&fired)?}));
            } else if fired.is_empty() {
                out.message("no budget threshold newly crossed this month");
            } else {
                let rows = fired
                    .iter()
                    .map(|a| {
                        vec![
                            a.tenant.to_string(),
                            format!("{}%", a.threshold_percent),
                            format!("{} {}", format_minor(a.spent_minor), a.currency),
                            format!("{} {}", format_minor(a.budget_minor), a.currency),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["tenant", "threshold", "spent", "budget"], &rows);
            }
            Ok(())
        }
    }
}

async fn prices(costs: &Costs, admin: &PlatformScope, cmd: PricesCmd, out: &Out) -> Result<()> {
    let shown = match cmd {
        PricesCmd::List => costs.prices(admin).await?,
        PricesCmd::Set { meter, model, provider, currency, unit_price, from } => {
            let price = Price::new(
                Meter::parse(&meter).map_err(|e| usage(format!("--meter: {}", e.reason())))?,
                model.as_deref().map(|m| label_arg("--model", m)).transpose()?,
                label_arg("--provider", &provider)?,
                Currency::parse(&currency).map_err(|e| usage(format!("--currency: {}", e.reason())))?,
                Price::parse_unit_price(&unit_price).map_err(|e| usage(format!("--unit-price: {}", e.reason())))?,
                parse_day("--from", &from).map_err(|e| usage(e.reason()))?,
            )
            .map_err(|e| usage(e.reason()))?;
            costs.set_price(admin, price.clone()).await?;
            vec![price]
        }
        PricesCmd::Preset { name, from } => {
            let from = parse_day("--from", &from).map_err(|e| usage(e.reason()))?;
            costs.load_preset(admin, &name, from).await?
        }
    };
    if out.json {
        print_json(&json!({"prices": shown.iter().map(price_json).collect::<Vec<_>>()}));
    } else {
        let rows = shown
            .iter()
            .map(|p| {
                vec![
                    p.meter.as_str().to_owned(),
                    p.model.as_ref().map_or("*".to_owned(), |m| m.to_string()),
                    p.provider.to_string(),
                    format!("{} {}", p.unit_price, p.currency.as_str()),
                    p.meter.price_unit().to_owned(),
                    p.effective_from.to_string(),
                ]
            })
            .collect::<Vec<_>>();
        table(&["meter", "model", "provider", "unit price", "per", "from"], &rows);
    }
    Ok(())
}

async fn fixed(costs: &Costs, admin: &PlatformScope, cmd: FixedCmd, out: &Out) -> Result<()> {
    let items = match cmd {
        FixedCmd::List => costs.fixed_costs(admin).await?,
        FixedCmd::Set { name, provider, amount, currency, per_index, allocation, from, until } => {
            let currency = Currency::parse(&currency).map_err(|e| usage(format!("--currency: {}", e.reason())))?;
            let item = FixedCost {
                name: label_arg("name", &name)?,
                provider: label_arg("--provider", &provider)?,
                amount: Money::parse_decimal(&amount, currency)
                    .map_err(|e| usage(format!("--amount: {}", e.reason())))?,
                per_index,
                allocation: Allocation::parse(&allocation)
                    .map_err(|e| usage(format!("--allocation: {}", e.reason())))?,
                from: Month::parse(&from).map_err(|e| usage(format!("--from: {}", e.reason())))?,
                until: until
                    .as_deref()
                    .map(Month::parse)
                    .transpose()
                    .map_err(|e| usage(format!("--until: {}", e.reason())))?,
            };
            costs.put_fixed_cost(admin, item.clone()).await?;
            vec![item]
        }
        FixedCmd::Remove { name } => {
            costs.delete_fixed_cost(admin, &label_arg("name", &name)?).await?;
            out.message(&format!("removed fixed cost {name}"));
            return Ok(());
        }
    };
    if out.json {
        print_json(&json!({"fixed_costs": items.iter().map(fixed_json).collect::<Vec<_>>()}));
    } else {
        let rows = items
            .iter()
            .map(|f| {
                vec![
                    f.name.to_string(),
                    f.provider.to_string(),
                    f.amount.to_string(),
                    if f.per_index { "per index".to_owned() } else { "month".to_owned() },
                    f.allocation.to_string(),
                    f.from.to_string(),
                    f.until.map_or("-".to_owned(), |u| u.to_string()),
                ]
            })
            .collect::<Vec<_>>();
        table(&["name", "provider", "amount", "per", "allocation", "from", "until"], &rows);
    }
    Ok(())
}

fn variance_cell(percent: Option<rust_decimal::Decimal>, mark: Option<&str>) -> String {
    match (percent, mark) {
        (Some(p), Some(m)) => {
            let word = if p.is_sign_positive() && !p.is_zero() { "over" } else { "under" };
            format!("{}% {word} {m}", p.abs())
        }
        _ => "-".to_owned(),
    }
}

fn print_report(r: &MonthReport, format: ReportFormat) -> Result<()> {
    let money = |minor: i64| format_minor(minor);
    match format {
        ReportFormat::Json => print_json(&json_of(r)?),
        ReportFormat::Csv => {
            let mut header = vec!["tenant", "cost_center", "currency"];
            let meter_cols: Vec<String> = Meter::ALL.iter().map(|m| format!("{}_amount", m.as_str())).collect();
            header.extend(meter_cols.iter().map(String::as_str));
            header.extend(["variable", "fixed", "total", "budget", "budget_variance_percent"]);
            println!("{}", header.join(","));
            for t in &r.tenants {
                let mut cells =
                    vec![t.tenant.to_string(), csv_cell(t.cost_center.as_deref().unwrap_or("")), r.currency.clone()];
                for m in Meter::ALL {
                    let sum: i64 = t.lines.iter().filter(|l| l.meter == m.as_str()).map(|l| l.amount_minor).sum();
                    cells.push(money(sum));
                }
                cells.extend([
                    money(t.variable_minor),
                    money(t.fixed_minor),
                    money(t.total_minor),
                    t.budget_minor.map(money).unwrap_or_default(),
                    t.budget_variance_percent.map(|p| p.to_string()).unwrap_or_default(),
                ]);
                println!("{}", cells.join(","));
            }
        }
        ReportFormat::Table => {
            println!("Costs for {} in {} (UTC month; amounts rounded to the cent per line)", r.month, r.currency);
            let rows = r
                .tenants
                .iter()
                .map(|t| {
                    vec![
                        t.tenant.to_string(),
                        t.cost_center.clone().unwrap_or_else(|| "-".to_owned()),
                        money(t.variable_minor),
                        money(t.fixed_minor),
                        money(t.total_minor),
                        t.budget_minor.map_or("-".to_owned(), money),
                        variance_cell(t.budget_variance_percent, t.budget_mark),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["tenant", "cost center", "variable", "fixed", "total", "budget", "variance"], &rows);
            println!("\nMeters");
            let rows = r
                .tenants
                .iter()
                .flat_map(|t| {
                    t.lines.iter().map(move |l| {
                        vec![
                            t.tenant.to_string(),
                            l.meter.to_owned(),
                            l.model.clone().unwrap_or_else(|| "-".to_owned()),
                            l.provider.clone(),
                            format!("{} {}", l.quantity, l.unit),
                            money(l.amount_minor),
                        ]
                    })
                })
                .collect::<Vec<_>>();
            table(&["tenant", "meter", "model", "provider", "quantity", "amount"], &rows);
            if !r.fixed.is_empty() {
                println!("\nFixed costs");
                let rows = r
                    .fixed
                    .iter()
                    .map(|f| {
                        vec![
                            f.name.clone(),
                            f.provider.clone(),
                            f.allocation.clone(),
                            f.units.to_string(),
                            money(f.amount_minor),
                            money(f.unallocated_minor),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["item", "provider", "allocation", "units", "amount", "unallocated"], &rows);
            }
            if !r.unpriced.is_empty() {
                println!("\nUnpriced usage (no {} price in effect)", r.currency);
                let rows = r
                    .unpriced
                    .iter()
                    .map(|u| {
                        vec![
                            u.tenant.to_string(),
                            u.meter.to_owned(),
                            u.model.clone().unwrap_or_default(),
                            u.quantity.to_string(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["tenant", "meter", "model", "quantity"], &rows);
            }
            println!(
                "\nTotal {} {} (variable {}, fixed {})",
                money(r.total_minor),
                r.currency,
                money(r.variable_minor),
                money(r.fixed_minor)
            );
        }
    }
    Ok(())
}

fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_owned() }
}

fn print_chargeback(r: &MonthReport, format: ReportFormat) -> Result<()> {
    let lines = chargeback(r);
    let money = |minor: i64| format_minor(minor);
    match format {
        ReportFormat::Json => {
            print_json(&json!({"month": r.month, "currency": r.currency, "cost_centers": json_of(&lines)?}))
        }
        ReportFormat::Csv => {
            println!("cost_center,tenants,currency,variable,fixed,total,budget,budget_variance_percent");
            for l in &lines {
                println!(
                    "{},{},{},{},{},{},{},{}",
                    csv_cell(l.cost_center.as_deref().unwrap_or("")),
                    l.tenants.len(),
                    r.currency,
                    money(l.variable_minor),
                    money(l.fixed_minor),
                    money(l.total_minor),
                    l.budget_minor.map(money).unwrap_or_default(),
                    l.budget_variance_percent.map(|p| p.to_string()).unwrap_or_default()
                );
            }
        }
        ReportFormat::Table => {
            println!("Chargeback for {} in {}", r.month, r.currency);
            let rows = lines
                .iter()
                .map(|l| {
                    vec![
                        l.cost_center.clone().unwrap_or_else(|| "(none)".to_owned()),
                        l.tenants.len().to_string(),
                        money(l.total_minor),
                        l.budget_minor.map_or("-".to_owned(), money),
                        variance_cell(l.budget_variance_percent, l.budget_mark),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["cost center", "tenants", "actual", "budget", "variance"], &rows);
        }
    }
    Ok(())
}

fn print_reconciliation(r: &ReconciliationReport) {
    println!("Reconciliation of {} in {}: {}", r.month, r.currency, r.verdict.to_uppercase());
    let rows = r
        .providers
        .iter()
        .map(|p| {
            let drivers: Vec<String> =
                p.drivers.iter().take(3).map(|(name, minor)| format!("{name} {}", format_minor(*minor))).collect();
            vec![
                p.provider.clone(),
                format_minor(p.expected_minor),
                p.billed_minor.map_or("no bill".to_owned(), format_minor),
                p.variance_percent.map_or("-".to_owned(), |v| format!("{v}%")),
                p.verdict.to_owned(),
                drivers.join("; "),
            ]
        })
        .collect::<Vec<_>>();
    table(&["provider", "allocated", "billed", "variance", "verdict", "drivers"], &rows);
    println!(
        "total: allocated {} billed {} ({})",
        format_minor(r.expected_minor),
        format_minor(r.billed_minor),
        r.variance_percent.map_or("-".to_owned(), |v| format!("{v}%"))
    );
}
