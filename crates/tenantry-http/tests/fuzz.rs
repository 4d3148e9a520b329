//! Malformed bodies, paths, queries and headers against every route, as a platform admin (the
//! deepest code paths) and as a tenant user: never a 5xx, always a problem document with a code
//! from the table.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

use tenantry_app::ErrorCode;
use tenantry_app::ports::Store;
use tenantry_domain::Role;
use tenantry_http::problem::describe;

use common::World;

/// Every route with a valid body for it (`{t}` = a tenant).
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let health = json!({"latency_p95": 1.0, "error_rate": 0.0, "query_success_rate": 1.0, "storage_utilization": 0.0});
    vec![
        (
            Method::POST,
            "/tenants",
            Some(
                json!({"tenant_id": "fz1", "tenant_name": "F", "tier": "gold", "max_users": 5, "monthly_budget": {"amount": "10.00", "currency": "EUR"}, "compliance_tags": ["gdpr"], "metadata": {"a": 1}}),
            ),
        ),
        (Method::GET, "/tenants", None),
        (Method::GET, "/tenants/{t}", None),
        (
            Method::PATCH,
            "/tenants/{t}",
            Some(json!({"tenant_name": "G", "billing_email": null, "max_users": 3, "reset_limits": ["max_users"]})),
        ),
        (Method::DELETE, "/tenants/{t}", None),
        (Method::POST, "/tenants/{t}/suspend", Some(json!({"reason": "r"}))),
        (Method::POST, "/tenants/{t}/activate", Some(json!({"reason": "r"}))),
        (Method::POST, "/tenants/{t}/archive", Some(json!({"reason": "r", "retention_days": 1}))),
        (Method::POST, "/tenants/{t}/migrate", Some(json!({"reason": "r"}))),
        (Method::POST, "/tenants/{t}/health", Some(health)),
        (Method::GET, "/tenants/{t}/history", None),
        (Method::GET, "/tenants/{t}/members", None),
        (Method::POST, "/tenants/{t}/members", Some(json!({"user_id": "u-spare", "role": "viewer"}))),
        (Method::DELETE, "/tenants/{t}/members/u-spare", None),
        (Method::GET, "/statistics", None),
        (
            Method::POST,
            "/feature-flags",
            Some(json!({"feature_name": "f", "enabled": true, "scope": "tenant", "scope_id": "{t}"})),
        ),
        (
            Method::POST,
            "/feature-flags",
            Some(
                json!({"feature_name": "g", "enabled": true, "scope": "tenant", "scope_id": "{t}", "platform_set": true}),
            ),
        ),
        (Method::GET, "/feature-flags", None),
        (Method::GET, "/flag-definitions", None),
        (Method::GET, "/flag-definitions/stale", None),
        (Method::POST, "/flag-definitions/f/disable", Some(json!({"reason": "r"}))),
        (Method::POST, "/flag-definitions/f/enable", Some(json!({"reason": "r"}))),
        (Method::DELETE, "/feature-flags", None),
        (Method::GET, "/feature-flags/{t}", None),
        (Method::GET, "/feature-flags/{t}/f", None),
        (Method::GET, "/tiers", None),
        (Method::GET, "/tiers/gold", None),
        (Method::GET, "/me", None),
        (Method::GET, "/me/invitations", None),
        (Method::POST, "/me/invitations/{t}/accept", None),
        (Method::POST, "/users", Some(json!({"user_id": "fz.user", "display_name": "F"}))),
        (Method::GET, "/users", None),
        (Method::POST, "/keys", Some(json!({"user_id": "u-spare", "name": "n", "expires_at": "2030-01-01T00:00:00Z"}))),
        (Method::GET, "/keys", None),
        (Method::DELETE, "/keys/somekey", None),
        (Method::GET, "/metrics", None),
        (Method::GET, "/audit", None),
        (Method::POST, "/ofrep/v1/evaluate/flags/f", Some(json!({"context": {"targetingKey": "{t}"}}))),
        (Method::POST, "/ofrep/v1/evaluate/flags", Some(json!({"context": {"targetingKey": "{t}"}}))),
        (Method::GET, "/ofrep/v1/configuration", None),
        (Method::GET, "/healthz", None),
        (Method::GET, "/readyz", None),
        (
            Method::POST,
            "/tenants/{t}/documents",
            Some(json!({"title": "T", "text": "some words here", "metadata": {"lang": "en"}, "client_id": "c1"})),
        ),
        (Method::POST, "/tenants/{t}/documents", Some(json!({"documents": [{"title": "T", "text": "batch text"}]}))),
        (Method::GET, "/tenants/{t}/documents", None),
        (Method::GET, "/tenants/{t}/documents/d-0123", None),
        (Method::GET, "/tenants/{t}/documents/d-0123/text", None),
        (Method::DELETE, "/tenants/{t}/documents/d-0123", None),
        (Method::POST, "/tenants/{t}/query", Some(json!({"text": "words", "top_k": 3, "filter": {"lang": "en"}}))),
        (Method::GET, "/tenants/{t}/usage", None),
        (Method::GET, "/tenants/{t}/placement", None),
        (Method::GET, "/indexes", None),
        (Method::GET, "/costs?month=2026-03", None),
        (Method::GET, "/costs/chargeback?month=2026-03&currency=USD", None),
        (Method::GET, "/tenants/{t}/costs?month=2026-03", None),
        (Method::GET, "/costs/meters", None),
        (Method::GET, "/costs/prices", None),
        (
            Method::POST,
            "/costs/prices",
            Some(json!({"meter": "embedding_tokens", "model": "m1", "provider": "p", "currency": "USD",
                        "unit_price": "0.0001", "effective_from": "2026-03-01"})),
        ),
        (Method::POST, "/costs/prices/presets/seed-004-inr", Some(json!({"effective_from": "2026-01-01"}))),
        (Method::GET, "/costs/fixed", None),
        (
            Method::PUT,
            "/costs/fixed/db",
            Some(json!({"provider": "cloud", "amount": "30", "currency": "USD", "per_index": false,
                        "allocation": "even", "from": "2026-01", "until": "2026-12"})),
        ),
        (Method::DELETE, "/costs/fixed/db", None),
        (
            Method::POST,
            "/costs/bills",
            Some(json!({"bills": [{"provider": "cloud", "month": "2026-03", "currency": "USD", "amount": "1.5"}]})),
        ),
        (Method::POST, "/costs/reconcile", Some(json!({"month": "2026-03", "currency": "USD"}))),
        (Method::POST, "/costs/budgets/check", None),
        (Method::GET, "/readiness", None),
    ]
}

/// Deterministic xorshift, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const HOSTILE_VALUES: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "-9223372036854775809",
    "18446744073709551616",
    "1.5",
    "\"\"",
    "\"x\"",
    "\"Bad Id!\"",
    "\"../../etc/passwd\"",
    "\"\\u0000\"",
    "\"'; drop table tenants; --\"",
    "[]",
    "{}",
    "[1,2]",
    "{\"a\":{\"b\":[]}}",
    "\"ünïcödé\"",
    "\"2030-13-45T99:99:99Z\"",
    "\"9999-12-31T23:59:59-23:59\"",
    "\"0000-01-01T00:00:00+23:59\"",
    "4294967295",
];

const HOSTILE_BODIES: &[&[u8]] = &[
    b"",
    b"{",
    b"}",
    b"null",
    b"[]",
    b"123",
    b"\"s\"",
    b"{\"a\":}",
    b"{\"unknown_field\":1}",
    b"\xff\xfe\xfd",
    b"{\"tenant_id\":\"a\",\"tenant_id\":\"b\"}",
    b"NaN",
    b"{\"x\":1e99999}",
];

const HOSTILE_SEGMENTS: &[&str] = &[
    "",
    "%2e%2e%2f%2e%2e",
    "%00",
    "%ZZ",
    "%C3%28",
    "A",
    "UPPER",
    "with%20space",
    "a;b",
    "..",
    "%2F",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "%F0%9F%92%A9",
    "t0-co%00",
    "'%20or%201=1",
];

const HOSTILE_QUERIES: &[&str] = &[
    "?limit=-1",
    "?limit=abc",
    "?limit=99999999999",
    "?status=zombie",
    "?tier=%00",
    "?after=..",
    "?user_id=X Y",
    "?feature_name=&scope=",
    "?scope=tenant&scope_id=../x&feature_name=f",
    "?reason=%FF",
    "?owner=%2F",
    "?a=1&a=2",
    "?=",
    "?%",
    "?limit=1&limit=2",
    "?since=9999-12-31T23:59:59-23:59",
    "?since=0000-01-01T00:00:00%2B23:59",
];

/// Mutations of a valid JSON body: each field replaced by each hostile value, removed, or doubled.
fn body_mutations(valid: &Value, rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = HOSTILE_BODIES.iter().map(|b| b.to_vec()).collect();
    if let Some(obj) = valid.as_object() {
        for key in obj.keys() {
            let mut without = obj.clone();
            without.remove(key);
            out.push(serde_json::to_vec(&without).unwrap());
            for _ in 0..4 {
                let hostile = rng.pick(HOSTILE_VALUES);
                let text = serde_json::to_string(valid).unwrap();
                let original = serde_json::to_string(&obj[key]).unwrap();
                out.push(
                    text.replacen(&format!("\"{key}\":{original}"), &format!("\"{key}\":{hostile}"), 1).into_bytes(),
                );
            }
        }
    }
    // deep nesting and a long string
    out.push(format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes());
    out.push(format!("{{\"tenant_name\":\"{}\"}}", "x".repeat(100_000)).into_bytes());
    out
}

fn check(r: &Option<common::Response>, what: &str) {
    // an unparseable URI never reaches a server; nothing to check
    let Some(r) = r else { return };
    assert!(r.status.as_u16() < 500, "5xx for {what}: {} {}", r.status, r.text);
    // OFREP routes answer OFREP's own error shape (errorCode from its enum)
    let ofrep_code = r.body.get("errorCode").and_then(|c| c.as_str());
    if what.contains("/ofrep/") && ofrep_code.is_some() {
        let code = ofrep_code.unwrap_or_default();
        let known = ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "FLAG_NOT_FOUND", "GENERAL"];
        assert!(known.contains(&code), "unknown OFREP errorCode {code:?} for {what}: {}", r.text);
        return;
    }
    if r.status.is_client_error() {
        let code = r.code();
        let listed = ErrorCode::parse(code).unwrap_or_else(|| panic!("unlisted code {code:?} for {what}: {}", r.text));
        assert_eq!(describe(listed).0, r.status, "{what}: the status of {code}");
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}: {}",
            r.text
        );
    }
}

async fn raw(
    w: &World,
    method: &Method,
    uri: &str,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Option<common::Response> {
    let mut b = Request::builder().method(method.clone()).uri(uri).header("authorization", format!("Bearer {token}"));
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    match b.body(Body::from(body)) {
        Ok(req) => Some(w.send(req).await),
        Err(_) => None,
    }
}

async fn never_5xx(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let user = w.token_of(Role::Admin).to_owned();
    let mut sent = 0u32;
    for (method, template, valid) in routes() {
        for token in [w.admin.clone(), user.clone()] {
            let t = w.fresh_tenant().await;
            let path = template.replace("{t}", &t);
            // bodies
            let valid = valid.clone().unwrap_or(json!({}));
            let valid: Value = serde_json::from_str(&valid.to_string().replace("{t}", &t)).unwrap();
            for body in body_mutations(&valid, &mut rng) {
                let what = format!("{method} {path} body {:?}", String::from_utf8_lossy(&body[..body.len().min(80)]));
                check(&raw(&w, &method, &path, &token, Some("application/json"), body).await, &what);
                sent += 1;
            }
            // wrong content types
            for ct in [None, Some("text/plain"), Some("application/json; charset=utf-16"), Some("multipart/form-data")]
            {
                let r = raw(&w, &method, &path, &token, ct, valid.to_string().into_bytes()).await;
                check(&r, &format!("{method} {path} content-type {ct:?}"));
                sent += 1;
            }
            // hostile path segments in place of each parameter
            for seg in HOSTILE_SEGMENTS {
                let p = template.replace("{t}", seg);
                if p != template {
                    check(
                        &raw(&w, &method, &p, &token, Some("application/json"), valid.to_string().into_bytes()).await,
                        &format!("{method} {p}"),
                    );
                    sent += 1;
                }
            }
            // hostile queries
            for q in HOSTILE_QUERIES {
                let uri = format!("{path}{q}");
                check(&raw(&w, &method, &uri, &token, None, Vec::new()).await, &format!("{method} {uri}"));
                sent += 1;
            }
        }
        // hostile headers
        let path = template.replace("{t}", "t0-co");
        for (name, value) in [
            ("if-match", "W/\"x\""),
            ("if-match", "\"99999999999999999999\""),
            ("authorization", "Bearer \u{7f}"),
            ("content-length", "5"),
        ] {
            let mut b = Request::builder().method(method.clone()).uri(&path);
            if name != "authorization" {
                b = b.header("authorization", format!("Bearer {}", w.admin));
            }
            if let Ok(req) = b.header(name, value).body(Body::empty()) {
                check(&Some(w.send(req).await), &format!("{method} {path} header {name}: {value}"));
                sent += 1;
            }
        }
    }
    assert!(sent > 2000, "sent only {sent} requests");
}

/// Times whose UTC form leaves the years 1970–9999, and retention periods of millions of days,
/// are refused with 422 on every path that takes one (each used to panic and answer 500).
async fn times_out_of_range_are_refused(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.fresh_tenant().await;
    let admin = Some(w.admin.as_str());
    for beyond in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59", "1969-12-31T23:59:59Z"] {
        let flag = json!({"feature_name": "f", "enabled": true, "scope": "global", "expires_at": beyond});
        let r = w.call(Method::POST, "/feature-flags", admin, Some(flag)).await;
        common::assert_problem(&r, 422, "invalid_input");
        let key = json!({"user_id": "u-spare", "name": "n", "expires_at": beyond});
        let r = w.call(Method::POST, "/keys", admin, Some(key)).await;
        common::assert_problem(&r, 422, "invalid_input");
        let since = beyond.replace('+', "%2B");
        let r = w.call(Method::GET, &format!("/audit?since={since}"), admin, None).await;
        common::assert_problem(&r, 422, "invalid_input");
    }
    let r = w.call(Method::POST, &format!("/tenants/{t}/suspend"), admin, Some(json!({"reason": "r"}))).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    for days in [36_501u64, 5_000_000, u64::from(u32::MAX)] {
        let body = json!({"reason": "r", "retention_days": days});
        let r = w.call(Method::POST, &format!("/tenants/{t}/archive"), admin, Some(body)).await;
        common::assert_problem(&r, 422, "invalid_input");
    }
    let r = w.call(Method::GET, &format!("/tenants/{t}"), admin, None).await;
    assert_eq!(r.body["status"], "suspended", "a refused archive changes nothing: {}", r.text);
    let r = w
        .call(
            Method::POST,
            &format!("/tenants/{t}/archive"),
            admin,
            Some(json!({"reason": "r", "retention_days": 36_500})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
}

on_both_stores!(never_5xx, times_out_of_range_are_refused);
