//! The embedded store: SQLite in a file under the data directory. The default backend, so that
//! `tenantry` works on a bare machine; held to the same contract suite as PostgreSQL.
//!
//! SQLite has no row-level security: isolation here is the application layer's (every query
//! filters by the scope's tenant). PostgreSQL adds RLS underneath the same queries.

mod documents;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Sqlite, Transaction};

use tenantry_app::ports::{
    ApiKey, AuditEntry, AuditFilter, AuditLog, AuditRecord, Checkpoint, EntrySigner, FlagRow, FlagStore, IdentityStore,
    PoolStats, Statistics, Store, TenantFilter, TenantStore, TierStore,
};
use tenantry_app::{PlatformScope, StoreError, TenantScope};
use tenantry_domain::{
    FlagDefinition, FlagKey, FlagKind, FlagMeta, FlagRule, FlagScope, FlagSet, KeyId, Membership, Role, Tenant, Tier,
    TierName, User, UserId,
};
use tenantry_store_sql::identity::{
    KeyColumns, MembershipColumns, UserColumns, key_from_columns, membership_from_columns, reference_error,
    user_from_columns,
};
use tenantry_store_sql::migrations::{Applied, Migration, PRE_CHECKSUM_HISTORY, pending};
use tenantry_store_sql::{
    FlagDefinitionColumns, TenantRecord, TierRecord, audit_columns, flag_definition_columns,
    flag_definition_from_columns, flag_from_columns, health_class_query, insert_error, rollout_from_column,
    store_error, tenant_columns, type_mismatch,
};
use tenantry_store_sql::{key_columns, membership_columns, user_columns};

/// Embedded migrations, applied in order; history (never edit one that has shipped: add a file).
const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "baseline", sql: include_str!("../migrations/0001_baseline.sql") }];

pub const DB_FILE: &str = "tenantry.db";

/// Applies what [`pending`] says is missing and seeds an empty tier catalog, inside the caller's
/// transaction; refuses a history that does not match this binary's files.
async fn apply_migrations(tx: &mut Transaction<'_, Sqlite>) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "create table if not exists schema_migrations (version integer primary key, name text not null,
             checksum text not null, applied_at text not null)",
    )
    .execute(&mut **tx)
    .await
    .context("create schema_migrations")?;
    let applied: Vec<Applied> =
        sqlx::query_as::<_, (i64, String, String)>("select version, name, checksum from schema_migrations")
            .fetch_all(&mut **tx)
            .await
            .context(PRE_CHECKSUM_HISTORY)?
            .into_iter()
            .map(|(version, name, checksum)| Applied { version, name, checksum })
            .collect();
    for m in pending(MIGRATIONS, &applied)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut **tx)
            .await
            .with_context(|| format!("apply migration {} {}", m.version, m.name))?;
        sqlx::query(
            "insert into schema_migrations (version, name, checksum, applied_at) values (?, ?, ?, datetime('now'))",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .execute(&mut **tx)
        .await
        .context("record migration")?;
    }
    // Seed the built-in tier catalog into an empty store (operators may change it afterwards).
    let n_tiers: i64 = sqlx::query_scalar("select count(*) from tiers").fetch_one(&mut **tx).await?;
    if n_tiers == 0 {
        for tier in Tier::builtin_catalog() {
            insert_tier_row(tx, &TierRecord::from(&tier)).await.map_err(anyhow::Error::new)?;
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    signer: Option<Arc<dyn EntrySigner>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/tenantry.db` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("create data directory {}", data_dir.display()))?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options, 4).await
    }

    /// An in-memory store (one connection, so every query sees the same database). For tests.
    pub async fn in_memory() -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        Self::connect(options, 1).await
    }

    async fn connect(options: SqliteConnectOptions, max_connections: u32) -> anyhow::Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // a connection to a local file does not go away behind our back: no ping per acquire
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .context("open sqlite database")?;
        let store = Self { pool, signer: None };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        // BEGIN IMMEDIATE takes the write lock at once: two processes opening one data directory
        // together apply each migration (and seed the catalog) once; the second waits, then
        // finds it done
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.context("lock the database to migrate")?;
        apply_migrations(&mut tx).await?;
        tx.commit().await.context("commit migrations")?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Signs every audit entry this store appends from now on.
    pub fn with_signer(mut self, signer: Arc<dyn EntrySigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    async fn seal(&self, tx: &mut Transaction<'_, Sqlite>, record: &AuditRecord) -> Result<(), StoreError> {
        append_audit(tx, record, self.signer.as_deref()).await
    }
}

async fn insert_tier_row(tx: &mut Transaction<'_, Sqlite>, r: &TierRecord) -> Result<(), StoreError> {
    let insert = sqlx::query(
        "insert into tiers (name, rank, description, max_users, max_documents, max_queries_per_day, max_storage_gb,
             rate_limit_per_minute, sla_target, support_level, isolation, retention_days)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    tenantry_store_sql::bind_tier_record!(insert, r)
        .execute(&mut **tx)
        .await
        .map_err(|e| insert_error(e, || format!("tier {}", r.name), "insert tier"))?;
    Ok(())
}

/// Appends `a` as the next entry of the chain. Updating `audit_head` first takes SQLite's write
/// lock, so concurrent appends are serialized and the chain stays linear.
async fn append_audit(
    tx: &mut Transaction<'_, Sqlite>,
    a: &AuditRecord,
    signer: Option<&dyn EntrySigner>,
) -> Result<(), StoreError> {
    let (seq, prev): (i64, String) =
        sqlx::query_as("update audit_head set seq = seq + 1 where id = 1 returning seq, hash")
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| store_error(e, "advance audit chain head"))?;
    let seal = tenantry_store_sql::seal(a, seq, &prev, signer)?;
    sqlx::query(concat!(
        "insert into audit_log (",
        audit_columns!(),
        ") values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(seq)
    .bind(a.at)
    .bind(a.actor.kind.as_str())
    .bind(&a.actor.id)
    .bind(a.tenant.as_ref().map(|t| t.as_str()))
    .bind(&a.operation)
    .bind(a.before.as_ref().map(Json))
    .bind(a.after.as_ref().map(Json))
    .bind(&a.reason)
    .bind(&a.request_id)
    .bind(&seal.prev_hash)
    .bind(&seal.hash)
    .bind(&seal.key_id)
    .bind(&seal.signature)
    .execute(&mut **tx)
    .await
    .map_err(|e| store_error(e, "append audit entry"))?;
    sqlx::query("update audit_head set hash = ? where id = 1")
        .bind(&seal.hash)
        .execute(&mut **tx)
        .await
        .map_err(|e| store_error(e, "record audit chain head"))?;
    Ok(())
}

fn tenant_from_row(row: &SqliteRow) -> Result<Tenant, StoreError> {
    let record = tenantry_store_sql::tenant_record_from_row!(row, |e| store_error(e, "read tenant row"));
    Tenant::try_from(record)
}

fn tier_from_row(row: &SqliteRow) -> Result<Tier, StoreError> {
    Tier::try_from(tenantry_store_sql::tier_record_from_row!(row, |e| store_error(e, "read tier row")))
}

#[async_trait]
impl TierStore for SqliteStore {
    async fn list_tiers(&self) -> Result<Vec<Tier>, StoreError> {
        let rows = sqlx::query("select * from tiers order by rank, name")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error(e, "list tiers"))?;
        rows.iter().map(tier_from_row).collect()
    }

    async fn get_tier(&self, name: &TierName) -> Result<Option<Tier>, StoreError> {
        let row = sqlx::query("select * from tiers where name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error(e, "get tier"))?;
        row.as_ref().map(tier_from_row).transpose()
    }

    async fn insert_tier(&self, _access: &PlatformScope, tier: &Tier, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        insert_tier_row(&mut tx, &TierRecord::from(tier)).await?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit tier"))
    }
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn insert_tenant(
        &self,
        _access: &PlatformScope,
        tenant: &Tenant,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let r = TenantRecord::from(tenant);
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        let insert = sqlx::query(concat!(
            "insert into tenants (",
            tenant_columns!(),
            ") values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        tenantry_store_sql::bind_tenant_record!(insert, &r)
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, || format!("tenant {}", r.tenant_id), "insert tenant"))?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit tenant"))
    }

    async fn get_tenant(&self, scope: &TenantScope) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(concat!("select ", tenant_columns!(), " from tenants where tenant_id = ?"))
            .bind(scope.tenant().as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error(e, "get tenant"))?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn list_tenants(&self, _access: &PlatformScope, filter: &TenantFilter) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(concat!(
            "select ",
            tenant_columns!(),
            " from tenants
             where (?1 is null or status = ?1) and (?2 is null or tier = ?2) and (?3 is null or tenant_id > ?3)
             order by tenant_id limit ?4"
        ))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.tier.as_ref().map(|t| t.as_str()))
        .bind(filter.after.as_ref().map(|t| t.as_str()))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list tenants"))?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn update_tenant(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        expected_version: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        if tenant.id != *scope.tenant() {
            // a scope never writes another tenant's row
            return Err(StoreError::NotFound);
        }
        let r = TenantRecord::from(tenant);
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        let sql = "update tenants set tenant_id = ?, name = ?, billing_email = ?, owner = ?, tier = ?, max_users = ?,
            max_documents = ?, max_queries_per_day = ?, max_storage_gb = ?, rate_limit_per_minute = ?, sla_target = ?,
            support_level = ?, explicit_limits = ?, cost_center = ?, monthly_budget_minor = ?, budget_currency = ?,
            status = ?, status_reason = ?, status_changed_at = ?, retention_until = ?, health_score = ?,
            health_updated_at = ?, compliance_tags = ?, data_region = ?, metadata = ?, version = ?, created_at = ?,
            updated_at = ?
            where tenant_id = ? and version = ?";
        let result = tenantry_store_sql::bind_tenant_record!(sqlx::query(sql), &r)
            .bind(scope.tenant().as_str())
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "update tenant"))?;
        if result.rows_affected() == 0 {
            let current: Option<i64> = sqlx::query_scalar("select version from tenants where tenant_id = ?")
                .bind(scope.tenant().as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| store_error(e, "read tenant version"))?;
            return Err(match current {
                Some(current) => StoreError::VersionConflict { current },
                None => StoreError::NotFound,
            });
        }
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit tenant update"))
    }

    async fn statistics(&self, _access: &PlatformScope) -> Result<Statistics, StoreError> {
        let pairs = |sql: &'static str| sqlx::query_as::<_, (String, i64)>(sql);
        let by_status = pairs("select status, count(*) from tenants group by status order by status")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error(e, "statistics"))?;
        let by_tier = pairs("select tier, count(*) from tenants group by tier order by tier")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error(e, "statistics"))?;
        let by_health = health_class_query(pairs(
            "select case when health_score is null then 'unknown' when health_score >= ?1 then ?3
                         when health_score >= ?2 then ?4 else ?5 end as class, count(*)
             from tenants group by class order by class",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "statistics"))?;
        let total = by_status.iter().map(|(_, n)| n).sum();
        Ok(Statistics { total, by_status, by_tier, by_health })
    }
}

/// Defines `key` if new (typed by `kind`) or bumps its version, applying `meta`; refuses a type change.
async fn define_flag(
    tx: &mut Transaction<'_, Sqlite>,
    key: &FlagKey,
    kind: FlagKind,
    meta: &FlagMeta,
    at: time::OffsetDateTime,
) -> Result<(), StoreError> {
    let version: Option<i64> = sqlx::query_scalar(
        "insert into flag_definitions (flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
         values (?1, ?2, coalesce(?3, ''), ?4, ?5, ?6, 1, ?5)
         on conflict (flag_key) do update set version = flag_definitions.version + 1,
             description = coalesce(?3, flag_definitions.description), owner = coalesce(?4, flag_definitions.owner),
             expires_at = case when ?7 then ?6 else flag_definitions.expires_at end, updated_at = ?5
         where flag_definitions.kind = excluded.kind
         returning version",
    )
    .bind(key.as_str())
    .bind(kind.as_str())
    .bind(meta.description.as_deref())
    .bind(meta.owner.as_deref())
    .bind(at)
    .bind(meta.expires_at.flatten())
    .bind(meta.expires_at.is_some())
    .fetch_optional(&mut **tx)
    .await
    .map_err(|e| store_error(e, "define flag"))?;
    if version.is_none() {
        let stored: Option<String> = sqlx::query_scalar("select kind from flag_definitions where flag_key = ?")
            .bind(key.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| store_error(e, "read flag kind"))?;
        return Err(type_mismatch(key, stored, kind));
    }
    Ok(())
}

async fn bump_flag(
    tx: &mut Transaction<'_, Sqlite>,
    key: &FlagKey,
    at: time::OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("update flag_definitions set version = version + 1, updated_at = ? where flag_key = ?")
        .bind(at)
        .bind(key.as_str())
        .execute(&mut **tx)
        .await
        .map_err(|e| store_error(e, "bump flag version"))?;
    Ok(())
}

impl SqliteStore {
    async fn put_flag(
        &self,
        scope: &FlagScope,
        key: &FlagKey,
        rule: &FlagRule,
        meta: &FlagMeta,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        define_flag(&mut tx, key, FlagKind::of(&rule.value), meta, audit.at).await?;
        sqlx::query(
            "insert into flag_values (scope, scope_id, flag_key, value, rollout_percent, updated_at) values (?, ?, ?, ?, ?, ?)
             on conflict (scope, scope_id, flag_key) do update set value = excluded.value,
                 rollout_percent = excluded.rollout_percent, updated_at = excluded.updated_at",
        )
        .bind(scope.level().as_str())
        .bind(scope.scope_id())
        .bind(key.as_str())
        .bind(Json(rule.value.to_json()))
        .bind(rule.rollout.map(i64::from))
        .bind(audit.at)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(e, "set flag"))?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit flag"))
    }

    async fn remove_flag(&self, scope: &FlagScope, key: &FlagKey, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        let result = sqlx::query("delete from flag_values where scope = ? and scope_id = ? and flag_key = ?")
            .bind(scope.level().as_str())
            .bind(scope.scope_id())
            .bind(key.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "delete flag"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        bump_flag(&mut tx, key, audit.at).await?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit flag delete"))
    }
}

#[async_trait]
impl FlagStore for SqliteStore {
    async fn set_flag(
        &self,
        _access: &PlatformScope,
        scope: &FlagScope,
        key: &FlagKey,
        rule: &FlagRule,
        meta: &FlagMeta,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.put_flag(scope, key, rule, meta, audit).await
    }

    async fn delete_flag(
        &self,
        _access: &PlatformScope,
        scope: &FlagScope,
        key: &FlagKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.remove_flag(scope, key, audit).await
    }

    async fn set_tenant_flag(
        &self,
        scope: &TenantScope,
        key: &FlagKey,
        rule: &FlagRule,
        meta: &FlagMeta,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.put_flag(&FlagScope::Tenant(scope.tenant().clone()), key, rule, meta, audit).await
    }

    async fn delete_tenant_flag(
        &self,
        scope: &TenantScope,
        key: &FlagKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.remove_flag(&FlagScope::Tenant(scope.tenant().clone()), key, audit).await
    }

    async fn flags_for_tenant(&self, scope: &TenantScope) -> Result<FlagSet, StoreError> {
        type Row = (String, String, String, Json<serde_json::Value>, Option<i64>, Option<i64>, Option<bool>);
        let rows = sqlx::query_as::<_, Row>(
            "select v.scope, v.scope_id, v.flag_key, v.value, v.rollout_percent, d.version, d.enabled
             from flag_values v left join flag_definitions d on d.flag_key = v.flag_key
             where v.scope in ('global', 'tier') or (v.scope = 'tenant' and v.scope_id = ?)",
        )
        .bind(scope.tenant().as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "load flags"))?;
        let mut set = FlagSet::new();
        for (s, id, key, value, rollout, version, enabled) in rows {
            let (scope, key, value) = flag_from_columns(&s, &id, &key, value.0)?;
            set.set_version(key.clone(), version.unwrap_or(0));
            if enabled == Some(false) {
                set.disable(key.clone());
            }
            set.set_rule(scope, key, FlagRule { value, rollout: rollout_from_column(rollout)? });
        }
        Ok(set)
    }

    async fn list_flags(&self, _access: &PlatformScope) -> Result<Vec<FlagRow>, StoreError> {
        let rows = sqlx::query_as::<
            _,
            (String, String, String, Json<serde_json::Value>, Option<i64>, time::OffsetDateTime),
        >(
            "select scope, scope_id, flag_key, value, rollout_percent, updated_at from flag_values order by flag_key,
                 case scope when 'global' then 0 when 'tier' then 1 else 2 end, scope_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list flags"))?;
        rows.into_iter()
            .map(|(s, id, key, value, rollout, updated_at)| {
                let (scope, key, value) = flag_from_columns(&s, &id, &key, value.0)?;
                Ok(FlagRow { scope, key, value, rollout: rollout_from_column(rollout)?, updated_at })
            })
            .collect()
    }

    async fn flag_definitions(&self, _access: &PlatformScope) -> Result<Vec<FlagDefinition>, StoreError> {
        let rows = sqlx::query_as::<_, FlagDefinitionColumns>(concat!(
            "select ",
            flag_definition_columns!(),
            " from flag_definitions order by flag_key"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list flag definitions"))?;
        rows.into_iter().map(flag_definition_from_columns).collect()
    }

    async fn set_flag_enabled(
        &self,
        _access: &PlatformScope,
        key: &FlagKey,
        enabled: bool,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        let result = sqlx::query(
            "update flag_definitions set enabled = ?, version = version + 1, updated_at = ? where flag_key = ?",
        )
        .bind(enabled)
        .bind(audit.at)
        .bind(key.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(e, "set flag kill switch"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit flag kill switch"))
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, _access: &PlatformScope, record: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        self.seal(&mut tx, record).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit audit entry"))
    }

    async fn append_tenant_audit(&self, scope: &TenantScope, record: &AuditRecord) -> Result<(), StoreError> {
        if record.tenant.as_ref() != Some(scope.tenant()) {
            return Err(StoreError::ConstraintViolated("an audit entry must name the scope's tenant".to_owned()));
        }
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        self.seal(&mut tx, record).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit audit entry"))
    }

    async fn recent_audit(&self, _access: &PlatformScope, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(concat!(
            "select * from (select ",
            audit_columns!(),
            " from audit_log order by seq desc limit ?) order by seq"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "read audit"))?;
        audit_entries(&rows)
    }

    async fn tenant_audit(&self, scope: &TenantScope, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(concat!(
            "select ",
            audit_columns!(),
            " from audit_log where tenant_id = ? and seq > ? and (? is null or at >= ?) order by seq limit ?"
        ))
        .bind(scope.tenant().as_str())
        .bind(filter.after_seq)
        .bind(filter.since)
        .bind(filter.since)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "read audit"))?;
        audit_entries(&rows)
    }

    async fn audit_entries(
        &self,
        _access: &PlatformScope,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(concat!(
            "select ",
            audit_columns!(),
            " from audit_log where seq > ? and (? is null or tenant_id = ?) and (? is null or at >= ?)
             order by seq limit ?"
        ))
        .bind(filter.after_seq)
        .bind(filter.tenant.as_ref().map(|t| t.as_str()))
        .bind(filter.tenant.as_ref().map(|t| t.as_str()))
        .bind(filter.since)
        .bind(filter.since)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "read audit"))?;
        audit_entries(&rows)
    }

    async fn insert_checkpoint(&self, _access: &PlatformScope, cp: &Checkpoint) -> Result<(), StoreError> {
        sqlx::query("insert into audit_checkpoints (seq, head_hash, at, key_id, signature) values (?, ?, ?, ?, ?)")
            .bind(cp.seq)
            .bind(&cp.head_hash)
            .bind(cp.at)
            .bind(&cp.key_id)
            .bind(&cp.signature)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error(e, "insert checkpoint"))?;
        Ok(())
    }

    async fn checkpoints(&self, _access: &PlatformScope) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, time::OffsetDateTime, String, String)>(
            "select seq, head_hash, at, key_id, signature from audit_checkpoints order by id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "read checkpoints"))?;
        Ok(rows
            .into_iter()
            .map(|(seq, head_hash, at, key_id, signature)| Checkpoint { seq, head_hash, at, key_id, signature })
            .collect())
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn insert_user(&self, _access: &PlatformScope, user: &User, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        sqlx::query(concat!("insert into users (", user_columns!(), ") values (?, ?, ?)"))
            .bind(user.id.as_str())
            .bind(&user.display_name)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, || format!("user {}", user.id), "insert user"))?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit user"))
    }

    async fn get_user(&self, _access: &PlatformScope, id: &UserId) -> Result<Option<User>, StoreError> {
        let row =
            sqlx::query_as::<_, UserColumns>(concat!("select ", user_columns!(), " from users where user_id = ?"))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| store_error(e, "get user"))?;
        row.map(user_from_columns).transpose()
    }

    async fn list_users(&self, _access: &PlatformScope) -> Result<Vec<User>, StoreError> {
        let rows =
            sqlx::query_as::<_, UserColumns>(concat!("select ", user_columns!(), " from users order by user_id"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| store_error(e, "list users"))?;
        rows.into_iter().map(user_from_columns).collect()
    }

    async fn put_membership(
        &self,
        scope: &TenantScope,
        user: &UserId,
        role: Role,
        at: time::OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        sqlx::query(concat!(
            "insert into memberships (",
            membership_columns!(),
            ") values (?, ?, ?, ?) on conflict (tenant_id, user_id) do update set role = excluded.role"
        ))
        .bind(scope.tenant().as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|e| reference_error(e, "put membership"))?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit membership"))
    }

    async fn delete_membership(
        &self,
        scope: &TenantScope,
        user: &UserId,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        let result = sqlx::query("delete from memberships where tenant_id = ? and user_id = ?")
            .bind(scope.tenant().as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "delete membership"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit membership removal"))
    }

    async fn list_members(&self, scope: &TenantScope) -> Result<Vec<Membership>, StoreError> {
        let rows = sqlx::query_as::<_, MembershipColumns>(concat!(
            "select ",
            membership_columns!(),
            " from memberships where tenant_id = ? order by user_id"
        ))
        .bind(scope.tenant().as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list members"))?;
        rows.into_iter().map(membership_from_columns).collect()
    }

    async fn memberships_of(&self, _access: &PlatformScope, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        let rows = sqlx::query_as::<_, MembershipColumns>(concat!(
            "select ",
            membership_columns!(),
            " from memberships where user_id = ? order by tenant_id"
        ))
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list memberships"))?;
        rows.into_iter().map(membership_from_columns).collect()
    }

    async fn insert_key(&self, _access: &PlatformScope, key: &ApiKey, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        sqlx::query(concat!("insert into api_keys (", key_columns!(), ") values (?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(key.id.as_str())
            .bind(&key.digest)
            .bind(key.owner.kind())
            .bind(key.owner.id().as_str())
            .bind(&key.name)
            .bind(key.created_at)
            .bind(key.expires_at)
            .bind(key.revoked_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, || format!("API key {}", key.id), "insert key"))?;
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit key"))
    }

    async fn find_key_by_digest(&self, _access: &PlatformScope, digest: &str) -> Result<Option<ApiKey>, StoreError> {
        let row =
            sqlx::query_as::<_, KeyColumns>(concat!("select ", key_columns!(), " from api_keys where digest = ?"))
                .bind(digest)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| store_error(e, "find key"))?;
        row.map(key_from_columns).transpose()
    }

    async fn list_keys(&self, _access: &PlatformScope, owner: Option<&UserId>) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query_as::<_, KeyColumns>(concat!(
            "select ",
            key_columns!(),
            " from api_keys where (?1 is null or owner_id = ?1) order by created_at desc, key_id"
        ))
        .bind(owner.map(UserId::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(e, "list keys"))?;
        rows.into_iter().map(key_from_columns).collect()
    }

    async fn revoke_key(
        &self,
        _access: &PlatformScope,
        id: &KeyId,
        at: time::OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
        let result = sqlx::query("update api_keys set revoked_at = coalesce(revoked_at, ?) where key_id = ?")
            .bind(at)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, "revoke key"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.seal(&mut tx, audit).await?;
        tx.commit().await.map_err(|e| store_error(e, "commit key revocation"))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await.map_err(|e| store_error(e, "ping"))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}

/// Audit entries from rows of `audit_log` (selected with `audit_columns!`).
fn audit_entries(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<AuditEntry>, StoreError> {
    rows.iter()
        .map(|row| Ok(tenantry_store_sql::audit_entry_from_row!(row, |e| store_error(e, "read audit row"))))
        .collect()
}
