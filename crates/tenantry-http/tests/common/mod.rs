//! A running API over a real store (SQLite in memory, or a fresh PostgreSQL database as the
//! application role), with a platform-admin key, role-holding users and an outsider.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use tenantry_app::ports::Store;
use tenantry_app::{AuditKey, Directory, KeyOwner, PlatformScope, Registry};
use tenantry_contract::ManualClock;
use tenantry_domain::{NewTenant, Role, TenantId, TierName, UserId};
use tenantry_http::ServerConfig;

pub mod conformance;

pub async fn sqlite() -> Option<Arc<dyn Store>> {
    Some(Arc::new(tenantry_store_sqlite::SqliteStore::open_temporary().await.expect("open sqlite")))
}

pub async fn postgres() -> Option<Arc<dyn Store>> {
    Some(Arc::new(tenantry_store_postgres::testing::fresh_store().await?))
}

/// One test per store for each listed case: `async fn case(store: Arc<dyn Store>)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = super::common::sqlite().await.expect("sqlite");
                    super::$case(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(store) = super::common::postgres().await else { return };
                    super::$case(store).await;
                }
            )*
        }
    };
}

static WORLDS: AtomicU32 = AtomicU32::new(0);

pub const ROLE_USERS: [(Role, &str); 4] = [
    (Role::Viewer, "u-viewer"),
    (Role::Analyst, "u-analyst"),
    (Role::Reviewer, "u-reviewer"),
    (Role::Admin, "u-admin"),
];

pub struct World {
    pub app: Router,
    pub registry: Registry,
    pub data: tenantry_app::DataPlane,
    pub directory: Directory,
    pub answers: tenantry_app::Answers,
    pub clock: Arc<ManualClock>,
    pub operator: PlatformScope,
    /// Platform-admin token.
    pub admin: String,
    /// Tokens of the role users, in `ROLE_USERS` order.
    pub role_tokens: Vec<(Role, String)>,
    /// Admin of tenant `other-co` only.
    pub outsider: String,
    counter: AtomicU32,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl World {
    pub async fn new(store: Arc<dyn Store>) -> World {
        Self::with_config(store, &ServerConfig::default()).await
    }

    pub async fn with_config(store: Arc<dyn Store>, config: &ServerConfig) -> World {
        Self::with(store, config, tenantry_app::CacheConfig::default()).await
    }

    /// A world whose snapshot cache has `cache`'s TTLs and stale window.
    pub async fn with(store: Arc<dyn Store>, config: &ServerConfig, cache: tenantry_app::CacheConfig) -> World {
        Self::build(store, config, cache, Arc::new(tenantry_app::LocalEmbedder::new(64))).await
    }

    /// A world with its own embedder (e.g. a stand-in that takes its time).
    pub async fn build(
        store: Arc<dyn Store>,
        config: &ServerConfig,
        cache: tenantry_app::CacheConfig,
        embedder: Arc<dyn tenantry_app::Embedder>,
    ) -> World {
        Self::assemble(store, config, cache, embedder, tenantry_app::Providers::default()).await
    }

    /// A world whose answers may use `providers`.
    pub async fn with_providers(store: Arc<dyn Store>, providers: tenantry_app::Providers) -> World {
        let embedder = Arc::new(tenantry_app::LocalEmbedder::new(64));
        Self::assemble(store, &ServerConfig::default(), tenantry_app::CacheConfig::default(), embedder, providers).await
    }

    async fn assemble(
        store: Arc<dyn Store>,
        config: &ServerConfig,
        cache: tenantry_app::CacheConfig,
        embedder: Arc<dyn tenantry_app::Embedder>,
        providers: tenantry_app::Providers,
    ) -> World {
        let clock = Arc::new(ManualClock::new());
        let dir = std::env::temp_dir().join(format!(
            "tenantry-http-objects-{}-{}",
            std::process::id(),
            WORLDS.fetch_add(1, Ordering::Relaxed)
        ));
        let blobs = Arc::new(tenantry_blob::ObjectBlobStore::open(&tenantry_blob::BlobConfig::Local(dir)).unwrap());
        // as `serve` runs it (the composition root): the runtime path reads an in-process
        // snapshot, invalidated on write
        let key = Arc::new(AuditKey::from_seed([3; 32]));
        let built = tenantry_app::App::build(tenantry_app::AppConfig {
            audit_key: Some(key),
            cache,
            providers,
            ..tenantry_app::AppConfig::local(store.clone(), clock.clone(), embedder, blobs)
        })
        .await
        .unwrap();
        let (registry, directory, data) = (built.registry.clone(), built.directory.clone(), built.data.clone());
        let operator = built.operator("test-setup");
        let admin = directory
            .create_key(&operator, KeyOwner::PlatformAdmin(UserId::parse("ops-admin").unwrap()), "tests", None)
            .await
            .unwrap()
            .token;
        let mut role_tokens = Vec::new();
        for (role, user) in ROLE_USERS {
            let id = UserId::parse(user).unwrap();
            directory.create_user(&operator, id.clone(), user).await.unwrap();
            let token = directory.create_key(&operator, KeyOwner::User(id), "tests", None).await.unwrap().token;
            role_tokens.push((role, token));
        }
        let outsider_id = UserId::parse("u-outsider").unwrap();
        directory.create_user(&operator, outsider_id.clone(), "Outsider").await.unwrap();
        directory.create_user(&operator, UserId::parse("u-spare").unwrap(), "Spare").await.unwrap();
        let other = TenantId::parse("other-co").unwrap();
        registry
            .create_tenant(&operator, NewTenant::minimal(other.clone(), "Other Co", TierName::parse("gold").unwrap()))
            .await
            .unwrap();
        directory.put_member(&operator.act_in(other), &outsider_id, Role::Admin).await.unwrap();
        let outsider = directory.create_key(&operator, KeyOwner::User(outsider_id), "tests", None).await.unwrap().token;
        let auditor = built.auditor.clone();
        let answers = built.answers.clone();
        let data_for_world = data.clone();
        let services = tenantry_http::Services { auditor, data, ..tenantry_http::Services::of(&built) };
        let app = tenantry_http::router(services, config);
        World {
            app,
            registry,
            data: data_for_world,
            directory,
            answers,
            clock,
            operator,
            admin,
            role_tokens,
            outsider,
            counter: AtomicU32::new(0),
        }
    }

    pub fn token_of(&self, role: Role) -> &str {
        &self.role_tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    /// A fresh active tenant whose members are the four role users.
    pub async fn fresh_tenant(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = TenantId::parse(&format!("t{n}-co")).unwrap();
        let name = format!("Secret Name {n}");
        self.registry
            .create_tenant(&self.operator, NewTenant::minimal(id.clone(), name, TierName::parse("silver").unwrap()))
            .await
            .unwrap();
        for (role, user) in ROLE_USERS {
            self.directory
                .put_member(&self.operator.act_in(id.clone()), &UserId::parse(user).unwrap(), role)
                .await
                .unwrap();
        }
        id.to_string()
    }

    pub fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends `request` through the router; every response is checked against the OpenAPI
    /// document (see `conformance`).
    pub async fn send(&self, request: Request<Body>) -> Response {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let (parts, request_body) = request.into_parts();
        let sent = request_body.collect().await.expect("read the request body").to_bytes();
        let request = Request::from_parts(parts, Body::from(sent.clone()));
        let response = self.app.clone().oneshot(request).await.expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("read body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(
            headers.get("x-content-type-options").and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "every answer forbids content sniffing: {method} {path} {status}"
        );
        if let Err(mismatch) = conformance::check(&method, &path, status.as_u16(), content_type, &body) {
            conformance::report(&mismatch, &text);
        }
        if status.is_success() {
            let sent: Value = serde_json::from_slice(&sent).unwrap_or(Value::Null);
            if let Err(mismatch) = conformance::check_request(&method, &path, &sent) {
                conformance::report(&mismatch, &text);
            }
        }
        Response { status, headers, body, text }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }
}

/// Asserts the response is a problem document with `code` and a status of its class.
pub fn assert_problem(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "expected {status} {code}, got: {}", r.text);
    assert_eq!(r.code(), code, "{}", r.text);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(ct, "application/problem+json", "{}", r.text);
    assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", r.text);
    assert_eq!(r.body["status"], status, "{}", r.text);
}
