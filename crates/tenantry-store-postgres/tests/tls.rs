//! PostgreSQL over TLS (rustls): `sslmode=verify-full` with the server's CA (`sslrootcert`)
//! connects, migrates and serves every connection of the application role's pool encrypted; the
//! same URL without the CA is refused, so the certificate is really checked. The CA is the local
//! server's certificate (`TENANTRY_TEST_PG_CA`, set by scripts/test.sh; required under `CI=true`).

use std::sync::Arc;

use tenantry_app::ports::Store;
use tenantry_contract::{Ctx, create, tid};
use tenantry_store_postgres::PgStore;
use tenantry_store_postgres::testing::{fresh_config, required_env};

#[tokio::test]
async fn verify_full_connects_encrypted_and_refuses_an_unknown_issuer() {
    let Some(ca) = required_env("TENANTRY_TEST_PG_CA") else { return };
    let Some(plain) = fresh_config().await else { return };
    // the server's certificate names localhost
    let mut url = url::Url::parse(&plain.owner_url).unwrap();
    url.set_host(Some("localhost")).unwrap();
    let mut unverified = plain.clone();
    unverified.owner_url = format!("{url}?sslmode=verify-full");
    unverified.pool_size = 2;
    let refused = PgStore::connect(&unverified).await.err().expect("an unknown issuer is refused");
    assert!(format!("{refused:#}").contains("UnknownIssuer"), "{refused:#}");

    let mut config = unverified.clone();
    config.owner_url = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
    let store = PgStore::connect(&config).await.expect("verify-full with the server's CA");
    let pool = store.pool().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let ctx = Ctx::new(store).await;
    create(&ctx, "tls-co", "gold").await;
    assert_eq!(ctx.registry.get_tenant(&ctx.admin.act_in(tid("tls-co"))).await.unwrap().id, tid("tls-co"));
    for _ in 0..2 {
        let mut conn = pool.acquire().await.unwrap();
        let (ssl, user): (bool, String) =
            sqlx::query_as("select s.ssl, current_user::text from pg_stat_ssl s where s.pid = pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert!(ssl, "the application role's connection is encrypted");
        assert_eq!(user, "tenantry_app");
    }
}
