//! The registry statements whose column lists include the limits. They are built once from
//! [`LimitField::ALL`], so a new limit needs a column in each table and no statement edit.

use std::sync::LazyLock;

use sqlx::AssertSqlSafe;
use tenantry_domain::LimitField;

/// A statement of this module for `sqlx::query`. Safe to run: the text is built only from the
/// column names above and [`LimitField::as_str`], compile-time identifiers, never from input.
pub fn statement(sql: &'static LazyLock<String>) -> AssertSqlSafe<&'static str> {
    AssertSqlSafe(sql.as_str())
}

/// `tenants` columns before the limit columns, in bind order of [`bind_tenant_record!`](crate::bind_tenant_record).
const TENANT_FIXED: [&str; 22] = [
    "tenant_id",
    "name",
    "billing_email",
    "owner",
    "tier",
    "explicit_limits",
    "cost_center",
    "monthly_budget_minor",
    "budget_currency",
    "budget_action",
    "status",
    "status_reason",
    "status_changed_at",
    "retention_until",
    "health_score",
    "health_updated_at",
    "compliance_tags",
    "data_region",
    "metadata",
    "version",
    "created_at",
    "updated_at",
];

/// `tiers` columns before the limit columns, in bind order of [`bind_tier_record!`](crate::bind_tier_record).
const TIER_FIXED: [&str; 5] = ["name", "rank", "description", "isolation", "retention_days"];

fn with_limits(fixed: &[&'static str]) -> Vec<&'static str> {
    fixed.iter().copied().chain(LimitField::ALL.iter().map(|f| f.as_str())).collect()
}

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Every column of `tenants`, in bind order.
pub static TENANT_COLUMNS: LazyLock<String> = LazyLock::new(|| with_limits(&TENANT_FIXED).join(", "));

/// Every column of `tiers`, in bind order.
pub static TIER_COLUMNS: LazyLock<String> = LazyLock::new(|| with_limits(&TIER_FIXED).join(", "));

pub static INSERT_TENANT: LazyLock<String> = LazyLock::new(|| {
    let n = with_limits(&TENANT_FIXED).len();
    format!("insert into tenants ({}) values ({})", *TENANT_COLUMNS, placeholders(n))
});

pub static SELECT_TENANT: LazyLock<String> =
    LazyLock::new(|| format!("select {} from tenants where tenant_id = $1", *TENANT_COLUMNS));

pub static LIST_TENANTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {} from tenants
         where ($1 is null or status = $1) and ($2 is null or tier = $2) and ($3 is null or tenant_id > $3)
         order by tenant_id limit $4",
        *TENANT_COLUMNS
    )
});

/// Sets every column; the two parameters after them are the tenant id and the expected version.
pub static UPDATE_TENANT: LazyLock<String> = LazyLock::new(|| {
    let columns = with_limits(&TENANT_FIXED);
    let sets = columns.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect::<Vec<_>>();
    format!(
        "update tenants set {} where tenant_id = ${} and version = ${}",
        sets.join(", "),
        columns.len() + 1,
        columns.len() + 2
    )
});

pub static INSERT_TIER: LazyLock<String> = LazyLock::new(|| {
    let n = with_limits(&TIER_FIXED).len();
    format!("insert into tiers ({}) values ({})", *TIER_COLUMNS, placeholders(n))
});

pub static SELECT_TIERS: LazyLock<String> =
    LazyLock::new(|| format!("select {} from tiers order by rank, name", *TIER_COLUMNS));

pub static SELECT_TIER: LazyLock<String> =
    LazyLock::new(|| format!("select {} from tiers where name = $1", *TIER_COLUMNS));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_binds_every_column_then_the_key_and_version() {
        let n = with_limits(&TENANT_FIXED).len();
        assert!(UPDATE_TENANT.contains("tenant_id = $1,"));
        assert!(UPDATE_TENANT.contains("max_users = $23"));
        assert!(UPDATE_TENANT.ends_with(&format!("where tenant_id = ${} and version = ${}", n + 1, n + 2)));
        assert!(INSERT_TENANT.ends_with(&format!("${n})")));
    }
}
