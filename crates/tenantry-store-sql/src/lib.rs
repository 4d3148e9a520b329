//! What the SQL store adapters (SQLite, PostgreSQL) share, so that each writes only its dialect:
//! the flat row records of domain values, the column mapping written once (as macros, since sqlx
//! rows are typed per database), and the mapping of `sqlx` errors onto [`StoreError`].

pub mod config;
pub mod document_store;
pub mod documents;
pub mod identity;
pub mod ledger;
pub mod migrations;
pub mod records;
pub mod registry;
pub mod sql;

use tenantry_app::StoreError;

pub use records::{
    FlagDefinitionColumns, TenantRecord, TierRecord, flag_definition_from_columns, flag_from_columns,
    rollout_from_column, type_mismatch,
};

/// Maps a `sqlx` error onto the port's error, with `what` as context for the log.
pub fn store_error(e: sqlx::Error, what: &'static str) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(anyhow::Error::new(e).context(what))
        }
        sqlx::Error::Database(db) if db.is_check_violation() => {
            StoreError::ConstraintViolated(format!("the store refused the values: {}", db.message()))
        }
        // PostgreSQL 22P05 / 22021: text PostgreSQL cannot store (a NUL character, invalid encoding)
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22P05" | "22021")) => {
            StoreError::ConstraintViolated(format!("the store refused a text value: {}", db.message()))
        }
        // PostgreSQL 57014: the statement timeout fired
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
            StoreError::Unavailable(anyhow::anyhow!("statement timed out: {}", db.message()).context(what))
        }
        // PostgreSQL class 08 (connection exception), 57P01-57P03 (the server is shutting down,
        // crashed or not yet accepting), 53300 (too many connections): the server, not the request
        sqlx::Error::Database(db)
            if db
                .code()
                .as_deref()
                .is_some_and(|c| c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300")) =>
        {
            StoreError::Unavailable(anyhow::anyhow!("the database is unavailable: {}", db.message()).context(what))
        }
        other => StoreError::Unexpected(anyhow::Error::new(other).context(what)),
    }
}

/// Seals `record` as entry `seq` after the entry whose hash is `prev_hex`: its chain hash and,
/// with a signer, its signature.
pub fn seal(
    record: &tenantry_app::AuditRecord,
    seq: i64,
    prev_hex: &str,
    signer: Option<&dyn tenantry_app::EntrySigner>,
) -> Result<tenantry_app::ChainSeal, StoreError> {
    use tenantry_domain::audit::{entry_hash, entry_message, from_hex, to_hex};
    let prev = from_hex::<32>(prev_hex)
        .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("the stored audit chain head is not a hash")))?;
    let hash = entry_hash(&prev, &record.chain_fields(seq));
    Ok(tenantry_app::ChainSeal {
        prev_hash: prev_hex.to_owned(),
        hash: to_hex(&hash),
        key_id: signer.map(|s| s.key_id().to_owned()),
        signature: signer.map(|s| s.sign(&entry_message(&hash))),
    })
}

/// `store_error`, except that a unique violation means `already` exists.
pub fn insert_error(e: sqlx::Error, already: impl FnOnce() -> String, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::AlreadyExists(already()),
        _ => store_error(e, what),
    }
}

/// Binds the health-class boundaries and names, from the domain, to a statistics query whose
/// parameters are: 1 healthy minimum, 2 warning minimum, 3..5 the class names (healthy, warning,
/// critical). So the SQL never restates the thresholds that `HealthClass::of` owns.
pub fn health_class_query<'q, DB>(
    query: sqlx::query::QueryAs<'q, DB, (String, i64), <DB as sqlx::Database>::Arguments>,
) -> sqlx::query::QueryAs<'q, DB, (String, i64), <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    use tenantry_domain::HealthClass;
    use tenantry_domain::health::{HEALTHY_MIN_SCORE, WARNING_MIN_SCORE};
    query
        .bind(HEALTHY_MIN_SCORE)
        .bind(WARNING_MIN_SCORE)
        .bind(HealthClass::Healthy.as_str())
        .bind(HealthClass::Warning.as_str())
        .bind(HealthClass::Critical.as_str())
}

/// The columns of `audit_log` that [`audit_entry_from_row!`] reads, in table order.
#[macro_export]
macro_rules! audit_columns {
    () => {
        "seq, at, actor_kind, actor_id, tenant_id, operation, before, after, reason, request_id, prev_hash, hash, key_id, signature"
    };
}
