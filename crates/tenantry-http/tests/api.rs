//! The API's behaviour through the real router, on both stores: the seed's curl sequence,
//! concurrency control, keys, errors, request ids, docs and metrics.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;

use tenantry_app::ErrorCode;
use tenantry_app::KeyOwner;
use tenantry_app::ports::Store;
use tenantry_domain::UserId;
use tenantry_http::ServerConfig;

use common::{World, assert_problem};

/// Seed 004's "Example API Calls", in order, with the bearer header added.
async fn seed_curl_sequence(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = Some(w.admin.as_str());
    let r = w
        .call(
            Method::POST,
            "/tenants",
            admin,
            Some(json!({
                "tenant_id": "finance_dept", "tenant_name": "Finance Department", "tier": "platinum",
                "max_users": 100, "max_documents": 50000, "max_queries_per_day": 10000,
                "sla_target": 0.9999, "support_level": "24/7"
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["tenant_id"], "finance_dept");
    assert_eq!(r.body["tenant_name"], "Finance Department");
    assert_eq!(r.body["max_queries_per_day"], 10000);
    assert_eq!(r.body["support_level"], "24/7");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.headers["location"], "/tenants/finance_dept");

    let r = w.call(Method::GET, "/tenants/finance_dept", admin, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["tier"], "platinum");
    assert_eq!(r.headers["etag"], "\"1\"");

    let r = w.call(Method::GET, "/tenants", admin, None).await;
    let ids: Vec<&str> =
        r.body["tenants"].as_array().unwrap().iter().map(|t| t["tenant_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["finance_dept", "other-co"]);
    let r = w.call(Method::GET, "/tenants?status=active", admin, None).await;
    assert_eq!(r.body["tenants"].as_array().unwrap().len(), 2);
    let r = w.call(Method::GET, "/tenants?tier=platinum", admin, None).await;
    assert_eq!(r.body["tenants"].as_array().unwrap().len(), 1);

    let r = w.call(Method::POST, "/tenants/finance_dept/suspend", admin, None).await;
    assert_eq!((r.status.as_u16(), r.body["status"].as_str()), (200, Some("suspended")), "{}", r.text);
    assert!(r.body["status_reason"].as_str().unwrap().contains("platform_admin:ops-admin"), "{}", r.text);
    let r = w.call(Method::POST, "/tenants/finance_dept/activate", admin, None).await;
    assert_eq!(r.body["status"], "active");

    let r = w
        .call(
            Method::POST,
            "/feature-flags",
            admin,
            Some(
                json!({"feature_name": "advanced_analytics", "enabled": true, "scope": "tier", "scope_id": "platinum"}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = w.call(Method::GET, "/feature-flags/finance_dept/advanced_analytics", admin, None).await;
    assert_eq!(r.body["enabled"], true, "{}", r.text);
    assert_eq!(r.body["reason"], "tier_default");

    let r = w
        .call(
            Method::POST,
            "/tenants/finance_dept/health",
            admin,
            Some(json!({"latency_p95": 350.5, "error_rate": 0.01, "query_success_rate": 0.98, "storage_utilization": 0.75})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["health_score"].as_f64().unwrap() <= 100.0);
    assert!(r.body["health_class"].is_string());

    let r = w.call(Method::GET, "/statistics", admin, None).await;
    assert_eq!(r.body["total_tenants"], 2, "{}", r.text);
    assert_eq!(r.body["by_tier"]["platinum"], 1);
    assert_eq!(r.body["by_status"]["active"], 2);
    assert!(r.body["health_distribution"].is_object());
}

/// Seed 004: Alice is a Finance analyst and a Legal reviewer; `GET /tenants?user_id=` lists both.
async fn user_lists_the_tenants_they_can_act_in(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = Some(w.admin.as_str());
    for (id, name) in [("finance_dept", "Finance"), ("legal_dept", "Legal"), ("hr_ops", "HR")] {
        let r = w
            .call(Method::POST, "/tenants", admin, Some(json!({"tenant_id": id, "tenant_name": name, "tier": "gold"})))
            .await;
        assert_eq!(r.status, 201);
    }
    let r = w
        .call(Method::POST, "/users", admin, Some(json!({"user_id": "alice.johnson", "display_name": "Alice Johnson"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (tenant, role) in [("finance_dept", "analyst"), ("legal_dept", "reviewer")] {
        let r = w
            .call(
                Method::POST,
                &format!("/tenants/{tenant}/members"),
                admin,
                Some(json!({"user_id": "alice.johnson", "role": role})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = w.call(Method::POST, "/keys", admin, Some(json!({"user_id": "alice.johnson", "name": "laptop"}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    let alice = r.body["token"].as_str().unwrap().to_owned();

    for token in [alice.as_str(), w.admin.as_str()] {
        let r = w.call(Method::GET, "/tenants?user_id=alice.johnson", Some(token), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let got: Vec<(String, String)> = r.body["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["tenant_id"].as_str().unwrap().to_owned(), t["role"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(got, [("finance_dept".into(), "analyst".into()), ("legal_dept".into(), "reviewer".into())]);
    }
    // Alice may not list someone else's tenants, nor all tenants, nor read HR
    assert_problem(&w.call(Method::GET, "/tenants?user_id=u-admin", Some(&alice), None).await, 403, "forbidden");
    assert_problem(&w.call(Method::GET, "/tenants", Some(&alice), None).await, 403, "forbidden");
    let r = w.call(Method::GET, "/tenants/hr_ops", Some(&alice), None).await;
    assert_problem(&r, 403, "forbidden");
    // and a tenant that does not exist looks exactly the same: no existence oracle
    let ghost = w.call(Method::GET, "/tenants/ghost_dept", Some(&alice), None).await;
    assert_problem(&ghost, 403, "forbidden");
    assert_eq!(
        r.body["detail"].as_str().unwrap().replace("hr_ops", "X"),
        ghost.body["detail"].as_str().unwrap().replace("ghost_dept", "X")
    );
    // her role gates writes: an analyst records health in Finance, a reviewer cannot in Legal
    let health =
        json!({"latency_p95": 100.0, "error_rate": 0.0, "query_success_rate": 1.0, "storage_utilization": 0.1});
    let r = w.call(Method::POST, "/tenants/finance_dept/health", Some(&alice), Some(health.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_problem(
        &w.call(Method::POST, "/tenants/legal_dept/health", Some(&alice), Some(health)).await,
        403,
        "forbidden",
    );
    // and a reviewer reads Legal's audit trail, where her reads are recorded with her as actor
    let r = w.call(Method::GET, "/tenants/legal_dept", Some(&alice), None).await;
    assert_eq!(r.status, 200);
    let r = w.call(Method::GET, "/tenants/legal_dept/history", Some(&alice), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reads: Vec<&serde_json::Value> =
        r.body.as_array().unwrap().iter().filter(|e| e["operation"] == "tenant.read").collect();
    assert!(reads.iter().any(|e| e["actor"] == "user:alice.johnson"), "{}", r.text);
    let r = w.call(Method::GET, "/me", Some(&alice), None).await;
    assert_eq!(r.body["memberships"].as_array().unwrap().len(), 2, "{}", r.text);
}

async fn if_match_gives_optimistic_concurrency(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = Some(w.admin.as_str());
    let t = w.fresh_tenant().await;
    let path = format!("/tenants/{t}");
    let etag = w.call(Method::GET, &path, admin, None).await.headers["etag"].to_str().unwrap().to_owned();
    let patch = |name: &str| {
        Request::builder()
            .method(Method::PATCH)
            .uri(&path)
            .header("authorization", format!("Bearer {}", w.admin))
            .header("content-type", "application/json")
            .header("if-match", etag.clone())
            .body(Body::from(json!({"tenant_name": name}).to_string()))
            .unwrap()
    };
    let first = w.send(patch("First")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_ne!(first.headers["etag"].to_str().unwrap(), etag);
    // the second writer read the same version: refused, nothing lost
    let second = w.send(patch("Second")).await;
    assert_problem(&second, 412, "version_conflict");
    assert_eq!(w.call(Method::GET, &path, admin, None).await.body["tenant_name"], "First");
    let bad = Request::builder()
        .method(Method::PATCH)
        .uri(&path)
        .header("authorization", format!("Bearer {}", w.admin))
        .header("content-type", "application/json")
        .header("if-match", "yesterday")
        .body(Body::from(json!({"tenant_name": "x"}).to_string()))
        .unwrap();
    assert_problem(&w.send(bad).await, 400, "malformed_request");
}

async fn keys_are_revocable_and_expire(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = Some(w.admin.as_str());
    let r = w
        .call(Method::POST, "/keys", admin, Some(json!({"user_id": "u-viewer", "expires_at": "2026-03-02T00:00:00Z"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let key_id = r.body["key_id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("tnt_{key_id}_")));
    // listed without its secret
    let r = w.call(Method::GET, "/keys?owner=u-viewer", admin, None).await;
    assert!(r.text.contains(&key_id) && !r.text.contains(&token), "{}", r.text);
    assert!(!r.text.contains("digest"), "{}", r.text);
    assert_eq!(w.call(Method::GET, "/me", Some(&token), None).await.status, 200);
    // expiry (the clock of the world starts 2026-03-01 09:30)
    w.clock.advance(time::Duration::days(1));
    assert_problem(&w.call(Method::GET, "/me", Some(&token), None).await, 401, "unauthenticated");
    // revocation takes effect on the next request
    let other = w
        .directory
        .create_key(&w.operator, KeyOwner::User(UserId::parse("u-viewer").unwrap()), "", None)
        .await
        .unwrap();
    assert_eq!(w.call(Method::GET, "/me", Some(&other.token), None).await.status, 200);
    let r = w.call(Method::DELETE, &format!("/keys/{}", other.key.id), admin, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = w.call(Method::GET, "/me", Some(&other.token), None).await;
    assert_problem(&r, 401, "unauthenticated");
    assert!(r.body["detail"].as_str().unwrap().contains("revoked"));
    assert!(r.headers.contains_key("www-authenticate"));
    assert_problem(&w.call(Method::DELETE, "/keys/nokey", admin, None).await, 404, "key_not_found");
    // garbage credentials
    for header in ["Bearer", "Basic dXNlcjpwYXNz", "Bearer tnt_nope", "bearer", "Token abc"] {
        let req = Request::builder().uri("/me").header("authorization", header).body(Body::empty()).unwrap();
        assert_problem(&w.send(req).await, 401, "unauthenticated");
    }
}

async fn bootstrap_admin_key_is_installed_once(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let token = "deployment-secret-0123456789abcdefghijklmnop";
    assert!(w.directory.bootstrap_admin_key(token).await.unwrap());
    assert!(!w.directory.bootstrap_admin_key(token).await.unwrap(), "idempotent");
    let r = w.call(Method::GET, "/statistics", Some(token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(w.directory.bootstrap_admin_key("short").await.unwrap_err().code(), ErrorCode::InvalidInput);
}

async fn malformed_requests_get_problem_documents(store: Arc<dyn Store>) {
    let config = ServerConfig { body_limit_bytes: 4096, ..ServerConfig::default() };
    let w = World::with_config(store, &config).await;
    let auth = format!("Bearer {}", w.admin);
    let post = |body: Vec<u8>, content_type: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/tenants")
            .header("authorization", &auth)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    assert_problem(&w.send(post(b"{\"tenant_id\": ".to_vec(), "application/json")).await, 400, "malformed_request");
    let r = w
        .send(post(
            br#"{"tenant_id":"a1","tenant_name":"A","tier":"gold","colour":"red"}"#.to_vec(),
            "application/json",
        ))
        .await;
    assert_problem(&r, 422, "invalid_input");
    assert!(r.body["detail"].as_str().unwrap().contains("colour"), "{}", r.text);
    let r = w
        .send(post(
            br#"{"tenant_id":"a1","tenant_name":"A","tier":"gold","max_users":"many"}"#.to_vec(),
            "application/json",
        ))
        .await;
    assert_problem(&r, 422, "invalid_input");
    let r =
        w.send(post(br#"{"tenant_id":"Bad Id!","tenant_name":"A","tier":"gold"}"#.to_vec(), "application/json")).await;
    assert_problem(&r, 422, "invalid_input");
    assert!(r.body["detail"].as_str().unwrap().contains("lowercase"), "{}", r.text);
    assert_problem(&w.send(post(b"tenant_id=a1".to_vec(), "text/plain")).await, 415, "unsupported_media_type");
    assert_problem(&w.send(post(vec![b' '; 10_000], "application/json")).await, 413, "payload_too_large");
    let r = w
        .call(
            Method::POST,
            "/tenants",
            Some(&w.admin),
            Some(json!({"tenant_id": "a1", "tenant_name": "A", "tier": "nope"})),
        )
        .await;
    assert_problem(&r, 404, "tier_not_found");
    let r = w.call(Method::PUT, "/tenants", Some(&w.admin), None).await;
    assert_problem(&r, 405, "method_not_allowed");
    assert!(r.headers.contains_key("allow"));
    assert_problem(&w.call(Method::GET, "/nowhere", Some(&w.admin), None).await, 404, "route_not_found");
    let t = w.fresh_tenant().await;
    let r = w.call(Method::POST, &format!("/tenants/{t}/archive"), Some(&w.admin), None).await;
    assert_problem(&r, 409, "invalid_transition");
    assert!(r.body["detail"].as_str().unwrap().contains("suspended"), "names the allowed targets: {}", r.text);
    let r = w
        .call(
            Method::POST,
            "/tenants",
            Some(&w.admin),
            Some(json!({"tenant_id": t, "tenant_name": "A", "tier": "gold"})),
        )
        .await;
    assert_problem(&r, 409, "already_exists");
    assert_problem(&w.call(Method::GET, "/tenants?limit=5000", Some(&w.admin), None).await, 422, "invalid_input");
    assert_problem(&w.call(Method::GET, "/tenants?colour=red", Some(&w.admin), None).await, 400, "malformed_request");
}

async fn probes_docs_and_request_ids(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // probes need no credentials
    assert_eq!(w.call(Method::GET, "/healthz", None, None).await.status, 200);
    let r = w.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["store"].is_string());
    // a request id is generated and echoed, or kept when the client sends one
    let r = w.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.headers["x-request-id"].to_str().unwrap().len(), 36);
    let req = Request::builder().uri("/healthz").header("x-request-id", "client-chosen-1").body(Body::empty()).unwrap();
    assert_eq!(w.send(req).await.headers["x-request-id"], "client-chosen-1");
    // the OpenAPI document lists every route the router serves
    let r = w.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let paths = r.body["paths"].as_object().unwrap();
    for path in [
        "/tenants",
        "/tenants/{tenant_id}",
        "/tenants/{tenant_id}/suspend",
        "/tenants/{tenant_id}/activate",
        "/tenants/{tenant_id}/archive",
        "/tenants/{tenant_id}/migrate",
        "/tenants/{tenant_id}/health",
        "/tenants/{tenant_id}/history",
        "/tenants/{tenant_id}/members",
        "/tenants/{tenant_id}/members/{user_id}",
        "/feature-flags",
        "/feature-flags/{tenant_id}",
        "/feature-flags/{tenant_id}/{feature}",
        "/statistics",
        "/tiers",
        "/tiers/{name}",
        "/me",
        "/users",
        "/keys",
        "/keys/{key_id}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/audit",
        "/flag-definitions",
        "/flag-definitions/stale",
        "/ofrep/v1/evaluate/flags/{key}",
        "/ofrep/v1/evaluate/flags",
        "/ofrep/v1/configuration",
        "/tenants/{tenant_id}/documents",
        "/tenants/{tenant_id}/documents/{document_id}",
        "/tenants/{tenant_id}/documents/{document_id}/text",
        "/tenants/{tenant_id}/query",
        "/tenants/{tenant_id}/usage",
        "/tenants/{tenant_id}/placement",
        "/indexes",
        "/costs",
        "/costs/chargeback",
        "/tenants/{tenant_id}/costs",
        "/costs/meters",
        "/costs/prices",
        "/costs/prices/presets/{preset}",
        "/costs/fixed",
        "/costs/fixed/{item}",
        "/costs/bills",
        "/costs/reconcile",
        "/costs/budgets/check",
        "/readiness",
    ] {
        assert!(paths.contains_key(path), "openapi.json lacks {path}");
    }
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());
    // Swagger UI is served from the binary (works offline)
    let r = w.call(Method::GET, "/docs/", None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("swagger"), "{}", &r.text[..r.text.len().min(200)]);
    let r = w.call(Method::GET, "/docs/swagger-ui-bundle.js", None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.len() > 100_000, "the bundle is vendored");
    // metrics: route templates, per-tenant counts, pool stats
    let t = w.fresh_tenant().await;
    assert_eq!(w.call(Method::GET, &format!("/tenants/{t}"), Some(&w.admin), None).await.status, 200);
    let bad_query =
        w.call(Method::POST, &format!("/tenants/{t}/query"), Some(&w.admin), Some(serde_json::json!({}))).await;
    assert_eq!(bad_query.status, 422);
    // an outsider's refused call is not attributed to the tenant
    assert_eq!(w.call(Method::GET, &format!("/tenants/{t}"), Some(&w.outsider), None).await.status, 403);
    let r = w.call(Method::GET, "/metrics", Some(&w.admin), None).await;
    for outcome in ["ok\"} 1", "client_error\"} 1", "server_error\"} 0"] {
        let line = format!("tenantry_tenant_http_requests_total{{tenant=\"{t}\",outcome=\"{outcome}");
        assert!(r.text.contains(&line), "{line} in {}", r.text);
    }
    assert!(
        r.text.contains(&format!("tenantry_tenant_http_request_duration_seconds_count{{tenant=\"{t}\"}} 2")),
        "{}",
        r.text
    );
    assert_eq!(r.status, 200);
    assert!(
        r.text.contains("tenantry_http_requests_total{method=\"GET\",route=\"/tenants/{tenant_id}\",status=\"200\"} 1"),
        "{}",
        r.text
    );
    // the read and the refused query were authorized into the tenant; the outsider's call was not
    assert!(r.text.contains(&format!("tenantry_tenant_requests_total{{tenant=\"{t}\"}} 2")), "{}", r.text);
    assert!(r.text.contains("tenantry_http_request_duration_seconds_bucket"), "{}", r.text);
    assert!(r.text.contains("tenantry_store_pool_max_connections"), "{}", r.text);
}

/// `GET /audit`: request ids are recorded, a tenant's reviewer reads only that tenant, entries carry
/// their hash and signature.
async fn audit_entries_carry_request_ids_and_stay_in_their_tenant(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.fresh_tenant().await;
    let other = w.fresh_tenant().await;
    let req = Request::builder()
        .method(Method::PATCH)
        .uri(format!("/tenants/{t}"))
        .header("authorization", format!("Bearer {}", w.admin))
        .header("content-type", "application/json")
        .header("x-request-id", "req-rename-42")
        .body(Body::from(json!({"tenant_name": "Renamed"}).to_string()))
        .unwrap();
    assert_eq!(w.send(req).await.status, 200);
    let reviewer = w.token_of(tenantry_domain::Role::Reviewer).to_owned();
    let r = w.call(Method::GET, &format!("/audit?tenant_id={t}"), Some(&reviewer), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let entries = r.body["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["tenant_id"] == t.as_str()), "{}", r.text);
    let rename = entries.iter().find(|e| e["operation"] == "tenant.update").expect("the rename is recorded");
    assert_eq!(rename["request_id"], "req-rename-42");
    assert_eq!(rename["actor"], "platform_admin:ops-admin");
    assert_eq!(rename["hash"].as_str().unwrap().len(), 64);
    assert!(!r.text.contains(&other), "another tenant's entries leaked: {}", r.text);
    // the tenant's view numbers its own entries 1, 2, 3… and links each to the tenant's previous one
    let positions: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(positions, (1..=positions.len() as i64).collect::<Vec<_>>(), "{}", r.text);
    assert!(entries.windows(2).all(|p| p[1]["prev_hash"] == p[0]["hash"]), "{}", r.text);
    // the reviewer's read is itself recorded, with the reviewer as actor
    let r = w.call(Method::GET, &format!("/audit?tenant_id={t}&limit=1000"), Some(&w.admin), None).await;
    assert!(
        r.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "audit.read" && e["actor"] == "user:u-reviewer"),
        "{}",
        r.text
    );
    // pagination and the platform view
    let r = w.call(Method::GET, "/audit?limit=2", Some(&w.admin), None).await;
    assert_eq!(r.body["entries"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next_after_seq"], r.body["entries"][1]["seq"]);
    assert_problem(&w.call(Method::GET, "/audit?since=yesterday", Some(&w.admin), None).await, 422, "invalid_input");
}

/// Rollouts, flag metadata, versions and the stale report over HTTP.
async fn flags_roll_out_and_explain_themselves(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = Some(w.admin.as_str());
    let t = w.fresh_tenant().await;
    let body = json!({
        "feature_name": "ranking_v2", "enabled": true, "scope": "tier", "scope_id": "silver",
        "rollout_percentage": 100, "description": "new ranking", "owner": "search-team",
        "expires_at": "2026-02-01T00:00:00Z"
    });
    let r = w.call(Method::POST, "/feature-flags", admin, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["rollout_percentage"], 100);
    let r = w.call(Method::GET, &format!("/feature-flags/{t}/ranking_v2"), admin, None).await;
    assert_eq!(
        (r.body["enabled"].as_bool(), r.body["openfeature_reason"].as_str()),
        (Some(true), Some("SPLIT")),
        "{}",
        r.text
    );
    assert_eq!(r.body["version"], 1);
    let r = w
        .call(
            Method::POST,
            "/feature-flags",
            admin,
            Some(json!({"feature_name": "everyone", "enabled": true, "scope": "global"})),
        )
        .await;
    assert_eq!(r.status, 200);
    // type is fixed at first definition
    let r = w
        .call(
            Method::POST,
            "/feature-flags",
            admin,
            Some(json!({"feature_name": "everyone", "value": "yes", "scope": "global"})),
        )
        .await;
    assert_problem(&r, 422, "invalid_input");
    assert_problem(
        &w.call(
            Method::POST,
            "/feature-flags",
            admin,
            Some(json!({"feature_name": "x", "enabled": true, "scope": "global", "rollout_percentage": 101})),
        )
        .await,
        422,
        "invalid_input",
    );
    let r = w.call(Method::GET, "/flag-definitions", admin, None).await;
    let ranking = r.body.as_array().unwrap().iter().find(|d| d["feature_name"] == "ranking_v2").unwrap().clone();
    assert_eq!((ranking["kind"].as_str(), ranking["owner"].as_str()), (Some("boolean"), Some("search-team")));
    // the world's clock is 2026-03-01: ranking_v2 expired a month ago; "everyone" switches nothing
    let r = w.call(Method::GET, "/flag-definitions/stale", admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reasons = |k: &str| -> Vec<String> {
        r.body.as_array().unwrap().iter().find(|d| d["feature_name"] == k).map_or(vec![], |d| {
            d["reasons"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
        })
    };
    assert_eq!(reasons("ranking_v2"), ["past_expiry"]);
    assert_eq!(reasons("everyone"), ["same_for_every_tenant"]);
}

/// The data plane over HTTP: ingest (single, batch), list with a cursor, read, text, query with a
/// filter, delete; another tenant's member and another tenant's document id get nothing; quotas
/// answer 403 with the numbers; the query limit answers 429 with `Retry-After`.
async fn documents_over_http(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.fresh_tenant().await;
    let analyst = Some(w.token_of(tenantry_domain::Role::Analyst));
    let viewer = Some(w.token_of(tenantry_domain::Role::Viewer));
    let admin = Some(w.admin.as_str());
    let path = |p: &str| format!("/tenants/{t}{p}");

    let r = w
        .call(
            Method::POST,
            &path("/documents"),
            analyst,
            Some(json!({"title": "Invoices", "text": "invoice payment terms", "metadata": {"lang": "en"}, "client_id": "inv-1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = r.body["documents"][0]["document_id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"].to_str().unwrap(), path(&format!("/documents/{first}")));
    assert_eq!(r.body["documents"][0]["embedding_model"], "tenantry-local-hash-v1");
    let batch = json!({"documents": [
        {"title": "Privacy", "text": "privacy policy for records", "metadata": {"lang": "de"}},
        {"title": "Payroll", "text": "payroll budget ledger"}]});
    let r = w.call(Method::POST, &path("/documents"), analyst, Some(batch)).await;
    assert_eq!((r.status.as_u16(), r.body["documents"].as_array().unwrap().len()), (201, 2), "{}", r.text);
    // a viewer may read and query but not ingest; a repeated client id is a conflict
    let r = w.call(Method::POST, &path("/documents"), viewer, Some(json!({"title": "x", "text": "y"}))).await;
    assert_problem(&r, 403, "forbidden");
    let r = w
        .call(
            Method::POST,
            &path("/documents"),
            analyst,
            Some(json!({"title": "x", "text": "y", "client_id": "inv-1"})),
        )
        .await;
    assert_problem(&r, 409, "already_exists");
    let r =
        w.call(Method::POST, &path("/documents"), analyst, Some(json!({"title": "x", "text": "y", "extra": 1}))).await;
    assert_problem(&r, 422, "invalid_input");

    let r = w.call(Method::GET, &format!("{}?limit=2", path("/documents")), viewer, None).await;
    assert_eq!(r.body["documents"].as_array().unwrap().len(), 2, "{}", r.text);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = w.call(Method::GET, &format!("{}?limit=2&after={cursor}", path("/documents")), viewer, None).await;
    assert_eq!(r.body["documents"].as_array().unwrap().len(), 1, "{}", r.text);
    assert!(r.body.get("next_cursor").is_none());

    let r = w.call(Method::POST, &path("/query"), viewer, Some(json!({"text": "invoice payment", "top_k": 2}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"][0]["document_id"], first.as_str());
    assert_eq!(r.body["results"][0]["title"], "Invoices");
    let r =
        w.call(Method::POST, &path("/query"), viewer, Some(json!({"text": "invoice", "filter": {"lang": "de"}}))).await;
    assert!(r.body["results"].as_array().unwrap().iter().all(|h| h["metadata"]["lang"] == "de"), "{}", r.text);
    let r = w.call(Method::POST, &path("/query"), viewer, Some(json!({"text": "x", "top_k": 500}))).await;
    assert_problem(&r, 422, "invalid_input");
    let r = w.call(Method::POST, &path("/query"), viewer, Some(json!({"vector": [0.5, 0.5]}))).await;
    assert_problem(&r, 422, "invalid_input");

    let r = w.call(Method::GET, &path(&format!("/documents/{first}/text")), viewer, None).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "invoice payment terms"));
    let r = w.call(Method::GET, &path("/placement"), viewer, None).await;
    assert_eq!(
        (r.body["index"].as_str(), r.body["kind"].as_str()),
        (Some("shared-1"), Some("namespace")),
        "{}",
        r.text
    );
    let r = w.call(Method::GET, "/indexes", admin, None).await;
    assert!(r.body["indexes"].as_array().unwrap().iter().any(|i| i["name"] == "shared-1"), "{}", r.text);
    let r = w.call(Method::GET, "/metrics", admin, None).await;
    assert!(
        r.text.contains("tenantry_index_namespaces{index=\"shared-1\",kind=\"shared\",state=\"capacity\"} 100"),
        "{}",
        r.text
    );
    assert!(r.text.contains("tenantry_index_capacity_alerts_total 0"), "{}", r.text);

    // another tenant: its admin cannot reach t; t's document id through the other tenant is absent
    let r = w.call(Method::GET, &path("/documents"), Some(&w.outsider), None).await;
    assert_problem(&r, 403, "forbidden");
    let r = w.call(Method::GET, &format!("/tenants/other-co/documents/{first}"), Some(&w.outsider), None).await;
    assert_problem(&r, 404, "document_not_found");
    let r = w.call(Method::DELETE, &format!("/tenants/other-co/documents/{first}"), Some(&w.outsider), None).await;
    assert_problem(&r, 404, "document_not_found");
    let r = w
        .call(Method::POST, "/tenants/other-co/query", Some(&w.outsider), Some(json!({"text": "invoice payment"})))
        .await;
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(0), "{}", r.text);

    let r = w.call(Method::DELETE, &path(&format!("/documents/{first}")), analyst, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = w.call(Method::GET, &path(&format!("/documents/{first}")), viewer, None).await;
    assert_problem(&r, 404, "document_not_found");

    // quota: 403 quota_exceeded with the numbers
    let r = w.call(Method::PATCH, &format!("/tenants/{t}"), admin, Some(json!({"max_documents": 2}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = w.call(Method::POST, &path("/documents"), analyst, Some(json!({"title": "x", "text": "y"}))).await;
    assert_problem(&r, 403, "quota_exceeded");
    assert_eq!(
        (r.body["limit"].as_i64(), r.body["current"].as_i64(), r.body["resource"].as_str()),
        (Some(2), Some(2), Some("documents"))
    );
    let r = w.call(Method::GET, &path("/usage"), viewer, None).await;
    assert_eq!((r.body["documents"].as_i64(), r.body["max_documents"].as_i64()), (Some(2), Some(2)), "{}", r.text);

    // rate limit: 429 with Retry-After
    let r = w.call(Method::PATCH, &format!("/tenants/{t}"), admin, Some(json!({"rate_limit_per_minute": 1}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let q = || Some(json!({"text": "payroll"}));
    let mut last = w.call(Method::POST, &path("/query"), viewer, q()).await;
    for _ in 0..3 {
        last = w.call(Method::POST, &path("/query"), viewer, q()).await;
    }
    assert_problem(&last, 429, "rate_limited");
    let wait: u64 = last.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(last.body["retry_after_seconds"].as_u64(), Some(wait));

    // a suspended tenant is refused with its own code
    let r = w.call(Method::POST, &format!("/tenants/{t}/suspend"), admin, Some(json!({"reason": "unpaid"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = w.call(Method::GET, &path("/documents"), viewer, None).await;
    assert_problem(&r, 423, "tenant_inactive");
}

/// An embedder that takes its time: the local one, answering after `delay`.
struct SlowEmbedder {
    inner: tenantry_app::LocalEmbedder,
    delay: std::time::Duration,
}

#[async_trait::async_trait]
impl tenantry_app::Embedder for SlowEmbedder {
    fn model(&self) -> &str {
        self.inner.model()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    async fn embed(&self, texts: &[&str]) -> Result<Vec<tenantry_app::Embedded>, anyhow::Error> {
        tokio::time::sleep(self.delay).await;
        self.inner.embed(texts).await
    }
}

/// A request that outlives the server's timeout (a query whose embedding takes 2 s, a timeout of
/// 100 ms) is answered 503 `request_timeout`, as a problem document.
async fn a_request_past_the_timeout_is_answered_503(store: Arc<dyn Store>) {
    let config = ServerConfig { request_timeout: std::time::Duration::from_millis(100), ..Default::default() };
    let slow = SlowEmbedder { inner: tenantry_app::LocalEmbedder::new(64), delay: std::time::Duration::from_secs(2) };
    let w = World::build(store, &config, Default::default(), Arc::new(slow)).await;
    let t = w.fresh_tenant().await;
    let body = json!({"text": "revenue plan", "top_k": 3});
    let r = w.call(Method::POST, &format!("/tenants/{t}/query"), Some(&w.admin), Some(body)).await;
    assert_problem(&r, 503, "request_timeout");
    assert!(r.body["detail"].as_str().unwrap().contains("longer than"), "{}", r.text);
}

/// Answered data-plane requests are metered (an API call each, the work's own meters, server
/// time); refused ones are not. A tenant's reviewers read its costs; its viewers and other
/// tenants' admins are refused.
async fn data_plane_requests_are_metered_and_costs_stay_in_their_tenant(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.fresh_tenant().await;
    let price = json!({"meter": "api_calls", "provider": "gateway", "currency": "USD", "unit_price": "0.10",
                       "effective_from": "2026-01-01"});
    assert_eq!(w.call(Method::POST, "/costs/prices", Some(&w.admin), Some(price)).await.status, 201);
    let analyst = w.token_of(tenantry_domain::Role::Analyst);
    let viewer = w.token_of(tenantry_domain::Role::Viewer);
    let doc = json!({"title": "Plan", "text": "the quarterly revenue plan"});
    let r = w.call(Method::POST, &format!("/tenants/{t}/documents"), Some(analyst), Some(doc.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = w.call(Method::POST, &format!("/tenants/{t}/query"), Some(viewer), Some(json!({"text": "revenue"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(w.call(Method::GET, &format!("/tenants/{t}/documents"), Some(viewer), None).await.status, 200);
    // refused: not billed
    let r = w.call(Method::POST, &format!("/tenants/{t}/documents"), Some(viewer), Some(doc)).await;
    assert_eq!(r.status, 403);

    let path = format!("/tenants/{t}/costs?month=2026-03");
    let r = w.call(Method::GET, &path, Some(w.token_of(tenantry_domain::Role::Reviewer)), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let lines = r.body["cost"]["lines"].as_array().unwrap();
    let calls = lines.iter().find(|l| l["meter"] == "api_calls").unwrap();
    assert_eq!((calls["quantity"].as_u64(), calls["amount_minor"].as_i64()), (Some(3), Some(30)), "{}", r.text);
    let unpriced = |meter: &str| {
        r.body["unpriced"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["meter"] == meter)
            .map(|u| u["quantity"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(unpriced("vector_queries"), 1);
    assert!(unpriced("embedding_tokens") >= 5, "the document's and the query's tokens");
    assert!(unpriced("compute_micros") >= 3, "each answered request's server time");
    assert!(!r.text.contains("other-co"), "nothing of another tenant: {}", r.text);
    assert_eq!(w.call(Method::GET, &path, Some(viewer), None).await.status, 403);
    assert_eq!(w.call(Method::GET, &path, Some(&w.outsider), None).await.status, 403);
    let r = w
        .call(
            Method::GET,
            "/tenants/other-co/costs?month=2026-03",
            Some(w.token_of(tenantry_domain::Role::Reviewer)),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "a reviewer of one tenant reads no other's costs");
}

on_both_stores!(
    data_plane_requests_are_metered_and_costs_stay_in_their_tenant,
    a_request_past_the_timeout_is_answered_503,
    documents_over_http,
    flags_roll_out_and_explain_themselves,
    audit_entries_carry_request_ids_and_stay_in_their_tenant,
    seed_curl_sequence,
    user_lists_the_tenants_they_can_act_in,
    if_match_gives_optimistic_concurrency,
    keys_are_revocable_and_expire,
    bootstrap_admin_key_is_installed_once,
    malformed_requests_get_problem_documents,
    probes_docs_and_request_ids,
);
