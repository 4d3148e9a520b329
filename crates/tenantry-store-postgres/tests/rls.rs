//! Row-level security probes, run as the application role (a superuser or table owner would
//! bypass RLS and prove nothing), and the Citus-readiness check of the schema.

mod common;

use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use tenantry_app::KeyOwner;
use tenantry_app::ports::Store;
use tenantry_contract::{Ctx, create, key, tid};
use tenantry_domain::{FlagScope, FlagValue, Role, UserId};
use tenantry_store_postgres::{PgConfig, PgStore, probes};

/// A database with two tenants (each with a flag override and audit entries) and an app-role pool.
async fn two_tenants(pool_size: u32) -> Option<(PgConfig, PgPool)> {
    let mut config = common::fresh_config().await?;
    config.migrate = false;
    config.pool_size = pool_size;
    let store = PgStore::connect(&config).await.unwrap();
    let pool = store.pool().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let ctx = Ctx::new(store.clone()).await;
    let directory = ctx.app.directory.clone();
    for id in ["tenant_a", "tenant_b"] {
        create(&ctx, id, "gold").await;
        ctx.registry
            .set_flag(&ctx.admin, FlagScope::Tenant(tid(id)), key("beta"), FlagValue::Bool(true))
            .await
            .unwrap();
        let user = UserId::parse(&format!("user-of-{id}")).unwrap();
        directory.create_user(&ctx.admin, user.clone(), "U").await.unwrap();
        directory.put_member(&ctx.admin.act_in(tid(id)), &user, Role::Admin).await.unwrap();
        let token = directory.create_key(&ctx.admin, KeyOwner::User(user), "k", None).await.unwrap().token;
        // the tenant's admin invites someone (an invitations row)
        let admin_scope = directory.authenticate(&token).await.unwrap().tenant(&tid(id)).unwrap();
        directory.put_member(&admin_scope, &UserId::parse("invitee").unwrap(), Role::Viewer).await.unwrap();
        // an answer configuration version (tenant_rag_configs)
        let layer = tenantry_domain::rag::RagSettings { top_k: Some(3), ..Default::default() };
        ctx.app.answers.set_tenant_config(&admin_scope, layer, None, None).await.unwrap();
    }
    // documents, chunks (partition chunks_i1 of the shared index), placements and usage
    let data = tenantry_contract::data::DataCtx::new(store).await;
    for id in ["tenant_a", "tenant_b"] {
        let text = (0..100).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
        data.ingest(id, &format!("doc of {id}"), &text).await;
    }
    Some((config, pool))
}

async fn count(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from {table}"))).fetch_one(conn).await.unwrap()
}

const TENANT_TABLES: [&str; 13] = [
    "tenants",
    "tenant_flags",
    "audit_log",
    "memberships",
    "invitations",
    "tenant_placements",
    "documents",
    "chunks",
    "chunks_i1",
    "tenant_usage",
    // the ingests were metered
    "usage_events",
    "usage_daily",
    "tenant_rag_configs",
];

/// Users and API keys are read and written only on the platform path (authentication, admins).
#[tokio::test]
async fn platform_only_tables_are_invisible_outside_the_platform_path() {
    let Some((_, pool)) = two_tenants(2).await else { return };
    let mut conn = pool.acquire().await.unwrap();
    for t in ["users", "api_keys"] {
        assert_eq!(count(&mut conn, t).await, 0, "{t} without context");
    }
    drop(conn);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select set_config('tenantry.tenant_id', 'tenant_a', true)").execute(&mut *tx).await.unwrap();
    for t in ["users", "api_keys"] {
        assert_eq!(count(&mut tx, t).await, 0, "{t} in a tenant's context");
    }
    let forged = sqlx::query(
        "insert into api_keys (key_id, digest, owner_kind, owner_id, name, created_at)
         values ('forged', repeat('a', 64), 'platform_admin', 'mallory', '', now())",
    )
    .execute(&mut *tx)
    .await;
    assert!(forged.is_err(), "a tenant context cannot mint a key");
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await.unwrap();
    assert_eq!(count(&mut tx, "users").await, 2);
    assert_eq!(count(&mut tx, "api_keys").await, 2);
}

#[tokio::test]
async fn probe1_no_context_sees_zero_rows_while_rows_exist() {
    let Some((_, pool)) = two_tenants(2).await else { return };
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await.unwrap();
    for t in TENANT_TABLES {
        assert!(count(&mut tx, t).await >= 2, "{t} has rows");
    }
    tx.rollback().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for t in TENANT_TABLES {
        assert_eq!(count(&mut conn, t).await, 0, "{t} without tenant context");
    }
}

#[tokio::test]
async fn probe2_wrong_tenant_sees_nothing_and_updates_nothing() {
    let Some((_, pool)) = two_tenants(2).await else { return };
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select set_config('tenantry.tenant_id', 'tenant_a', true)").execute(&mut *tx).await.unwrap();
    for t in TENANT_TABLES {
        let foreign: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from {t} where tenant_id = 'tenant_b'")))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(foreign, 0, "{t}: B's rows invisible to A");
        assert!(count(&mut tx, t).await >= 1, "{t}: A still sees its own rows");
    }
    let updated =
        sqlx::query("update tenants set name = 'pwned' where tenant_id = 'tenant_b'").execute(&mut *tx).await.unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let updated = sqlx::query("update tenant_flags set value = 'false' where tenant_id = 'tenant_b'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query("delete from tenant_flags where tenant_id = 'tenant_b'").execute(&mut *tx).await.unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    tx.commit().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select set_config('tenantry.tenant_id', 'tenant_b', true)").execute(&mut *tx).await.unwrap();
    let name: String = sqlx::query_scalar("select name from tenants").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(name, "Tenant tenant_b");
}

#[tokio::test]
async fn probe3_writing_another_tenants_id_is_rejected_by_with_check() {
    let Some((_, pool)) = two_tenants(2).await else { return };
    let attempts = [
        "insert into tenant_flags (tenant_id, flag_key, value) values ('tenant_b', 'forged', 'true')",
        "insert into audit_log (at, actor_kind, actor_id, tenant_id, operation) values (now(), 'user', 'x', 'tenant_b', 'forged')",
        "update tenants set tenant_id = 'tenant_b' where tenant_id = 'tenant_a'",
        "update tenant_flags set tenant_id = 'tenant_b' where tenant_id = 'tenant_a'",
        "update documents set tenant_id = 'tenant_b' where tenant_id = 'tenant_a'",
        "update chunks set tenant_id = 'tenant_b' where tenant_id = 'tenant_a'",
        "update tenant_usage set tenant_id = 'tenant_b' where tenant_id = 'tenant_a'",
        "insert into tenant_placements (tenant_id, index_name, kind, placed_at) values ('tenant_b', 'shared-1', 'namespace', now())",
        "select tenantry_provision_index('shared-9', 'shared', 10, 64)",
        "insert into memberships (tenant_id, user_id, role, created_at) values ('tenant_b', 'mallory', 'admin', now())",
        "update memberships set tenant_id = 'tenant_b' where tenant_id = 'tenant_a'",
        "insert into usage_events (tenant_id, idem_key, meter, quantity, at) values ('tenant_b', 'forged', 'api_calls', 1, now())",
        "insert into usage_daily (tenant_id, meter, day, quantity) values ('tenant_b', 'api_calls', current_date, 1000000)",
        "update usage_daily set tenant_id = 'tenant_b' where tenant_id = 'tenant_a'",
        "insert into budget_alerts (tenant_id, month, threshold, fired_at) values ('tenant_b', '2026-03', 80, now())",
        "insert into prices (meter, currency, effective_from, provider, unit_price, created_at) values ('api_calls', 'USD', current_date, 'x', '0', now())",
        "insert into bills (provider, month, currency, amount_minor, imported_at) values ('x', '2026-03', 'USD', 0, now())",
    ];
    for sql in attempts {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("select set_config('tenantry.tenant_id', 'tenant_a', true)").execute(&mut *tx).await.unwrap();
        let err = sqlx::query(sql).execute(&mut *tx).await.expect_err(sql);
        let code = err.as_database_error().and_then(|d| d.code()).map(|c| c.to_string());
        // 42501: new row violates row-level security policy
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn probe4_pooled_connection_carries_no_context() {
    let Some((_, pool)) = two_tenants(1).await else { return };
    // one connection: the next acquire is guaranteed to reuse it
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select set_config('tenantry.tenant_id', 'tenant_a', true)").execute(&mut *tx).await.unwrap();
    assert_eq!(count(&mut tx, "tenants").await, 1);
    tx.commit().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let setting: Option<String> =
        sqlx::query_scalar("select current_setting('tenantry.tenant_id', true)").fetch_one(&mut *conn).await.unwrap();
    assert!(setting.unwrap_or_default().is_empty(), "context leaked into the pooled connection");
    for t in TENANT_TABLES {
        assert_eq!(count(&mut conn, t).await, 0, "{t} after reuse");
    }
}

#[tokio::test]
async fn probe5_app_role_is_unprivileged_and_every_tenant_table_forces_rls() {
    let Some((_, pool)) = two_tenants(2).await else { return };
    let (superuser, bypass, owned): (bool, bool, i64) = sqlx::query_as(
        "select rolsuper, rolbypassrls, (select count(*) from pg_class where relowner = r.oid)
         from pg_roles r where rolname = current_user",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!superuser && !bypass, "the app role must not be superuser or BYPASSRLS");
    assert_eq!(owned, 0, "the app role owns no relation");
    let user: String = sqlx::query_scalar("select current_user::text").fetch_one(&pool).await.unwrap();
    assert_eq!(user, "tenantry_app");

    let tables = probes::tables_with_tenant_id(&pool).await.unwrap();
    assert_eq!(
        tables,
        [
            "audit_log",
            "budget_alerts",
            "chunks",
            "chunks_i1",
            "documents",
            "invitations",
            "memberships",
            "tenant_flag_definitions",
            "tenant_flags",
            "tenant_placements",
            "tenant_rag_configs",
            "tenant_usage",
            "tenants",
            "usage_daily",
            "usage_events"
        ]
    );
    let unforced: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p')
           and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
           and not (c.relrowsecurity and c.relforcerowsecurity)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(unforced.is_empty(), "tables with tenant_id but without FORCE RLS: {unforced:?}");
}

/// Every way to change or remove what the audit log holds.
const AUDIT_EDITS: [&str; 6] = [
    "update audit_log set reason = 'edited'",
    "delete from audit_log",
    "truncate audit_log",
    "update audit_checkpoints set head_hash = repeat('0', 64)",
    "delete from audit_checkpoints",
    "truncate audit_checkpoints",
];

/// The append-only triggers themselves, tested as the schema owner — who has every privilege
/// on the tables, so what refuses here is the trigger, not a missing grant.
#[tokio::test]
async fn audit_log_is_append_only_even_for_its_owner() {
    let Some((config, _)) = two_tenants(2).await else { return };
    let mut owner = common::owner_conn(&config).await;
    let mut tx = sqlx::Acquire::begin(&mut owner).await.unwrap();
    sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await.unwrap();
    sqlx::query("insert into audit_checkpoints (seq, head_hash, at, key_id, signature) values (1, repeat('a', 64), now(), 'k', 's')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for sql in AUDIT_EDITS {
        let mut tx = sqlx::Acquire::begin(&mut owner).await.unwrap();
        sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await.unwrap();
        let err = sqlx::query(AssertSqlSafe(sql.to_string())).execute(&mut *tx).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: refused by something else: {err}");
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn audit_log_is_append_only_for_the_app_role() {
    let Some((_, pool)) = two_tenants(2).await else { return };
    for sql in AUDIT_EDITS {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await.unwrap();
        let err = sqlx::query(AssertSqlSafe(sql.to_string())).execute(&mut *tx).await.expect_err(sql);
        let code = err.as_database_error().and_then(|d| d.code()).map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn doctor_probes_pass_on_a_live_database() {
    let Some((_, pool)) = two_tenants(2).await else { return };
    let results = probes::run(&pool).await.unwrap();
    assert_eq!(results.len(), 3);
    for p in &results {
        assert_eq!(p.outcome, probes::Outcome::Passed, "{}: {}", p.name, p.detail);
    }
    assert!(results[2].detail.contains("tenant_a"), "{}", results[2].detail);
}

/// With fewer than two tenants the wrong-tenant probe cannot run: it says so, it does not pass.
#[tokio::test]
async fn a_probe_that_cannot_run_is_reported_skipped() {
    let Some(config) = common::fresh_config().await else { return };
    let pool = PgPoolOptions::new().max_connections(1).connect(&config.app_url().unwrap()).await.unwrap();
    let results = probes::run(&pool).await.unwrap();
    let wrong = results.iter().find(|p| p.name == "wrong_tenant_returns_zero_rows").unwrap();
    assert_eq!(wrong.outcome, probes::Outcome::Skipped, "{}", wrong.detail);
    assert_eq!(results.iter().filter(|p| p.outcome == probes::Outcome::Passed).count(), 2);
}

#[tokio::test]
async fn doctor_probes_fail_when_rls_is_missing() {
    let Some((config, _)) = two_tenants(2).await else { return };
    // sabotage as the owner: drop FORCE/ENABLE on tenant_flags, then the probe must catch it
    let mut owner = common::owner_conn(&config).await;
    sqlx::raw_sql(
        "alter table tenant_flags no force row level security; alter table tenant_flags disable row level security",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let pool = PgPoolOptions::new().max_connections(1).connect(&config.app_url().unwrap()).await.unwrap();
    let results = probes::run(&pool).await.unwrap();
    let no_ctx = results.iter().find(|p| p.name == "no_context_returns_zero_rows").unwrap();
    assert_eq!(no_ctx.outcome, probes::Outcome::Failed, "{}", no_ctx.detail);
    assert!(no_ctx.detail.contains("tenant_flags"), "{}", no_ctx.detail);
}

/// The schema can be distributed by tenant with Citus: every tenant-owned table leads its primary
/// key with tenant_id and carries tenant_id in every unique constraint and foreign key (unless the
/// foreign key targets a reference table); reference tables carry no tenant_id.
#[tokio::test]
async fn schema_is_citus_distributable_by_tenant_id() {
    let Some(config) = common::fresh_config().await else { return };
    let mut owner = common::owner_conn(&config).await;
    let classes: Vec<(String, Option<String>)> = sqlx::query_as(
        "select c.relname::text, obj_description(c.oid, 'pg_class') from pg_class c
         join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname <> 'schema_migrations' order by 1",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let mut problems = Vec::new();
    let class_of = |t: &str| classes.iter().find(|(n, _)| n == t).and_then(|(_, c)| c.clone());
    for (table, class) in &classes {
        let has_tenant_id: bool = sqlx::query_scalar(
            "select exists (select 1 from pg_attribute where attrelid = $1::regclass and attname = 'tenant_id' and not attisdropped)",
        )
        .bind(table)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        match class.as_deref() {
            Some("tenantry:reference") => {
                if has_tenant_id {
                    problems.push(format!("{table}: reference table has tenant_id"));
                }
            }
            Some("tenantry:platform") => {}
            Some("tenantry:tenant") => {
                // (constraint type, column names in key order, referenced table)
                let constraints: Vec<(String, Vec<String>, Option<String>)> = sqlx::query_as(
                    "select con.contype::text,
                            array(select a.attname::text from unnest(con.conkey) with ordinality k(attnum, ord)
                                  join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum order by k.ord),
                            case when con.confrelid <> 0 then con.confrelid::regclass::text end
                     from pg_constraint con where con.conrelid = $1::regclass and con.contype in ('p', 'u', 'f')",
                )
                .bind(table)
                .fetch_all(&mut owner)
                .await
                .unwrap();
                let pk = constraints.iter().find(|(t, _, _)| t == "p");
                if pk.is_none_or(|(_, cols, _)| cols.first().map(String::as_str) != Some("tenant_id")) {
                    problems.push(format!("{table}: primary key does not lead with tenant_id: {pk:?}"));
                }
                for (kind, cols, target) in &constraints {
                    let to_reference = target.as_deref().and_then(class_of).as_deref() == Some("tenantry:reference");
                    let carries_tenant = cols.iter().any(|c| c == "tenant_id");
                    let fk_to_reference = kind == "f" && to_reference;
                    if !(carries_tenant || fk_to_reference) {
                        problems.push(format!("{table}: {kind} constraint on {cols:?} lacks tenant_id"));
                    }
                }
                // unique indexes not backed by a constraint count too
                let loose: Vec<String> = sqlx::query_scalar(
                    "select i.indexrelid::regclass::text from pg_index i
                     where i.indrelid = $1::regclass and i.indisunique
                       and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
                       and not exists (select 1 from pg_attribute a where a.attrelid = i.indrelid
                                       and a.attnum = any(i.indkey) and a.attname = 'tenant_id')",
                )
                .bind(table)
                .fetch_all(&mut owner)
                .await
                .unwrap();
                for index in loose {
                    problems.push(format!("{table}: unique index {index} lacks tenant_id"));
                }
            }
            other => problems
                .push(format!("{table}: unclassified ({other:?}); comment it tenantry:tenant|reference|platform")),
        }
    }
    assert!(classes.iter().any(|(_, c)| c.as_deref() == Some("tenantry:tenant")));
    assert!(problems.is_empty(), "not distributable by tenant_id:\n{}", problems.join("\n"));
}

/// A search function sets the tenant context for its own statement only: on the same pooled
/// connection, the next statement has no context and sees nothing.
#[tokio::test]
async fn the_search_function_leaves_no_context_behind() {
    let Some((config, pool)) = two_tenants(1).await else { return };
    let partition = partition_of(&config, "shared-1").await;
    let mut conn = pool.acquire().await.unwrap();
    let hits: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "select count(*) from (select set_config('tenantry.tenant_id', 'tenant_a', true) as t) s
         cross join lateral {partition}_search(s.t, array_fill(0.1::real, array[64])::vector, '{{}}'::jsonb, 5, 0)"
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(hits, 3, "tenant_a's three chunks");
    no_context_left(&mut conn, &partition, "exact").await;
}

async fn partition_of(config: &PgConfig, index: &str) -> String {
    let mut owner = common::owner_conn(config).await;
    sqlx::query_scalar("select partition from vector_indexes where index_name = $1")
        .bind(index)
        .fetch_one(&mut owner)
        .await
        .unwrap()
}

/// A dedicated index's own search function (`<partition>_search`) is SECURITY INVOKER: it
/// answers its tenant, has nothing for a tenant placed
/// elsewhere, and leaves no context behind. The app role cannot create such functions itself.
#[tokio::test]
async fn a_dedicated_index_search_function_answers_only_its_tenant_and_leaves_no_context() {
    let Some((config, pool)) = two_tenants(1).await else { return };
    let store: Arc<dyn Store> = Arc::new(PgStore::from_pool(pool.clone()));
    let ctx = Ctx::new(store.clone()).await;
    create(&ctx, "tenant_v", "platinum").await;
    let data = tenantry_contract::data::DataCtx::new(store).await;
    let text = (0..100).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
    data.ingest("tenant_v", "doc of tenant_v", &text).await;
    let mut owner = common::owner_conn(&config).await;
    let partition: String =
        sqlx::query_scalar("select partition from vector_indexes where index_name = 'dedicated-tenant_v'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    let search = |tenant: &str| {
        format!(
            "select count(distinct (document_id, chunk_index))
             from (select set_config('tenantry.tenant_id', '{tenant}', true) as t) s
                  cross join lateral {partition}_search(s.t, array_fill(0.1::real, array[64])::vector, '{{}}'::jsonb, 5, 100)"
        )
    };
    let mut conn = pool.acquire().await.unwrap();
    let own: i64 = sqlx::query_scalar(AssertSqlSafe(search("tenant_v"))).fetch_one(&mut *conn).await.unwrap();
    assert_eq!(own, 3, "tenant_v's three chunks");
    for other in ["tenant_a", "tenant_b", "nobody"] {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(search(other))).fetch_one(&mut *conn).await.unwrap();
        assert_eq!(n, 0, "{other} through tenant_v's dedicated index");
    }
    no_context_left(&mut conn, &partition, "dedicated").await;
    let forged = sqlx::query("select tenantry_create_search_function('chunks_i1', 'shared-1', 64)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(forged.to_string().contains("permission denied"), "{forged}");
}

/// A shared index's search function, run as the app role, on both of the paths a plan can name:
/// the exact scan (`p_ef` 0) and HNSW at the given `ef_search`. Which path ran is visible inside
/// a transaction: only the HNSW path sets `hnsw.ef_search`. Either way the function answers its
/// tenant only, filtered or not, and leaves no context behind in autocommit; an `ef_search`
/// outside pgvector's range is refused.
#[tokio::test]
async fn a_shared_index_search_function_answers_only_its_tenant_on_either_path() {
    let Some((config, pool)) = two_tenants(1).await else { return };
    let partition = partition_of(&config, "shared-1").await;
    let search = |tenant: &str, filter: &str, ef: i32| {
        format!(
            "select count(distinct (document_id, chunk_index))
             from (select set_config('tenantry.tenant_id', '{tenant}', true) as t) s
                  cross join lateral {partition}_search(s.t, array_fill(0.1::real, array[64])::vector, '{filter}'::jsonb, 5, {ef})"
        )
    };
    let mut conn = pool.acquire().await.unwrap();
    for (path, ef, expected_ef) in [("exact", 0, "40"), ("hnsw", 100, "100"), ("hnsw", 1000, "1000")] {
        for (tenant, expected) in [("tenant_a", 3), ("tenant_b", 3), ("nobody", 0)] {
            for filter in ["{}".to_owned(), format!("{{\"owner\": \"{tenant}\"}}")] {
                let mut tx = sqlx::Acquire::begin(&mut *conn).await.unwrap();
                let n: i64 =
                    sqlx::query_scalar(AssertSqlSafe(search(tenant, &filter, ef))).fetch_one(&mut *tx).await.unwrap();
                assert_eq!(n, expected, "{tenant} through the shared index ({path}, filter {filter})");
                let used: String =
                    sqlx::query_scalar("select current_setting('hnsw.ef_search')").fetch_one(&mut *tx).await.unwrap();
                assert_eq!(used, expected_ef, "{tenant}: the {path} path");
                tx.rollback().await.unwrap();
            }
        }
        // another tenant's filter value finds nothing of it
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(search("tenant_a", "{\"owner\": \"tenant_b\"}", ef)))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "tenant_a filtering for tenant_b's documents ({path})");
        // the other tenant's rows are in the same partition, but never in the answer
        let documents = |tenant: &'static str| {
            AssertSqlSafe(format!(
                "select f.document_id from {} f",
                in_context(
                    &partition,
                    tenant,
                    &format!("array_fill(0.1::real, array[64])::vector, '{{}}'::jsonb, 10, {ef}")
                )
            ))
        };
        let a: Vec<String> = sqlx::query_scalar(documents("tenant_a")).fetch_all(&mut *conn).await.unwrap();
        let b: Vec<String> = sqlx::query_scalar(documents("tenant_b")).fetch_all(&mut *conn).await.unwrap();
        assert!(
            !a.is_empty() && !b.is_empty() && a.iter().all(|d| !b.contains(d)),
            "a document of both tenants ({path})"
        );
        no_context_left(&mut conn, &partition, path).await;
    }
    for ef in [-1, 1001] {
        let refused = sqlx::query_scalar::<_, i64>(AssertSqlSafe(search("tenant_a", "{}", ef)))
            .fetch_one(&mut *conn)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("invalid k or ef_search"), "ef_search {ef}: {refused}");
    }
}

/// The chain head is the platform's and follows the log: in a tenant's context it is invisible
/// and an update touches nothing; on the platform path it cannot be forged, rewound or moved
/// ahead (the whole suite shows that appends, also a tenant's, still move it).
#[tokio::test]
async fn the_audit_head_is_the_platforms_and_only_follows_the_log() {
    let Some((_, pool)) = two_tenants(1).await else { return };
    let forgeries = [
        "update audit_head set hash = repeat('a', 64) where id = 1",
        "update audit_head set seq = seq - 1, hash = (select hash from audit_log where seq = (select seq - 1 from audit_head)) where id = 1",
        "update audit_head set seq = seq + 2 where id = 1",
    ];
    for forged in forgeries {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("select set_config('tenantry.tenant_id', 'tenant_a', true)").execute(&mut *tx).await.unwrap();
        assert_eq!(count(&mut tx, "audit_head").await, 0, "the head is not visible to a tenant");
        let touched = sqlx::query(AssertSqlSafe(forged)).execute(&mut *tx).await.unwrap().rows_affected();
        assert_eq!(touched, 0, "{forged} in a tenant's context");
    }
    for forged in forgeries {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("select set_config('tenantry.platform', 'on', true)").execute(&mut *tx).await.unwrap();
        let refused = sqlx::query(AssertSqlSafe(forged)).execute(&mut *tx).await.unwrap_err();
        assert!(refused.to_string().contains("audit_head only follows the audit log"), "{forged}: {refused}");
    }
}

/// The app role holds no privilege it does not use: rows of these tables are written once and never
/// updated, so UPDATE is not granted.
#[tokio::test]
async fn the_app_role_cannot_update_write_once_tables() {
    let Some((_, pool)) = two_tenants(1).await else { return };
    for table in [
        "tiers",
        "tenant_placements",
        "documents",
        "chunks",
        "chunks_i1",
        "audit_log",
        "audit_checkpoints",
        "users",
        "rag_config_defaults",
        "tenant_rag_configs",
    ] {
        let can: bool = sqlx::query_scalar("select has_table_privilege(current_user, $1, 'UPDATE')")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(!can, "the app role may update {table}");
    }
}

/// `partition`'s search for `tenant` as the store runs it: the statement sets the tenant context,
/// then calls the function (`args` after the tenant).
fn in_context(partition: &str, tenant: &str, args: &str) -> String {
    format!(
        "(select set_config('tenantry.tenant_id', '{tenant}', true) as t) s
         cross join lateral {partition}_search(s.t, {args})"
    )
}

/// A search function runs only for the tenant the caller's context names: inside tenant_a's
/// transaction, asking for tenant_b's chunks (or with no context at all) is refused, not answered.
#[tokio::test]
async fn a_search_function_refuses_a_tenant_other_than_the_context() {
    let Some((config, pool)) = two_tenants(1).await else { return };
    let partition = partition_of(&config, "shared-1").await;
    let call = |tenant: &str| {
        AssertSqlSafe(format!(
            "select count(*) from {partition}_search('{tenant}', array_fill(0.1::real, array[64])::vector, '{{}}'::jsonb, 5, 0)"
        ))
    };
    let mut conn = pool.acquire().await.unwrap();
    let refused = sqlx::query_scalar::<_, i64>(call("tenant_a")).fetch_one(&mut *conn).await.unwrap_err();
    assert!(refused.to_string().contains("the tenant context is not tenant_a"), "no context: {refused}");
    let mut tx = sqlx::Acquire::begin(&mut *conn).await.unwrap();
    sqlx::query("select set_config('tenantry.tenant_id', 'tenant_a', true)").execute(&mut *tx).await.unwrap();
    let own: i64 = sqlx::query_scalar(call("tenant_a")).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(own, 3, "tenant_a in its own context");
    let other = sqlx::query_scalar::<_, i64>(call("tenant_b")).fetch_one(&mut *tx).await.unwrap_err();
    let code = other.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("42501"), "tenant_b from tenant_a's context: {other}");
}

/// After a search in autocommit: no tenant context on the connection, so nothing is visible.
async fn no_context_left(conn: &mut sqlx::PgConnection, partition: &str, what: &str) {
    let setting: Option<String> =
        sqlx::query_scalar("select current_setting('tenantry.tenant_id', true)").fetch_one(&mut *conn).await.unwrap();
    assert!(setting.unwrap_or_default().is_empty(), "context leaked out of the search ({what})");
    for t in ["documents", "chunks", partition] {
        assert_eq!(count(conn, t).await, 0, "{t} after a search ({what})");
    }
}
