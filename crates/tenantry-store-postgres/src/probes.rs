//! Live RLS probes (`tenantry doctor rls`): the seed's readiness check #1 — a query with a missing
//! or wrong tenant context returns zero rows, not an error and not another tenant's rows. They run
//! on the application role's own connection, where RLS applies.

use sqlx::{PgPool, Row};

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// It could not run (e.g. fewer than two tenants to try one against the other): neither
    /// passed nor failed, and reported as such.
    Skipped,
}

impl Outcome {
    fn of(passed: bool) -> Self {
        if passed { Outcome::Passed } else { Outcome::Failed }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// Tables that hold a `tenant_id` column (tenant-owned and platform tables), from the catalog.
pub async fn tables_with_tenant_id(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
         join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
         where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1",
    )
    .fetch_all(pool)
    .await
}

fn count_sql(table: &str, where_clause: &str) -> sqlx::AssertSqlSafe<String> {
    // `table` comes from pg_class and is quoted; no user input reaches this string
    sqlx::AssertSqlSafe(format!("select count(*) from \"{}\" {where_clause}", table.replace('"', "\"\"")))
}

/// Runs the probes: role hygiene, (1) no context → zero rows, (2) tenant A's context → none of
/// B's rows visible and updates to B's row affect nothing. Every probe transaction is rolled back.
pub async fn run(pool: &PgPool) -> sqlx::Result<Vec<Probe>> {
    let mut probes = Vec::new();

    let role = sqlx::query(
        "select current_user::text as name, rolsuper, rolbypassrls,
                (select count(*) from pg_class where relowner = r.oid) as owned
         from pg_roles r where rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    let (name, superuser, bypass, owned): (String, bool, bool, i64) =
        (role.try_get("name")?, role.try_get("rolsuper")?, role.try_get("rolbypassrls")?, role.try_get("owned")?);
    probes.push(Probe {
        name: "app_role_is_subject_to_rls",
        outcome: Outcome::of(!superuser && !bypass && owned == 0),
        detail: format!("role {name}: superuser={superuser} bypassrls={bypass} owns {owned} relations"),
    });

    let tables = tables_with_tenant_id(pool).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await?;
    let mut totals = Vec::new();
    for t in &tables {
        let n: i64 = sqlx::query_scalar(count_sql(t, "")).fetch_one(&mut *tx).await?;
        totals.push(n);
    }
    let tenants: Vec<String> =
        sqlx::query_scalar("select tenant_id from tenants order by tenant_id limit 2").fetch_all(&mut *tx).await?;
    tx.rollback().await?;

    let mut tx = pool.begin().await?;
    let mut leaks = Vec::new();
    for (t, total) in tables.iter().zip(&totals) {
        let visible: i64 = sqlx::query_scalar(count_sql(t, "")).fetch_one(&mut *tx).await?;
        if visible != 0 {
            leaks.push(format!("{t}: {visible} of {total} rows visible"));
        }
    }
    tx.rollback().await?;
    let rows_exist: i64 = totals.iter().sum();
    probes.push(Probe {
        name: "no_context_returns_zero_rows",
        outcome: Outcome::of(leaks.is_empty()),
        detail: if leaks.is_empty() {
            format!("{} tables, {rows_exist} rows exist, 0 visible without tenant context", tables.len())
        } else {
            leaks.join("; ")
        },
    });

    if let [a, b] = tenants.as_slice() {
        let mut tx = pool.begin().await?;
        sqlx::query("select set_config('tenantry.tenant_id', $1, true)").bind(a).execute(&mut *tx).await?;
        let mut leaks = Vec::new();
        for t in &tables {
            let n: i64 = sqlx::query_scalar(count_sql(
                t,
                "where tenant_id is distinct from current_setting('tenantry.tenant_id', true)",
            ))
            .fetch_one(&mut *tx)
            .await?;
            if n != 0 {
                leaks.push(format!("{t}: {n} foreign rows visible"));
            }
        }
        let updated =
            sqlx::query("update tenants set name = name where tenant_id = $1").bind(b).execute(&mut *tx).await?;
        if updated.rows_affected() != 0 {
            leaks.push(format!("update of {b}'s row under {a}'s context affected {} rows", updated.rows_affected()));
        }
        tx.rollback().await?;
        probes.push(Probe {
            name: "wrong_tenant_returns_zero_rows",
            outcome: Outcome::of(leaks.is_empty()),
            detail: if leaks.is_empty() {
                format!("as {a}: 0 rows of other tenants visible, update of {b}'s row affected 0 rows")
            } else {
                leaks.join("; ")
            },
        });
    } else {
        probes.push(Probe {
            name: "wrong_tenant_returns_zero_rows",
            outcome: Outcome::Skipped,
            detail: "not run: needs at least two tenants in the database".to_owned(),
        });
    }
    Ok(probes)
}
