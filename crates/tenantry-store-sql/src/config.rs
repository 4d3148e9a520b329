//! Answer configuration's port ([`config_store!`]), written once for both SQL backends; it
//! expands beside `registry_store!`, whose requirements it shares. A version's number is chosen
//! by the use-case (one above the current); the primary key refuses a second writer of the same
//! number, which the port reports as a version conflict.

use tenantry_app::StoreError;
use tenantry_domain::rag::{ConfigScope, ConfigVersion, RagSettings};
use time::OffsetDateTime;

/// `(scope, scope_id, version, settings, author, reason, created_at)`.
pub type ConfigColumns =
    (String, String, i64, sqlx::types::Json<serde_json::Value>, String, Option<String>, OffsetDateTime);

fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("a stored configuration version is not valid: {err}"))
}

/// The stored form of a layer's scope: `(scope, scope_id)`.
pub fn scope_columns(scope: &ConfigScope) -> (&'static str, String) {
    match scope {
        ConfigScope::Platform => ("platform", String::new()),
        ConfigScope::Tier(t) => ("tier", t.as_str().to_owned()),
        ConfigScope::Tenant(t) => ("tenant", t.as_str().to_owned()),
    }
}

pub fn settings_from_column(value: serde_json::Value) -> Result<RagSettings, StoreError> {
    serde_json::from_value(value).map_err(corrupt)
}

pub fn version_from_columns(
    (scope, id, version, settings, author, reason, created_at): ConfigColumns,
) -> Result<ConfigVersion, StoreError> {
    let scope = match scope.as_str() {
        "platform" => ConfigScope::Platform,
        "tier" => ConfigScope::Tier(tenantry_domain::TierName::parse(&id).map_err(corrupt)?),
        "tenant" => ConfigScope::Tenant(tenantry_domain::TenantId::parse(&id).map_err(corrupt)?),
        other => return Err(corrupt(format!("scope {other:?}"))),
    };
    Ok(ConfigVersion {
        scope,
        version: u32::try_from(version).map_err(corrupt)?,
        settings: settings_from_column(settings.0)?,
        author,
        reason,
        created_at,
    })
}

/// A unique violation on a version's key: another writer took that number.
pub fn config_write_error(e: sqlx::Error, version: u32) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::VersionConflict { current: i64::from(version) }
        }
        _ => crate::store_error(e, "write configuration version"),
    }
}

/// Implements `ConfigStore` for `$store` over database `$db`.
#[macro_export]
macro_rules! config_store {
    ($store:ident, $db:ty) => {
        pub(crate) mod answer_config {
            use super::*;
            use ::sqlx::types::Json;
            use ::tenantry_app::ports::{AuditRecord, ConfigStore, NewConfigVersion};
            use ::tenantry_app::{PlatformScope, StoreError, TenantScope};
            use ::tenantry_domain::TierName;
            use ::tenantry_domain::rag::{ConfigScope, ConfigVersion, RagLayers};
            use $crate::config::{
                ConfigColumns, config_write_error, scope_columns, settings_from_column, version_from_columns,
            };
            use $crate::store_error;

            #[::async_trait::async_trait]
            impl ConfigStore for $store {
                async fn put_default_config(
                    &self,
                    access: &PlatformScope,
                    scope: &ConfigScope,
                    v: &NewConfigVersion,
                    audit: &AuditRecord,
                ) -> Result<u32, StoreError> {
                    let (kind, id) = scope_columns(scope);
                    if kind == "tenant" {
                        return Err(StoreError::Refused("a tenant's layer is written on its own path".to_owned()));
                    }
                    let mut tx = self.platform_tx(access).await?;
                    ::sqlx::query(
                        "insert into rag_config_defaults (scope, scope_id, version, settings, author, reason, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(kind)
                    .bind(&id)
                    .bind(i64::from(v.version))
                    .bind(Json(v.settings.to_json()))
                    .bind(&v.author)
                    .bind(&v.reason)
                    .bind(v.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| config_write_error(e, v.version))?;
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit configuration"))?;
                    Ok(v.version)
                }

                async fn put_tenant_config(
                    &self,
                    scope: &TenantScope,
                    v: &NewConfigVersion,
                    audit: &AuditRecord,
                ) -> Result<u32, StoreError> {
                    let mut tx = self.tenant_tx(scope).await?;
                    ::sqlx::query(
                        "insert into tenant_rag_configs (tenant_id, version, settings, author, reason, created_at)
                         values ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(scope.tenant().as_str())
                    .bind(i64::from(v.version))
                    .bind(Json(v.settings.to_json()))
                    .bind(&v.author)
                    .bind(&v.reason)
                    .bind(v.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| config_write_error(e, v.version))?;
                    self.seal(&mut tx, audit).await?;
                    tx.commit().await.map_err(|e| store_error(e, "commit configuration"))?;
                    Ok(v.version)
                }

                async fn default_config_versions(
                    &self,
                    access: &PlatformScope,
                    scope: &ConfigScope,
                ) -> Result<Vec<ConfigVersion>, StoreError> {
                    let (kind, id) = scope_columns(scope);
                    let mut tx = self.platform_read(access).await?;
                    let rows: Vec<ConfigColumns> = ::sqlx::query_as(
                        "select scope, scope_id, version, settings, author, reason, created_at
                         from rag_config_defaults where scope = $1 and scope_id = $2 order by version",
                    )
                    .bind(kind)
                    .bind(&id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "list configuration versions"))?;
                    $store::end_read(tx).await?;
                    rows.into_iter().map(version_from_columns).collect()
                }

                async fn tenant_config_versions(&self, scope: &TenantScope) -> Result<Vec<ConfigVersion>, StoreError> {
                    let mut tx = self.tenant_read(scope).await?;
                    let rows: Vec<ConfigColumns> = ::sqlx::query_as(
                        "select 'tenant', tenant_id, version, settings, author, reason, created_at
                         from tenant_rag_configs where tenant_id = $1 order by version",
                    )
                    .bind(scope.tenant().as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "list the tenant's configuration versions"))?;
                    $store::end_read(tx).await?;
                    rows.into_iter().map(version_from_columns).collect()
                }

                async fn config_layers(&self, scope: &TenantScope, tier: &TierName) -> Result<RagLayers, StoreError> {
                    let mut tx = self.tenant_read(scope).await?;
                    let rows: Vec<(String, i64, Json<::serde_json::Value>)> = ::sqlx::query_as(
                        "select d.scope, d.version, d.settings from rag_config_defaults d
                         where ((d.scope = 'platform' and d.scope_id = '') or (d.scope = 'tier' and d.scope_id = $1))
                           and d.version = (select max(x.version) from rag_config_defaults x
                                            where x.scope = d.scope and x.scope_id = d.scope_id)
                         union all
                         select 'tenant', t.version, t.settings from tenant_rag_configs t
                         where t.tenant_id = $2
                           and t.version = (select max(y.version) from tenant_rag_configs y where y.tenant_id = $2)",
                    )
                    .bind(tier.as_str())
                    .bind(scope.tenant().as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "read configuration layers"))?;
                    $store::end_read(tx).await?;
                    let mut layers = RagLayers::default();
                    for (kind, version, settings) in rows {
                        let settings = settings_from_column(settings.0)?;
                        match kind.as_str() {
                            "platform" => layers.platform = settings,
                            "tier" => layers.tier = settings,
                            _ => {
                                layers.tenant = settings;
                                layers.tenant_version = u32::try_from(version).unwrap_or(0);
                            }
                        }
                    }
                    Ok(layers)
                }
            }
        }
    };
}
