//! OFREP through the real router on both stores, every response checked against the protocol's
//! schema (open-feature/protocol `service/openapi.yaml`, v0.1.0): `evaluationSuccess`,
//! `evaluationFailure`, `flagNotFound`, `bulkEvaluationSuccess`, ETag/304.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

use tenantry_app::ports::{Clock, Store};
use tenantry_domain::{FlagKey, FlagRule, FlagScope, FlagValue, Role, TenantId, TenantStatus, TierName};

use common::World;

const REASONS: [&str; 6] = ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "UNKNOWN"];

/// `evaluationSuccess`: key string; reason, variant strings; metadata values boolean/string/number;
/// value of one of the flag types.
fn check_success(v: &Value) {
    let o = v.as_object().unwrap_or_else(|| panic!("not an object: {v}"));
    assert!(o.get("key").is_some_and(Value::is_string), "{v}");
    assert!(o.get("reason").is_none_or(|r| r.as_str().is_some_and(|r| REASONS.contains(&r))), "{v}");
    assert!(o.contains_key("key"), "key is required: {v}");
    assert!(o.get("variant").is_none_or(Value::is_string), "{v}");
    if let Some(m) = o.get("metadata") {
        let m = m.as_object().unwrap_or_else(|| panic!("metadata not an object: {v}"));
        assert!(m.values().all(|x| x.is_boolean() || x.is_string() || x.is_number()), "{v}");
    }
    // a value of one of the flag types, or none at all (ADR 0006's `codeDefaultFlag`: the client
    // uses its code default) — which Tenantry sends only for a disabled flag
    match o.get("value") {
        Some(value) => {
            assert!(value.is_boolean() || value.is_string() || value.is_number() || value.is_object(), "{v}")
        }
        None => assert_eq!(o.get("reason").and_then(Value::as_str), Some("DISABLED"), "{v}"),
    }
    assert!(o.get("errorCode").is_none(), "{v}");
}

/// `evaluationFailure` / `flagNotFound` / `bulkEvaluationFailure`.
fn check_failure(v: &Value, code: &str, key_required: bool) {
    let o = v.as_object().unwrap_or_else(|| panic!("not an object: {v}"));
    assert_eq!(o.get("errorCode").and_then(Value::as_str), Some(code), "{v}");
    assert!(["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL", "FLAG_NOT_FOUND"].contains(&code));
    assert!(o.get("errorDetails").is_none_or(Value::is_string), "{v}");
    if key_required {
        assert!(o.get("key").is_some_and(Value::is_string), "{v}");
    }
}

fn ctx(tenant: &str) -> Value {
    json!({"context": {"targetingKey": tenant, "plan": "any extra attribute is fine"}})
}

async fn setup(w: &World) -> String {
    let t = w.fresh_tenant().await; // silver
    let k = |s: &str| FlagKey::parse(s).unwrap();
    let r = &w.registry;
    let op = &w.operator;
    r.set_flag(op, FlagScope::Global, k("beta"), FlagValue::Bool(false)).await.unwrap();
    r.set_flag(op, FlagScope::Tier(TierName::parse("silver").unwrap()), k("beta"), FlagValue::Bool(true))
        .await
        .unwrap();
    r.set_flag(op, FlagScope::Global, k("model"), FlagValue::String("small".into())).await.unwrap();
    r.set_flag(op, FlagScope::Global, k("top_k"), FlagValue::Number(5.0)).await.unwrap();
    let rag = FlagValue::Json(json!({"rerank": true, "top_k": 8}));
    r.set_flag(op, FlagScope::Tier(TierName::parse("silver").unwrap()), k("rag"), rag).await.unwrap();
    let rolling = FlagRule { value: FlagValue::Bool(true), rollout: Some(100) };
    r.set_flag_rule(op, FlagScope::Global, k("rolling"), rolling, Default::default()).await.unwrap();
    r.set_flag(op, FlagScope::Tier(TierName::parse("gold").unwrap()), k("gold_only"), FlagValue::Bool(true))
        .await
        .unwrap();
    t
}

async fn single_flag_evaluation(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = setup(&w).await;
    let viewer = w.token_of(Role::Viewer).to_owned();
    let eval = |key: &str, body: Value| {
        let (w, viewer) = (&w, viewer.clone());
        let path = format!("/ofrep/v1/evaluate/flags/{key}");
        async move { w.call(Method::POST, &path, Some(&viewer), Some(body)).await }
    };
    for (key, value, reason, variant) in [
        ("beta", json!(true), "TARGETING_MATCH", "tier"),
        ("model", json!("small"), "STATIC", "global"),
        ("top_k", json!(5), "STATIC", "global"),
        ("rag", json!({"rerank": true, "top_k": 8}), "TARGETING_MATCH", "tier"),
        ("rolling", json!(true), "SPLIT", "global"),
    ] {
        let r = eval(key, ctx(&t)).await;
        assert_eq!(r.status, 200, "{key}: {}", r.text);
        check_success(&r.body);
        assert_eq!((&r.body["key"], &r.body["value"]), (&json!(key), &value), "{}", r.text);
        assert_eq!((r.body["reason"].as_str(), r.body["variant"].as_str()), (Some(reason), Some(variant)));
        assert!(r.body["metadata"]["version"].as_i64().is_some_and(|v| v >= 1));
    }
    // not defined for this tenant, not defined at all, not even a valid key: FLAG_NOT_FOUND
    for key in ["gold_only", "no_such_flag", "Bad!Key"] {
        let r = eval(key, ctx(&t)).await;
        assert_eq!(r.status, 404, "{key}: {}", r.text);
        check_failure(&r.body, "FLAG_NOT_FOUND", true);
    }
    // context problems
    let r = eval("beta", json!({"context": {}})).await;
    assert_eq!(r.status, 400);
    check_failure(&r.body, "TARGETING_KEY_MISSING", true);
    let r = eval("beta", json!({"context": {"targetingKey": 42}})).await;
    check_failure(&r.body, "INVALID_CONTEXT", true);
    let r = eval("beta", json!({"context": "finance"})).await;
    check_failure(&r.body, "INVALID_CONTEXT", true);
    let r = eval("beta", json!({"context": {"targetingKey": "Not A Tenant"}})).await;
    check_failure(&r.body, "INVALID_CONTEXT", true);
    let raw = Request::builder()
        .method(Method::POST)
        .uri("/ofrep/v1/evaluate/flags/beta")
        .header("authorization", format!("Bearer {viewer}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let r = w.send(raw).await;
    assert_eq!(r.status, 400);
    check_failure(&r.body, "PARSE_ERROR", true);
    // authorization: no key 401, another tenant's admin 403
    assert_eq!(w.call(Method::POST, "/ofrep/v1/evaluate/flags/beta", None, Some(ctx(&t))).await.status, 401);
    let r = w.call(Method::POST, "/ofrep/v1/evaluate/flags/beta", Some(&w.outsider), Some(ctx(&t))).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!r.text.contains("small") && !r.text.contains("true"), "{}", r.text);
    // the kill switch: DISABLED, no value (the client keeps its default), still a success
    w.registry.set_flag_enabled(&w.operator, FlagKey::parse("model").unwrap(), false, None).await.unwrap();
    let r = eval("model", ctx(&t)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    check_success(&r.body);
    assert_eq!((r.body["reason"].as_str(), r.body.get("value")), (Some("DISABLED"), None), "{}", r.text);
    let bulk = w.call(Method::POST, "/ofrep/v1/evaluate/flags", Some(&viewer), Some(ctx(&t))).await;
    let model = bulk.body["flags"].as_array().unwrap().iter().find(|f| f["key"] == "model").cloned().unwrap();
    check_success(&model);
    assert_eq!(model["reason"], "DISABLED");
    // a suspended tenant is refused
    w.registry
        .transition(&w.operator.act_in(TenantId::parse(&t).unwrap()), TenantStatus::Suspended, "test", None, None)
        .await
        .unwrap();
    let r = eval("beta", ctx(&t)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    check_failure(&r.body, "GENERAL", true);
    assert!(r.body["errorDetails"].as_str().unwrap().contains("suspended"));
    // configuration
    let r = w.call(Method::GET, "/ofrep/v1/configuration", Some(&viewer), None).await;
    assert_eq!(r.body["name"], "tenantry");
}

async fn bulk_evaluation_with_etags(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = setup(&w).await;
    let viewer = w.token_of(Role::Viewer).to_owned();
    let bulk = |etag: Option<String>| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/ofrep/v1/evaluate/flags")
            .header("authorization", format!("Bearer {viewer}"))
            .header("content-type", "application/json");
        if let Some(e) = etag {
            b = b.header("if-none-match", e);
        }
        b.body(Body::from(ctx(&t).to_string())).unwrap()
    };
    let r = w.send(bulk(None)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let flags = r.body["flags"].as_array().expect("bulkEvaluationSuccess requires flags");
    assert!(flags.len() >= 6);
    for f in flags {
        if f.get("errorCode").is_some() {
            check_failure(f, "FLAG_NOT_FOUND", true);
        } else {
            check_success(f);
        }
    }
    assert!(flags.iter().any(|f| f["key"] == "gold_only" && f["errorCode"] == "FLAG_NOT_FOUND"));
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    // unchanged: 304 with the same ETag and no body
    let r = w.send(bulk(Some(etag.clone()))).await;
    assert_eq!(r.status, 304);
    assert!(r.text.is_empty());
    assert_eq!(r.headers["etag"].to_str().unwrap(), etag);
    // a change to any flag of the tenant changes the ETag
    w.registry
        .set_flag(&w.operator, FlagScope::Global, FlagKey::parse("model").unwrap(), FlagValue::String("large".into()))
        .await
        .unwrap();
    let r = w.send(bulk(Some(etag.clone()))).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    // bulk context errors use bulkEvaluationFailure
    let r = w.call(Method::POST, "/ofrep/v1/evaluate/flags", Some(&viewer), Some(json!({"context": {}}))).await;
    assert_eq!(r.status, 400);
    check_failure(&r.body, "TARGETING_KEY_MISSING", false);
}

on_both_stores!(single_flag_evaluation, bulk_evaluation_with_etags);

/// A tenant that is not active is refused in OFREP's own shape (403, `GENERAL`), single and bulk.
async fn an_inactive_tenant_is_refused_in_ofrep_form(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = setup(&w).await;
    let scope = w.operator.act_in(tenantry_domain::TenantId::parse(&t).unwrap());
    w.registry.transition(&scope, tenantry_domain::TenantStatus::Suspended, "billing", None, None).await.unwrap();
    let single = w.call(Method::POST, "/ofrep/v1/evaluate/flags/beta", Some(&w.admin), Some(ctx(&t))).await;
    assert_eq!(single.status, 403, "{}", single.text);
    check_failure(&single.body, "GENERAL", true);
    let bulk = w.call(Method::POST, "/ofrep/v1/evaluate/flags", Some(&w.admin), Some(ctx(&t))).await;
    assert_eq!(bulk.status, 403, "{}", bulk.text);
    assert_eq!(bulk.body["errorCode"], "GENERAL", "{}", bulk.text);
}

/// The store goes away: within the stale window OFREP keeps answering from the last snapshot,
/// marked stale (`x-tenantry-stale`, `Warning: 110`); without one it answers 503 in its own shape.
async fn ofrep_serves_stale_then_refuses_when_the_store_is_down(stale: bool) {
    let store = tenantry_store_sqlite::SqliteStore::open_temporary().await.unwrap();
    let pool = store.pool().clone();
    let window = if stale { Duration::from_secs(1800) } else { Duration::ZERO };
    // the flags (standard class) expire at once, so every evaluation tries the store first; the
    // key's principal and the tenant record (critical class) stay remembered for the test
    let cache = tenantry_app::CacheConfig {
        critical_ttl: Duration::from_secs(3600),
        standard_ttl: Duration::ZERO,
        stale_if_error: window,
    };
    let w = World::with(Arc::new(store), &Default::default(), cache).await;
    let t = setup(&w).await;
    // until the key's principal is remembered (setup's invalidations reach the cache through the
    // bus, asynchronously, and each one forgets principals)
    let digest = tenantry_app::auth::token_digest(&w.admin);
    let mut remembered = false;
    for _ in 0..500 {
        let fresh = w.call(Method::POST, "/ofrep/v1/evaluate/flags/beta", Some(&w.admin), Some(ctx(&t))).await;
        assert_eq!(fresh.status, 200, "{}", fresh.text);
        assert!(fresh.headers.get("x-tenantry-stale").is_none());
        if w.registry.cache().principal(&digest, w.clock.now()).is_some() {
            remembered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(remembered, "the principal was never cached");
    pool.close().await;
    let r = w.call(Method::POST, "/ofrep/v1/evaluate/flags/beta", Some(&w.admin), Some(ctx(&t))).await;
    if stale {
        assert_eq!(r.status, 200, "{}", r.text);
        check_success(&r.body);
        assert_eq!(r.headers["x-tenantry-stale"], "true");
        assert!(r.headers["warning"].to_str().unwrap().starts_with("110 "), "{:?}", r.headers["warning"]);
    } else {
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.body["errorCode"], "GENERAL", "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_serves_the_last_snapshot_marked_stale_during_an_outage() {
    ofrep_serves_stale_then_refuses_when_the_store_is_down(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_answers_503_during_an_outage_without_a_stale_window() {
    ofrep_serves_stale_then_refuses_when_the_store_is_down(false).await;
}

mod inactive {
    use super::*;
    on_both_stores!(an_inactive_tenant_is_refused_in_ofrep_form);
}
