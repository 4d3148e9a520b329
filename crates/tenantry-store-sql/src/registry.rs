//! The registry's ports — tiers, tenants, flags, the audit log, users, memberships and keys —
//! written once for both SQL backends. [`registry_store!`] expands, inside the store's crate, into
//! a module `shared` that implements `TierStore`, `TenantStore`, `FlagStore`, `AuditLog` and
//! `IdentityStore` for the store type, plus the audit chain's `append_audit` and the tier
//! catalog's `insert_tier_row`. What stays per backend is how a transaction starts (on PostgreSQL
//! with the RLS context) and how a read is made.
//!
//! A macro rather than a function generic over `sqlx::Database`: sqlx's bounds (an executor for
//! every `&mut Connection`, `Encode`/`Decode`/`Type` for every bound and read type) are not
//! implied by a trait, so a generic version would restate a dozen where-clauses on every function.
//! Expanded, each backend gets concrete types and the compiler checks every statement's types as
//! if written by hand; the source is written once. The SQL is the common dialect: `$n`
//! placeholders (sqlx binds them by number on SQLite too), no casts with `::`.
//!
//! The store type must have, in the module that invokes the macro:
//! - fields `pool` (the sqlx pool) and `signer: Option<Arc<dyn EntrySigner>>`;
//! - `async fn tenant_tx(&self, &TenantScope) -> Result<Transaction<'static, DB>, StoreError>` and
//!   `async fn platform_tx(&self, &PlatformScope) -> …`: a write transaction on the tenant's or
//!   the platform's path;
//! - `async fn tenant_read(&self, &TenantScope)`, `async fn platform_read(&self, &PlatformScope)`
//!   returning something that dereferences to the connection, and `async fn end_read(that)`: a
//!   read on that path (on PostgreSQL a transaction with the context, on SQLite a pooled
//!   connection);
//! - `async fn lock_members(&mut Transaction, &TenantId) -> Result<(), StoreError>`: serialize
//!   additions of members to one tenant until the transaction ends (PostgreSQL: an advisory
//!   lock; SQLite: a no-op, its writes are serialized);
//! - `async fn enter_platform_path(&mut Transaction) -> Result<T, StoreError>` and
//!   `async fn leave_platform_path(&mut Transaction, T)`: switch a transaction to the platform
//!   path for the audit head's two statements and back (PostgreSQL; a no-op on SQLite).

/// Implements the registry's ports for `$store` over database `$db` with rows `$row`; see the
/// module documentation for what `$store` must provide.
#[macro_export]
macro_rules! registry_store {
    ($store:ident, $db:ty, $row:ty) => {
        pub(crate) mod shared {
            use super::*;
            use ::sqlx::types::Json;
            use ::tenantry_app::ports::{
                ApiKey, AuditEntry, AuditFilter, AuditLog, AuditRecord, Checkpoint, EntrySigner, FlagRow, FlagStore,
                IdentityStore, Statistics, TenantFilter, TenantStore, TierStore,
            };
            use ::tenantry_app::{PlatformScope, StoreError, TenantScope};
            use ::tenantry_domain::{
                FlagDefinition, FlagKey, FlagKind, FlagMeta, FlagRule, FlagScope, FlagSet, KeyId, Membership, Role,
                Tenant, Tier, TierName, User, UserId,
            };
            use $crate::identity::{
                KeyColumns, MembershipColumns, UserColumns, key_from_columns, membership_from_columns,
                reference_error, user_from_columns,
            };
            use $crate::{
                FlagDefinitionColumns, TenantRecord, TierRecord, audit_columns, flag_definition_columns,
                flag_definition_from_columns, flag_from_columns, health_class_query, insert_error, key_columns,
                membership_columns, rollout_from_column, store_error, type_mismatch, user_columns,
            };

            impl $store {
                /// Appends `record` to the audit chain inside `tx`.
                pub(crate) async fn seal(
                    &self,
                    tx: &mut ::sqlx::Transaction<'_, $db>,
                    record: &AuditRecord,
                ) -> Result<(), StoreError> {
                    append_audit(tx, record, self.signer.as_deref()).await
                }
            }

        /// Appends `a` as the next entry of the chain. Updating `audit_head` first takes its row lock until
        /// commit, so concurrent appends are serialized, the chain stays linear and sequence numbers have
        /// no gaps (a rolled-back append rolls the head back too).
        pub(crate) async fn append_audit(
            tx: &mut ::sqlx::Transaction<'_, $db>,
            a: &AuditRecord,
            signer: Option<&dyn EntrySigner>,
        ) -> Result<(), StoreError> {
            // the head is the platform's: it is written on the platform path only, also when a
            // tenant's transaction seals its own entry (PostgreSQL: RLS on audit_head)
            let path = $store::enter_platform_path(tx).await?;
            let (seq, prev): (i64, String) =
                sqlx::query_as("update audit_head set seq = seq + 1 where id = 1 returning seq, hash")
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(|e| store_error(e, "advance audit chain head"))?;
            let seal = tenantry_store_sql::seal(a, seq, &prev, signer)?;
            sqlx::query(concat!(
                "insert into audit_log (",
                audit_columns!(),
                ") values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
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
            sqlx::query("update audit_head set hash = $1 where id = 1")
                .bind(&seal.hash)
                .execute(&mut **tx)
                .await
                .map_err(|e| store_error(e, "record audit chain head"))?;
            $store::leave_platform_path(tx, path).await
        }

        /// Makes `user` a member of the scope's tenant with `role` (or changes the role); `NotFound`
        /// if the user does not exist.
        /// Adds `user` with `role`, or changes their role; a new member only while the tenant has
        /// fewer than `max_members` (one statement, after `lock_members`: exact under concurrency).
        async fn upsert_membership(
            tx: &mut ::sqlx::Transaction<'_, $db>,
            scope: &TenantScope,
            user: &UserId,
            role: Role,
            at: time::OffsetDateTime,
            max_members: i64,
        ) -> Result<(), StoreError> {
            $store::lock_members(tx, scope.tenant()).await?;
            let written = sqlx::query(concat!(
                "insert into memberships (",
                membership_columns!(),
                ") select $1, $2, $3, $4
                   where exists (select 1 from memberships where tenant_id = $1 and user_id = $2)
                      or (select count(*) from memberships where tenant_id = $1) < $5
                 on conflict (tenant_id, user_id) do update set role = excluded.role"
            ))
            .bind(scope.tenant().as_str())
            .bind(user.as_str())
            .bind(role.as_str())
            .bind(at)
            .bind(max_members)
            .execute(&mut **tx)
            .await
            .map_err(|e| reference_error(e, ::tenantry_app::Missing::User(user.clone()), "put membership"))?;
            if written.rows_affected() == 0 {
                let current: i64 = sqlx::query_scalar("select count(*) from memberships where tenant_id = $1")
                    .bind(scope.tenant().as_str())
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(|e| store_error(e, "count members"))?;
                return Err(StoreError::QuotaExceeded(::tenantry_domain::QuotaExceeded {
                    resource: ::tenantry_domain::QuotaResource::Users,
                    limit: max_members,
                    current,
                    requested: 1,
                }));
            }
            Ok(())
        }

        fn tenant_from_row(row: &$row) -> Result<Tenant, StoreError> {
            let record = tenantry_store_sql::tenant_record_from_row!(row, |e| store_error(e, "read tenant row"));
            Tenant::try_from(record)
        }

        fn tier_from_row(row: &$row) -> Result<Tier, StoreError> {
            Tier::try_from(tenantry_store_sql::tier_record_from_row!(row, |e| store_error(e, "read tier row")))
        }

        pub(crate) async fn insert_tier_row(tx: &mut ::sqlx::Transaction<'_, $db>, r: &TierRecord) -> Result<(), StoreError> {
            let insert = sqlx::query($crate::sql::statement(&$crate::sql::INSERT_TIER));
            tenantry_store_sql::bind_tier_record!(insert, r)
                .execute(&mut **tx)
                .await
                .map_err(|e| insert_error(e, || format!("tier {}", r.name), "insert tier"))?;
            Ok(())
        }

        #[::async_trait::async_trait]
        impl TierStore for $store {
            async fn list_tiers(&self) -> Result<Vec<Tier>, StoreError> {
                let rows = sqlx::query($crate::sql::statement(&$crate::sql::SELECT_TIERS))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| store_error(e, "list tiers"))?;
                rows.iter().map(tier_from_row).collect()
            }

            async fn get_tier(&self, name: &TierName) -> Result<Option<Tier>, StoreError> {
                let row = sqlx::query($crate::sql::statement(&$crate::sql::SELECT_TIER))
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| store_error(e, "get tier"))?;
                row.as_ref().map(tier_from_row).transpose()
            }

            async fn insert_tier(&self, access: &PlatformScope, tier: &Tier, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                insert_tier_row(&mut tx, &TierRecord::from(tier)).await?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit tier"))
            }
        }

        #[::async_trait::async_trait]
        impl TenantStore for $store {
            async fn insert_tenant(
                &self,
                access: &PlatformScope,
                tenant: &Tenant,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let r = TenantRecord::from(tenant);
                let mut tx = self.platform_tx(access).await?;
                let insert = sqlx::query($crate::sql::statement(&$crate::sql::INSERT_TENANT));
                tenantry_store_sql::bind_tenant_record!(insert, &r)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| insert_error(e, || format!("tenant {}", r.tenant_id), "insert tenant"))?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit tenant"))
            }

            async fn get_tenant(&self, scope: &TenantScope) -> Result<Option<Tenant>, StoreError> {
                let mut tx = self.tenant_read(scope).await?;
                let row = sqlx::query($crate::sql::statement(&$crate::sql::SELECT_TENANT))
                    .bind(scope.tenant().as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "get tenant"))?;
                $store::end_read(tx).await?;
                row.as_ref().map(tenant_from_row).transpose()
            }

            async fn list_tenants(&self, access: &PlatformScope, filter: &TenantFilter) -> Result<Vec<Tenant>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query($crate::sql::statement(&$crate::sql::LIST_TENANTS))
                .bind(filter.status.map(|s| s.as_str()))
                .bind(filter.tier.as_ref().map(|t| t.as_str()))
                .bind(filter.after.as_ref().map(|t| t.as_str()))
                .bind(i64::from(filter.limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "list tenants"))?;
                $store::end_read(tx).await?;
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
                    // a scope never writes another tenant's row (RLS would refuse it too)
                    return Err(StoreError::NotFound(::tenantry_app::Missing::Tenant(tenant.id.clone())));
                }
                let r = TenantRecord::from(tenant);
                let mut tx = self.tenant_tx(scope).await?;
                let update = sqlx::query($crate::sql::statement(&$crate::sql::UPDATE_TENANT));
                let result = tenantry_store_sql::bind_tenant_record!(update, &r)
                    .bind(scope.tenant().as_str())
                    .bind(expected_version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "update tenant"))?;
                if result.rows_affected() == 0 {
                    let current: Option<i64> = sqlx::query_scalar("select version from tenants where tenant_id = $1")
                        .bind(scope.tenant().as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "read tenant version"))?;
                    return Err(match current {
                        Some(current) => StoreError::VersionConflict { current },
                        None => StoreError::NotFound(::tenantry_app::Missing::Tenant(scope.tenant().clone())),
                    });
                }
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit tenant update"))
            }

            async fn statistics(&self, access: &PlatformScope) -> Result<Statistics, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let pairs = |sql: &'static str| sqlx::query_as::<_, (String, i64)>(sql);
                let by_status = pairs("select status, count(*) from tenants group by status order by status")
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "statistics"))?;
                let by_tier = pairs("select tier, count(*) from tenants group by tier order by tier")
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "statistics"))?;
                let by_health = health_class_query(pairs(
                    "select case when health_score is null then 'unknown' when health_score >= $1 then $3
                                 when health_score >= $2 then $4 else $5 end as class, count(*)
                     from tenants group by class order by class",
                ))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "statistics"))?;
                $store::end_read(tx).await?;
                let total = by_status.iter().map(|(_, n)| n).sum();
                Ok(Statistics { total, by_status, by_tier, by_health })
            }
        }

        /// Defines `key` if new (typed by `kind`) or bumps its version, applying `meta`; refuses a type change.
        async fn define_flag(
            tx: &mut ::sqlx::Transaction<'_, $db>,
            key: &FlagKey,
            kind: FlagKind,
            meta: &FlagMeta,
            at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            let version: Option<i64> = sqlx::query_scalar(
                "insert into flag_definitions (flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
                 values ($1, $2, coalesce($3, ''), $4, $5, $6, 1, $5)
                 on conflict (flag_key) do update set version = flag_definitions.version + 1,
                     description = coalesce($3, flag_definitions.description), owner = coalesce($4, flag_definitions.owner),
                     expires_at = case when $7 then $6 else flag_definitions.expires_at end, updated_at = $5
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
                let stored: Option<String> = sqlx::query_scalar("select kind from flag_definitions where flag_key = $1")
                    .bind(key.as_str())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| store_error(e, "read flag kind"))?;
                return Err(type_mismatch(key, stored, kind));
            }
            Ok(())
        }

        /// Defines (or re-versions) a key in the tenant's own namespace, refusing another type.
        async fn define_tenant_flag(
            tx: &mut ::sqlx::Transaction<'_, $db>,
            tenant: &str,
            key: &FlagKey,
            kind: FlagKind,
            meta: &FlagMeta,
            at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            let version: Option<i64> = sqlx::query_scalar(
                "insert into tenant_flag_definitions
                     (tenant_id, flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
                 values ($1, $2, $3, coalesce($4, ''), $5, $6, $7, 1, $6)
                 on conflict (tenant_id, flag_key) do update set version = tenant_flag_definitions.version + 1,
                     description = coalesce($4, tenant_flag_definitions.description),
                     owner = coalesce($5, tenant_flag_definitions.owner),
                     expires_at = case when $8 then $7 else tenant_flag_definitions.expires_at end, updated_at = $6
                 where tenant_flag_definitions.kind = excluded.kind
                 returning version",
            )
            .bind(tenant)
            .bind(key.as_str())
            .bind(kind.as_str())
            .bind(meta.description.as_deref())
            .bind(meta.owner.as_deref())
            .bind(at)
            .bind(meta.expires_at.flatten())
            .bind(meta.expires_at.is_some())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| store_error(e, "define the tenant's flag"))?;
            if version.is_none() {
                let stored: Option<String> =
                    sqlx::query_scalar("select kind from tenant_flag_definitions where tenant_id = $1 and flag_key = $2")
                        .bind(tenant)
                        .bind(key.as_str())
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(|e| store_error(e, "read flag kind"))?;
                return Err(type_mismatch(key, stored, kind));
            }
            Ok(())
        }

        fn platform_set_refusal(key: &FlagKey) -> StoreError {
            StoreError::Refused(format!(
                "the platform set flag {key} for this tenant (an entitlement): only a platform administrator can change it"
            ))
        }

        async fn bump_flag(
            tx: &mut ::sqlx::Transaction<'_, $db>,
            key: &FlagKey,
            at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            sqlx::query("update flag_definitions set version = version + 1, updated_at = $1 where flag_key = $2")
                .bind(at)
                .bind(key.as_str())
                .execute(&mut **tx)
                .await
                .map_err(|e| store_error(e, "bump flag version"))?;
            Ok(())
        }

        /// Writes a rule at `scope` inside `tx` (tenant rules go to `tenant_flags`, under RLS).
        async fn put_rule(
            tx: &mut ::sqlx::Transaction<'_, $db>,
            scope: &FlagScope,
            key: &FlagKey,
            rule: &FlagRule,
            at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            let value = Json(rule.value.to_json());
            let rollout = rule.rollout.map(i64::from);
            let query = match scope {
                FlagScope::Tenant(t) => sqlx::query(
                    "insert into tenant_flags (tenant_id, flag_key, value, rollout_percent, updated_at) values ($1, $2, $3, $4, $5)
                     on conflict (tenant_id, flag_key) do update set value = excluded.value,
                         rollout_percent = excluded.rollout_percent, updated_at = excluded.updated_at",
                )
                .bind(t.as_str())
                .bind(key.as_str())
                .bind(value)
                .bind(rollout)
                .bind(at),
                other => sqlx::query(
                    "insert into flag_defaults (scope, scope_id, flag_key, value, rollout_percent, updated_at)
                     values ($1, $2, $3, $4, $5, $6)
                     on conflict (scope, scope_id, flag_key) do update set value = excluded.value,
                         rollout_percent = excluded.rollout_percent, updated_at = excluded.updated_at",
                )
                .bind(other.level().as_str())
                .bind(other.scope_id())
                .bind(key.as_str())
                .bind(value)
                .bind(rollout)
                .bind(at),
            };
            query.execute(&mut **tx).await.map_err(|e| store_error(e, "set flag"))?;
            Ok(())
        }

        async fn remove_rule(tx: &mut ::sqlx::Transaction<'_, $db>, scope: &FlagScope, key: &FlagKey) -> Result<(), StoreError> {
            let result = match scope {
                FlagScope::Tenant(t) => sqlx::query("delete from tenant_flags where tenant_id = $1 and flag_key = $2")
                    .bind(t.as_str())
                    .bind(key.as_str()),
                other => sqlx::query("delete from flag_defaults where scope = $1 and scope_id = $2 and flag_key = $3")
                    .bind(other.level().as_str())
                    .bind(other.scope_id())
                    .bind(key.as_str()),
            }
            .execute(&mut **tx)
            .await
            .map_err(|e| store_error(e, "delete flag"))?;
            if result.rows_affected() == 0 {
                return Err(StoreError::NotFound(::tenantry_app::Missing::FlagValue(key.clone())));
            }
            Ok(())
        }

        impl $store {
            /// Defines (or re-versions) the flag, writes its rule at `scope` and the audit entry,
            /// in `tx` (on the platform's or the tenant's path), and commits.
            async fn write_flag(
                &self,
                mut tx: ::sqlx::Transaction<'static, $db>,
                scope: &FlagScope,
                key: &FlagKey,
                rule: &FlagRule,
                meta: &FlagMeta,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                define_flag(&mut tx, key, FlagKind::of(&rule.value), meta, audit.at).await?;
                put_rule(&mut tx, scope, key, rule, audit.at).await?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit flag"))
            }

            /// Removes the flag's rule at `scope`, re-versions it, writes the audit entry, commits.
            async fn erase_flag(
                &self,
                mut tx: ::sqlx::Transaction<'static, $db>,
                scope: &FlagScope,
                key: &FlagKey,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                remove_rule(&mut tx, scope, key).await?;
                bump_flag(&mut tx, key, audit.at).await?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit flag delete"))
            }
        }

        #[::async_trait::async_trait]
        impl FlagStore for $store {
            async fn set_flag(
                &self,
                access: &PlatformScope,
                scope: &FlagScope,
                key: &FlagKey,
                rule: &FlagRule,
                meta: &FlagMeta,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let tx = self.platform_tx(access).await?;
                self.write_flag(tx, scope, key, rule, meta, audit).await
            }

            async fn delete_flag(
                &self,
                access: &PlatformScope,
                scope: &FlagScope,
                key: &FlagKey,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let tx = self.platform_tx(access).await?;
                self.erase_flag(tx, scope, key, audit).await
            }

            async fn set_tenant_flag(
                &self,
                scope: &TenantScope,
                key: &FlagKey,
                rule: &FlagRule,
                meta: &FlagMeta,
                writer: ::tenantry_app::ports::FlagWriter,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant_tx(scope).await?;
                let tenant = scope.tenant().as_str();
                let kind = FlagKind::of(&rule.value);
                let (by_platform, platform_set) = match writer {
                    ::tenantry_app::ports::FlagWriter::Platform { platform_set } => {
                        define_flag(&mut tx, key, kind, meta, audit.at).await?;
                        // the platform owns the key now: this tenant's own definition of it goes
                        sqlx::query("delete from tenant_flag_definitions where tenant_id = $1 and flag_key = $2")
                            .bind(tenant)
                            .bind(key.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| store_error(e, "drop the tenant's definition"))?;
                        (true, platform_set)
                    }
                    ::tenantry_app::ports::FlagWriter::Tenant => {
                        let platform_kind: Option<String> =
                            sqlx::query_scalar("select kind from flag_definitions where flag_key = $1")
                                .bind(key.as_str())
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(|e| store_error(e, "read flag kind"))?;
                        match platform_kind {
                            Some(stored) if stored != kind.as_str() => return Err(type_mismatch(key, Some(stored), kind)),
                            Some(_) if *meta != FlagMeta::default() => {
                                return Err(StoreError::Refused(format!(
                                    "flag {key} is defined by the platform: its description, owner and expiry are the platform's"
                                )));
                            }
                            Some(_) => {}
                            None => define_tenant_flag(&mut tx, tenant, key, kind, meta, audit.at).await?,
                        }
                        (false, None)
                    }
                };
                let written = sqlx::query(
                    "insert into tenant_flags (tenant_id, flag_key, value, rollout_percent, updated_at, version, platform_set)
                     values ($1, $2, $3, $4, $5, 1, coalesce($7, false))
                     on conflict (tenant_id, flag_key) do update set value = excluded.value,
                         rollout_percent = excluded.rollout_percent, updated_at = excluded.updated_at,
                         version = tenant_flags.version + 1,
                         platform_set = coalesce($7, tenant_flags.platform_set)
                     where $6 or not tenant_flags.platform_set",
                )
                .bind(tenant)
                .bind(key.as_str())
                .bind(Json(rule.value.to_json()))
                .bind(rule.rollout.map(i64::from))
                .bind(audit.at)
                .bind(by_platform)
                .bind(platform_set)
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(e, "set tenant flag"))?;
                if written.rows_affected() == 0 {
                    return Err(platform_set_refusal(key));
                }
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit flag"))
            }

            async fn delete_tenant_flag(
                &self,
                scope: &TenantScope,
                key: &FlagKey,
                writer: ::tenantry_app::ports::FlagWriter,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant_tx(scope).await?;
                let tenant = scope.tenant().as_str();
                let by_platform = matches!(writer, ::tenantry_app::ports::FlagWriter::Platform { .. });
                let locked: Option<bool> =
                    sqlx::query_scalar("select platform_set from tenant_flags where tenant_id = $1 and flag_key = $2")
                        .bind(tenant)
                        .bind(key.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "read tenant flag"))?;
                match locked {
                    None => return Err(StoreError::NotFound(::tenantry_app::Missing::FlagValue(key.clone()))),
                    Some(true) if !by_platform => return Err(platform_set_refusal(key)),
                    Some(_) => {}
                }
                sqlx::query("delete from tenant_flags where tenant_id = $1 and flag_key = $2")
                    .bind(tenant)
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "delete tenant flag"))?;
                // a key of the tenant's own is gone with its value
                sqlx::query("delete from tenant_flag_definitions where tenant_id = $1 and flag_key = $2")
                    .bind(tenant)
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "delete the tenant's definition"))?;
                if by_platform {
                    bump_flag(&mut tx, key, audit.at).await?;
                }
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit flag delete"))
            }

            async fn flags_for_tenant(&self, scope: &TenantScope) -> Result<FlagSet, StoreError> {
                let mut tx = self.tenant_read(scope).await?;
                // tenant_flags and tenant_flag_definitions are under RLS: only this tenant's rows are
                // visible in this transaction. A tenant value's version combines the platform's
                // definition (or the tenant's own) with the value's own version.
                type Row = (String, String, String, Json<serde_json::Value>, Option<i64>, Option<i64>, Option<bool>, Option<String>);
                let rows = sqlx::query_as::<_, Row>(
                    "select f.scope, f.scope_id, f.flag_key, f.value, cast(f.rollout_percent as bigint), d.version, d.enabled,
                            d.kind
                     from flag_defaults f left join flag_definitions d on d.flag_key = f.flag_key
                     union all
                     select 'tenant', t.tenant_id, t.flag_key, t.value, cast(t.rollout_percent as bigint),
                            coalesce(d.version, td.version, 0) + t.version, d.enabled, d.kind
                     from tenant_flags t
                     left join flag_definitions d on d.flag_key = t.flag_key
                     left join tenant_flag_definitions td on td.tenant_id = t.tenant_id and td.flag_key = t.flag_key
                     where t.tenant_id = $1",
                )
                .bind(scope.tenant().as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "load flags"))?;
                $store::end_read(tx).await?;
                let mut set = FlagSet::new();
                let mut versions = ::std::collections::HashMap::<FlagKey, i64>::new();
                for (s, id, key, value, rollout, version, enabled, platform_kind) in rows {
                    let (scope, key, value) = flag_from_columns(&s, &id, &key, value.0)?;
                    // a tenant's own value of a key the platform later defined with another type no
                    // longer applies: the platform's values do
                    if platform_kind.as_deref().is_some_and(|k| k != FlagKind::of(&value).as_str()) {
                        continue;
                    }
                    let v = versions.entry(key.clone()).or_insert(0);
                    *v = (*v).max(version.unwrap_or(0));
                    if enabled == Some(false) {
                        set.disable(key.clone());
                    }
                    set.set_rule(scope, key, FlagRule { value, rollout: rollout_from_column(rollout)? });
                }
                for (key, version) in versions {
                    set.set_version(key, version);
                }
                Ok(set)
            }

            async fn list_flags(&self, access: &PlatformScope) -> Result<Vec<FlagRow>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows =
                    sqlx::query_as::<_, (String, String, String, Json<serde_json::Value>, Option<i64>, time::OffsetDateTime)>(
                        "select scope, scope_id, flag_key, value, cast(rollout_percent as bigint), updated_at from (
                         select scope, scope_id, flag_key, value, rollout_percent, updated_at from flag_defaults
                         union all
                         select 'tenant', tenant_id, flag_key, value, rollout_percent, updated_at from tenant_flags) f
                     order by flag_key, case scope when 'global' then 0 when 'tier' then 1 else 2 end, scope_id",
                    )
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "list flags"))?;
                $store::end_read(tx).await?;
                rows.into_iter()
                    .map(|(s, id, key, value, rollout, updated_at)| {
                        let (scope, key, value) = flag_from_columns(&s, &id, &key, value.0)?;
                        Ok(FlagRow { scope, key, value, rollout: rollout_from_column(rollout)?, updated_at })
                    })
                    .collect()
            }

            async fn flag_definitions(&self, access: &PlatformScope) -> Result<Vec<FlagDefinition>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query_as::<_, FlagDefinitionColumns>(concat!(
                    "select ",
                    flag_definition_columns!(),
                    " from flag_definitions order by flag_key"
                ))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "list flag definitions"))?;
                $store::end_read(tx).await?;
                rows.into_iter().map(flag_definition_from_columns).collect()
            }

            async fn set_flag_enabled(
                &self,
                access: &PlatformScope,
                key: &FlagKey,
                enabled: bool,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                let result = sqlx::query(
                    "update flag_definitions set enabled = $1, version = version + 1, updated_at = $2 where flag_key = $3",
                )
                .bind(enabled)
                .bind(audit.at)
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(e, "set flag kill switch"))?;
                if result.rows_affected() == 0 {
                    return Err(StoreError::NotFound(::tenantry_app::Missing::FlagDefinition(key.clone())));
                }
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit flag kill switch"))
            }
        }

        #[::async_trait::async_trait]
        impl AuditLog for $store {
            async fn append_audit(&self, access: &PlatformScope, record: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                self.seal(&mut tx, record).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit audit entry"))
            }

            async fn append_tenant_audit(&self, scope: &TenantScope, record: &AuditRecord) -> Result<(), StoreError> {
                // RLS's WITH CHECK refuses an entry naming another tenant; fail with a clear error first
                if record.tenant.as_ref() != Some(scope.tenant()) {
                    return Err(StoreError::ConstraintViolated("an audit entry must name the scope's tenant".to_owned()));
                }
                let mut tx = self.tenant_tx(scope).await?;
                self.seal(&mut tx, record).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit audit entry"))
            }

            async fn recent_audit(&self, access: &PlatformScope, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query(concat!(
                    "select * from (select ",
                    audit_columns!(),
                    " from audit_log order by seq desc limit $1) recent order by seq"
                ))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "read audit"))?;
                $store::end_read(tx).await?;
                audit_entries(&rows)
            }

            async fn tenant_audit(
                &self,
                scope: &TenantScope,
                filter: &AuditFilter,
            ) -> Result<Vec<::tenantry_app::TenantAuditEntry>, StoreError> {
                let mut tx = self.tenant_read(scope).await?;
                // positions and links over the tenant's own entries since its registration
                let rows = sqlx::query(concat!(
                    "select * from (
                         select row_number() over (order by seq) as position, lag(hash) over (order by seq) as tenant_prev,
                                ",
                    audit_columns!(),
                    " from audit_log
                         where tenant_id = $1
                           and seq >= coalesce((select max(seq) from audit_log where tenant_id = $1 and operation = $5), 0)
                     ) h
                     where position > $2 and ($3 is null or at >= $3)
                     order by position limit $4"
                ))
                .bind(scope.tenant().as_str())
                .bind(filter.after_seq)
                .bind(filter.since)
                .bind(i64::from(filter.limit))
                .bind(::tenantry_app::AuditOp::TenantCreate.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "read audit"))?;
                $store::end_read(tx).await?;
                let entries = audit_entries(&rows)?;
                rows.iter()
                    .zip(entries)
                    .map(|(row, entry)| {
                        use ::sqlx::Row as _;
                        Ok(::tenantry_app::TenantAuditEntry {
                            position: row.try_get("position").map_err(|e| store_error(e, "read audit position"))?,
                            previous_hash: row.try_get("tenant_prev").map_err(|e| store_error(e, "read audit link"))?,
                            entry,
                        })
                    })
                    .collect()
            }

            async fn audit_entries(&self, access: &PlatformScope, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query(concat!(
                    "select ",
                    audit_columns!(),
                    " from audit_log where seq > $1 and ($2 is null or tenant_id = $2)
                       and ($3 is null or at >= $3)
                     order by seq limit $4"
                ))
                .bind(filter.after_seq)
                .bind(filter.tenant.as_ref().map(|t| t.as_str()))
                .bind(filter.since)
                .bind(i64::from(filter.limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "read audit"))?;
                $store::end_read(tx).await?;
                audit_entries(&rows)
            }

            async fn insert_checkpoint(&self, access: &PlatformScope, cp: &Checkpoint) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                sqlx::query(
                    "insert into audit_checkpoints (seq, head_hash, at, key_id, signature) values ($1, $2, $3, $4, $5)",
                )
                .bind(cp.seq)
                .bind(&cp.head_hash)
                .bind(cp.at)
                .bind(&cp.key_id)
                .bind(&cp.signature)
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(e, "insert checkpoint"))?;
                tx.commit().await.map_err(|e| store_error(e, "commit checkpoint"))
            }

            async fn checkpoints(&self, access: &PlatformScope) -> Result<Vec<Checkpoint>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query_as::<_, (i64, String, time::OffsetDateTime, String, String)>(
                    "select seq, head_hash, at, key_id, signature from audit_checkpoints order by id",
                )
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "read checkpoints"))?;
                $store::end_read(tx).await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, head_hash, at, key_id, signature)| Checkpoint { seq, head_hash, at, key_id, signature })
                    .collect())
            }
        }

        #[::async_trait::async_trait]
        impl IdentityStore for $store {
            async fn insert_user(&self, access: &PlatformScope, user: &User, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                sqlx::query(concat!("insert into users (", user_columns!(), ") values ($1, $2, $3)"))
                    .bind(user.id.as_str())
                    .bind(&user.display_name)
                    .bind(user.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| insert_error(e, || format!("user {}", user.id), "insert user"))?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit user"))
            }

            async fn get_user(&self, access: &PlatformScope, id: &UserId) -> Result<Option<User>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let row =
                    sqlx::query_as::<_, UserColumns>(concat!("select ", user_columns!(), " from users where user_id = $1"))
                        .bind(id.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "get user"))?;
                $store::end_read(tx).await?;
                row.map(user_from_columns).transpose()
            }

            async fn list_users(&self, access: &PlatformScope) -> Result<Vec<User>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows =
                    sqlx::query_as::<_, UserColumns>(concat!("select ", user_columns!(), " from users order by user_id"))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "list users"))?;
                $store::end_read(tx).await?;
                rows.into_iter().map(user_from_columns).collect()
            }

            async fn put_membership(
                &self,
                scope: &TenantScope,
                user: &UserId,
                role: Role,
                at: time::OffsetDateTime,
                max_members: i64,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant_tx(scope).await?;
                upsert_membership(&mut tx, scope, user, role, at, max_members).await?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit membership"))
            }

            async fn delete_membership(
                &self,
                scope: &TenantScope,
                user: &UserId,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant_tx(scope).await?;
                let result = sqlx::query("delete from memberships where tenant_id = $1 and user_id = $2")
                    .bind(scope.tenant().as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "delete membership"))?;
                if result.rows_affected() == 0 {
                    return Err(StoreError::NotFound(::tenantry_app::Missing::Member {
                        tenant: scope.tenant().clone(),
                        user: user.clone(),
                    }));
                }
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit membership removal"))
            }

            async fn list_members(&self, scope: &TenantScope) -> Result<Vec<Membership>, StoreError> {
                let mut tx = self.tenant_read(scope).await?;
                let rows = sqlx::query_as::<_, MembershipColumns>(concat!(
                    "select ",
                    membership_columns!(),
                    " from memberships where tenant_id = $1 order by user_id"
                ))
                .bind(scope.tenant().as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "list members"))?;
                $store::end_read(tx).await?;
                rows.into_iter().map(membership_from_columns).collect()
            }

            async fn put_invitation(
                &self,
                scope: &TenantScope,
                invitation: &::tenantry_domain::Invitation,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant_tx(scope).await?;
                sqlx::query(concat!(
                    "insert into invitations (",
                    $crate::invitation_columns!(),
                    ") values ($1, $2, $3, $4, $5, $6) on conflict (tenant_id, user_id) do update
                     set role = excluded.role, invited_by = excluded.invited_by, created_at = excluded.created_at,
                         expires_at = excluded.expires_at"
                ))
                .bind(scope.tenant().as_str())
                .bind(invitation.user.as_str())
                .bind(invitation.role.as_str())
                .bind(&invitation.invited_by)
                .bind(invitation.created_at)
                .bind(invitation.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| reference_error(e, ::tenantry_app::Missing::Tenant(scope.tenant().clone()), "put invitation"))?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit invitation"))
            }

            async fn invitations_of(
                &self,
                access: &PlatformScope,
                user: &UserId,
                now: ::time::OffsetDateTime,
            ) -> Result<Vec<::tenantry_domain::Invitation>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query_as::<_, $crate::identity::InvitationColumns>(concat!(
                    "select ",
                    $crate::invitation_columns!(),
                    " from invitations where user_id = $1 and expires_at > $2 order by tenant_id"
                ))
                .bind(user.as_str())
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "list invitations"))?;
                $store::end_read(tx).await?;
                rows.into_iter().map($crate::identity::invitation_from_columns).collect()
            }

            async fn accept_invitation(
                &self,
                scope: &TenantScope,
                user: &UserId,
                now: ::time::OffsetDateTime,
                max_members: i64,
                audit: &AuditRecord,
            ) -> Result<Membership, StoreError> {
                let mut tx = self.tenant_tx(scope).await?;
                let role: Option<String> = sqlx::query_scalar(
                    "delete from invitations where tenant_id = $1 and user_id = $2 and expires_at > $3 returning role",
                )
                .bind(scope.tenant().as_str())
                .bind(user.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| store_error(e, "take invitation"))?;
                let Some(role) = role else {
                    return Err(StoreError::NotFound(::tenantry_app::Missing::Invitation {
                        tenant: scope.tenant().clone(),
                        user: user.clone(),
                    }));
                };
                let role = Role::parse(&role)
                    .map_err(|e| StoreError::Unexpected(::anyhow::anyhow!("stored invitation role is not valid: {e}")))?;
                upsert_membership(&mut tx, scope, user, role, now, max_members).await?;
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit acceptance"))?;
                Ok(Membership { tenant: scope.tenant().clone(), user: user.clone(), role, created_at: now })
            }

            async fn memberships_of(&self, access: &PlatformScope, user: &UserId) -> Result<Vec<Membership>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query_as::<_, MembershipColumns>(concat!(
                    "select ",
                    membership_columns!(),
                    " from memberships where user_id = $1 order by tenant_id"
                ))
                .bind(user.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "list memberships"))?;
                $store::end_read(tx).await?;
                rows.into_iter().map(membership_from_columns).collect()
            }

            async fn insert_key(&self, access: &PlatformScope, key: &ApiKey, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                sqlx::query(concat!("insert into api_keys (", key_columns!(), ") values ($1, $2, $3, $4, $5, $6, $7, $8)"))
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

            async fn find_key_by_digest(&self, access: &PlatformScope, digest: &str) -> Result<Option<ApiKey>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let row =
                    sqlx::query_as::<_, KeyColumns>(concat!("select ", key_columns!(), " from api_keys where digest = $1"))
                        .bind(digest)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "find key"))?;
                $store::end_read(tx).await?;
                row.map(key_from_columns).transpose()
            }

            async fn list_keys(&self, access: &PlatformScope, owner: Option<&UserId>) -> Result<Vec<ApiKey>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let rows = sqlx::query_as::<_, KeyColumns>(concat!(
                    "select ",
                    key_columns!(),
                    " from api_keys where ($1 is null or owner_id = $1) order by created_at desc, key_id"
                ))
                .bind(owner.map(UserId::as_str))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(e, "list keys"))?;
                $store::end_read(tx).await?;
                rows.into_iter().map(key_from_columns).collect()
            }

            async fn revoke_key(
                &self,
                access: &PlatformScope,
                id: &KeyId,
                at: time::OffsetDateTime,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                let result = sqlx::query("update api_keys set revoked_at = coalesce(revoked_at, $1) where key_id = $2")
                    .bind(at)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "revoke key"))?;
                if result.rows_affected() == 0 {
                    return Err(StoreError::NotFound(::tenantry_app::Missing::Key(id.clone())));
                }
                self.seal(&mut tx, audit).await?;
                tx.commit().await.map_err(|e| store_error(e, "commit key revocation"))
            }
        }

        /// Audit entries from rows of `audit_log` (selected with `audit_columns!`).
        fn audit_entries(rows: &[$row]) -> Result<Vec<AuditEntry>, StoreError> {
            rows.iter()
                .map(|row| Ok(tenantry_store_sql::audit_entry_from_row!(row, |e| store_error(e, "read audit row"))))
                .collect()
        }

        #[::async_trait::async_trait]
        impl ::tenantry_app::ports::ChangeFeed for $store {
            async fn feed_append(
                &self,
                target: &::tenantry_app::InvalidationTarget,
                at: ::time::OffsetDateTime,
            ) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin().await.map_err(|e| store_error(e, "begin"))?;
                let seq: i64 = sqlx::query_scalar("update invalidation_head set seq = seq + 1 where id = 1 returning seq")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "number an invalidation"))?;
                sqlx::query("insert into invalidation_feed (seq, target, at) values ($1, $2, $3)")
                    .bind(seq)
                    .bind(target.encode())
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "record an invalidation"))?;
                tx.commit().await.map_err(|e| store_error(e, "commit an invalidation"))?;
                Ok(u64::try_from(seq).unwrap_or(0))
            }

            async fn feed_after(&self, after: u64, limit: u32) -> Result<Vec<::tenantry_app::Invalidation>, StoreError> {
                let after = i64::try_from(after).unwrap_or(i64::MAX);
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("select seq, target from invalidation_feed where seq > $1 order by seq limit $2")
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| store_error(e, "read the change feed"))?;
                rows.into_iter()
                    .map(|(seq, target)| {
                        let target = ::tenantry_app::InvalidationTarget::decode(&target).ok_or_else(|| {
                            StoreError::Unexpected(::anyhow::anyhow!("stored invalidation target {target:?} is not valid"))
                        })?;
                        Ok(::tenantry_app::Invalidation { seq: u64::try_from(seq).unwrap_or(0), target })
                    })
                    .collect()
            }

            async fn feed_head(&self) -> Result<u64, StoreError> {
                let seq: i64 = sqlx::query_scalar("select seq from invalidation_head where id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| store_error(e, "read the change feed head"))?;
                Ok(u64::try_from(seq).unwrap_or(0))
            }

            async fn feed_trim(&self, before: ::time::OffsetDateTime) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "delete from invalidation_feed where at < $1 and seq < (select seq from invalidation_head where id = 1)",
                )
                .bind(before)
                .execute(&self.pool)
                .await
                .map_err(|e| store_error(e, "trim the change feed"))?;
                Ok(done.rows_affected())
            }

            async fn replica_report(&self, r: &::tenantry_app::ports::ReplicaRow) -> Result<(), StoreError> {
                sqlx::query(
                    "insert into replicas (replica_id, bus, applied_seq, started_at, seen_at) values ($1, $2, $3, $4, $5)
                     on conflict (replica_id) do update
                     set bus = excluded.bus, applied_seq = excluded.applied_seq, seen_at = excluded.seen_at",
                )
                .bind(&r.replica_id)
                .bind(&r.bus)
                .bind(i64::try_from(r.applied_seq).unwrap_or(i64::MAX))
                .bind(r.started_at)
                .bind(r.seen_at)
                .execute(&self.pool)
                .await
                .map_err(|e| store_error(e, "record a replica report"))?;
                Ok(())
            }

            async fn replica_leave(&self, replica_id: &str) -> Result<(), StoreError> {
                sqlx::query("delete from replicas where replica_id = $1")
                    .bind(replica_id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| store_error(e, "remove a replica report"))?;
                Ok(())
            }

            async fn replicas(&self) -> Result<Vec<::tenantry_app::ports::ReplicaRow>, StoreError> {
                let rows: Vec<(String, String, i64, ::time::OffsetDateTime, ::time::OffsetDateTime)> = sqlx::query_as(
                    "select replica_id, bus, applied_seq, started_at, seen_at from replicas order by replica_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| store_error(e, "list replicas"))?;
                Ok(rows
                    .into_iter()
                    .map(|(replica_id, bus, applied, started_at, seen_at)| ::tenantry_app::ports::ReplicaRow {
                        replica_id,
                        bus,
                        applied_seq: u64::try_from(applied).unwrap_or(0),
                        started_at,
                        seen_at,
                    })
                    .collect())
            }
        }

        #[::async_trait::async_trait]
        impl ::tenantry_app::ports::OrphanObjects for $store {
            async fn record_orphans(
                &self,
                access: &PlatformScope,
                keys: &[String],
                at: ::time::OffsetDateTime,
            ) -> Result<(), StoreError> {
                let mut tx = self.platform_tx(access).await?;
                for key in keys {
                    sqlx::query("insert into orphan_objects (object_key, recorded_at) values ($1, $2) on conflict (object_key) do nothing")
                        .bind(key)
                        .bind(at)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "record an orphan object"))?;
                }
                tx.commit().await.map_err(|e| store_error(e, "commit orphan objects"))
            }

            async fn orphans(&self, access: &PlatformScope, limit: u32) -> Result<Vec<String>, StoreError> {
                let mut tx = self.platform_read(access).await?;
                let keys = sqlx::query_scalar("select object_key from orphan_objects order by recorded_at, object_key limit $1")
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(e, "list orphan objects"))?;
                $store::end_read(tx).await?;
                Ok(keys)
            }

            async fn forget_orphans(&self, access: &PlatformScope, keys: &[String]) -> Result<(), StoreError> {
                if keys.is_empty() {
                    return Ok(());
                }
                let mut tx = self.platform_tx(access).await?;
                for key in keys {
                    sqlx::query("delete from orphan_objects where object_key = $1")
                        .bind(key)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(e, "forget an orphan object"))?;
                }
                tx.commit().await.map_err(|e| store_error(e, "commit orphan objects"))
            }
        }
        }
    };
}
