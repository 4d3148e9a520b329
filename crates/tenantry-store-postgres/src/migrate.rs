//! Migrations (as the schema owner): append-only SQL files, each applied once, under an advisory
//! lock so that replicas starting together do not race; then the application role is created if
//! missing and granted exactly what it needs — and nothing it could use to bypass RLS.

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use tenantry_domain::Tier;
use tenantry_store_sql::TierRecord;
use tenantry_store_sql::migrations::{Applied, Migration, PRE_CHECKSUM_HISTORY, pending};

use crate::config::PgConfig;

/// The schema's history; never edit one that has shipped: add a file.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "baseline", sql: include_str!("../migrations/0001_baseline.sql") },
    Migration {
        version: 2,
        name: "feed_invitations_flag_ownership",
        sql: include_str!("../migrations/0002_feed_invitations_flag_ownership.sql"),
    },
    Migration { version: 3, name: "cost_ledger", sql: include_str!("../migrations/0003_cost_ledger.sql") },
    Migration { version: 4, name: "answer_config", sql: include_str!("../migrations/0004_answer_config.sql") },
];

/// Arbitrary but fixed key for `pg_advisory_lock`.
const MIGRATION_LOCK: i64 = 0x7465_6e61_6e74;

pub async fn migrate(config: &PgConfig) -> anyhow::Result<()> {
    let role = config.checked_role()?.to_owned();
    let options: PgConnectOptions = config.owner_url.parse().context("parse DATABASE_URL")?;
    let mut conn = PgConnection::connect_with(&options).await.context("connect to PostgreSQL as the schema owner")?;
    sqlx::query("select pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut conn).await?;
    let result = apply(&mut conn, &role, config.app_password.as_deref()).await;
    let _ = sqlx::query("select pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut conn).await;
    result
}

async fn apply(conn: &mut PgConnection, role: &str, password: Option<&str>) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "create table if not exists schema_migrations (version bigint primary key, name text not null,
             checksum text not null, applied_at timestamptz not null default now())",
    )
    .execute(&mut *conn)
    .await
    .context("create schema_migrations")?;
    let applied: Vec<Applied> =
        sqlx::query_as::<_, (i64, String, String)>("select version, name, checksum from schema_migrations")
            .fetch_all(&mut *conn)
            .await
            .context(PRE_CHECKSUM_HISTORY)?
            .into_iter()
            .map(|(version, name, checksum)| Applied { version, name, checksum })
            .collect();
    // refused as a whole before anything runs; the advisory lock keeps the history still meanwhile
    for m in pending(MIGRATIONS, &applied)? {
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("apply migration {} {}", m.version, m.name))?;
        sqlx::query("insert into schema_migrations (version, name, checksum) values ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(m.checksum())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }

    let n_tiers: i64 = sqlx::query_scalar("select count(*) from tiers").fetch_one(&mut *conn).await?;
    if n_tiers == 0 {
        let mut tx = conn.begin().await?;
        for tier in Tier::builtin_catalog() {
            crate::shared::insert_tier_row(&mut tx, &TierRecord::from(&tier)).await.map_err(anyhow::Error::new)?;
        }
        tx.commit().await?;
    }

    // The role is cluster-wide; another database's migration may be creating it right now.
    let create_role = format!(
        "do $$ begin
             if not exists (select from pg_roles where rolname = '{role}') then
                 create role {role} login nosuperuser nobypassrls nocreatedb nocreaterole;
             end if;
         exception when duplicate_object or unique_violation then null;
         end $$"
    );
    // `role` passed `checked_role`: a plain lowercase identifier, safe to splice.
    sqlx::raw_sql(AssertSqlSafe(create_role)).execute(&mut *conn).await.context("create the application role")?;
    if let Some(password) = password {
        let stmt: String = sqlx::query_scalar("select format('alter role %I password %L', $1::text, $2::text)")
            .bind(role)
            .bind(password)
            .fetch_one(&mut *conn)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(stmt)).execute(&mut *conn).await.context("set the application role's password")?;
    }
    let grants = format!(
        "grant usage on schema public to {role};
         grant select, insert on tiers to {role};
         grant select, insert, update, delete on flag_defaults to {role};
         grant select, insert, update on tenants to {role};
         grant select, insert, update, delete on tenant_flags to {role};
         grant select, insert on audit_log to {role};
         grant usage on sequence audit_log_seq_seq to {role};
         grant select, insert on users to {role};
         grant select, insert, update, delete on memberships to {role};
         grant select, insert, update on api_keys to {role};
         grant select, update on audit_head to {role};
         grant select, update on invalidation_head to {role};
         grant select, insert, delete on invalidation_feed to {role};
         grant select, insert, update, delete on replicas to {role};
         grant select, insert, update, delete on invitations to {role};
         grant select, insert, update, delete on tenant_flag_definitions to {role};
         grant select, insert, delete on orphan_objects to {role};
         grant select, insert, delete on usage_events to {role};
         grant select, insert, update on usage_daily to {role};
         grant select, insert, update on prices, fixed_costs, bills to {role};
         grant delete on fixed_costs to {role};
         grant select, insert on reconciliations, budget_alerts to {role};
         grant select, insert on rag_config_defaults, tenant_rag_configs to {role};
         grant usage on sequence reconciliations_id_seq to {role};
         grant select, insert, update on flag_definitions to {role};
         grant select, insert on audit_checkpoints to {role};
         grant usage on sequence audit_checkpoints_id_seq to {role};
         grant select on vector_indexes to {role};
         grant select, insert on tenant_placements to {role};
         grant select, insert, delete on documents to {role};
         grant select, insert, delete on chunks to {role};
         grant select, insert, update on tenant_usage to {role};
         grant execute on function tenantry_provision_index(text, text, bigint, integer) to {role};
         revoke update on tiers, tenant_placements, documents, chunks from {role};"
    );
    sqlx::raw_sql(AssertSqlSafe(grants)).execute(&mut *conn).await.context("grant the application role")?;
    // partitions provisioned before the app role lost UPDATE on chunks carry their own grant
    let partitions: Vec<String> =
        sqlx::query_scalar("select partition from vector_indexes").fetch_all(&mut *conn).await?;
    for partition in
        partitions.iter().filter(|p| p.starts_with("chunks_i") && p[8..].chars().all(|c| c.is_ascii_digit()))
    {
        sqlx::raw_sql(AssertSqlSafe(format!("revoke update on {partition} from {role}")))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("revoke update on {partition}"))?;
    }
    Ok(())
}
