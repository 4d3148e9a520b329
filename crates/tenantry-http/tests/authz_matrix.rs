//! Every route × {no credential, another tenant's admin, own tenant's user with too weak a role,
//! the right role, platform admin}, through the real router, on both stores. A refused call must
//! leave the tenant unchanged and say nothing about it.

mod common;

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use tenantry_app::KeyOwner;
use tenantry_app::ports::Store;
use tenantry_domain::{Role, TenantId, TenantStatus, UserId};

use common::{World, assert_problem};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    /// Any authenticated principal.
    Authenticated,
    /// At least this role in the target tenant (or platform admin).
    Member(Role),
    /// Platform administrators only.
    Platform,
}

#[derive(Clone, Copy, Debug)]
enum Setup {
    Active,
    Suspended,
    /// Archived with zero retention, so it can be deleted.
    ArchivedExpired,
    /// Has a tenant-level override of flag `beta`.
    WithTenantFlag,
    /// Has one document, whose id is the `{n}` placeholder.
    WithDocument,
    /// Has a tenant answer configuration (version 1).
    WithConfig,
}

struct Case {
    name: &'static str,
    method: Method,
    /// `{t}` is the target tenant, `{k}` a revocable key id, `{n}` a unique number.
    path: &'static str,
    body: Option<Value>,
    need: Need,
    setup: Setup,
    ok: u16,
    /// The success status for a platform administrator, when it differs (`ok` otherwise).
    ok_platform: Option<u16>,
}

fn case(name: &'static str, method: Method, path: &'static str, body: Option<Value>, need: Need, ok: u16) -> Case {
    Case { name, method, path, body, need, setup: Setup::Active, ok, ok_platform: None }
}

fn cases() -> Vec<Case> {
    use Need::*;
    use Role::*;
    let mut c = vec![
        case(
            "create tenant",
            Method::POST,
            "/tenants",
            Some(json!({"tenant_id": "new{n}", "tenant_name": "New", "tier": "gold"})),
            Platform,
            201,
        ),
        case("list tenants", Method::GET, "/tenants", None, Platform, 200),
        case("get tenant", Method::GET, "/tenants/{t}", None, Member(Viewer), 200),
        case(
            "patch profile",
            Method::PATCH,
            "/tenants/{t}",
            Some(json!({"tenant_name": "Renamed"})),
            Member(Admin),
            200,
        ),
        case("patch tier", Method::PATCH, "/tenants/{t}", Some(json!({"tier": "gold"})), Platform, 200),
        case("patch limits", Method::PATCH, "/tenants/{t}", Some(json!({"max_users": 7})), Platform, 200),
        case("suspend", Method::POST, "/tenants/{t}/suspend", None, Platform, 200),
        case("migrate", Method::POST, "/tenants/{t}/migrate", None, Platform, 200),
        case(
            "health",
            Method::POST,
            "/tenants/{t}/health",
            Some(
                json!({"latency_p95": 100.0, "error_rate": 0.001, "query_success_rate": 0.99, "storage_utilization": 0.5}),
            ),
            Member(Analyst),
            200,
        ),
        case("history", Method::GET, "/tenants/{t}/history", None, Member(Reviewer), 200),
        case("list members", Method::GET, "/tenants/{t}/members", None, Member(Admin), 200),
        // a tenant admin invites (202); a platform administrator adds directly (200)
        Case {
            ok_platform: Some(200),
            ..case(
                "add member",
                Method::POST,
                "/tenants/{t}/members",
                Some(json!({"user_id": "u-spare", "role": "viewer"})),
                Member(Admin),
                202,
            )
        },
        case(
            "change a member's role",
            Method::POST,
            "/tenants/{t}/members",
            Some(json!({"user_id": "u-viewer", "role": "analyst"})),
            Member(Admin),
            200,
        ),
        case("remove member", Method::DELETE, "/tenants/{t}/members/u-viewer", None, Member(Admin), 204),
        case("statistics", Method::GET, "/statistics", None, Platform, 200),
        case(
            "set tenant flag",
            Method::POST,
            "/feature-flags",
            Some(json!({"feature_name": "beta", "enabled": true, "scope": "tenant", "scope_id": "{t}"})),
            Member(Admin),
            200,
        ),
        case(
            "set tier flag",
            Method::POST,
            "/feature-flags",
            Some(json!({"feature_name": "beta", "enabled": true, "scope": "tier", "scope_id": "silver"})),
            Platform,
            200,
        ),
        case(
            "set global flag",
            Method::POST,
            "/feature-flags",
            Some(json!({"feature_name": "beta_label", "value": "on", "scope": "global"})),
            Platform,
            200,
        ),
        case("list flags", Method::GET, "/feature-flags", None, Platform, 200),
        case("flag definitions", Method::GET, "/flag-definitions", None, Platform, 200),
        case("stale flags", Method::GET, "/flag-definitions/stale", None, Platform, 200),
        case("disable flag", Method::POST, "/flag-definitions/beta/disable", None, Platform, 200),
        case("enable flag", Method::POST, "/flag-definitions/beta/enable", None, Platform, 200),
        case("evaluate all", Method::GET, "/feature-flags/{t}", None, Member(Viewer), 200),
        case("evaluate one", Method::GET, "/feature-flags/{t}/beta", None, Member(Viewer), 200),
        case("tiers", Method::GET, "/tiers", None, Authenticated, 200),
        case("tier", Method::GET, "/tiers/gold", None, Authenticated, 200),
        case("whoami", Method::GET, "/me", None, Authenticated, 200),
        case(
            "create user",
            Method::POST,
            "/users",
            Some(json!({"user_id": "nu{n}", "display_name": "New User"})),
            Platform,
            201,
        ),
        case("list users", Method::GET, "/users", None, Platform, 200),
        case("create key", Method::POST, "/keys", Some(json!({"user_id": "u-viewer", "name": "ci"})), Platform, 201),
        case("list keys", Method::GET, "/keys", None, Platform, 200),
        case("revoke key", Method::DELETE, "/keys/{k}", None, Platform, 204),
        case("metrics", Method::GET, "/metrics", None, Platform, 200),
        case("audit of a tenant", Method::GET, "/audit?tenant_id={t}", None, Member(Reviewer), 200),
        case("audit of everything", Method::GET, "/audit", None, Platform, 200),
    ];
    let mut activate = case("activate", Method::POST, "/tenants/{t}/activate", None, Platform, 200);
    activate.setup = Setup::Suspended;
    let mut delete = case("delete", Method::DELETE, "/tenants/{t}?reason=gone", None, Platform, 200);
    delete.setup = Setup::ArchivedExpired;
    let mut unset = case(
        "unset tenant flag",
        Method::DELETE,
        "/feature-flags?feature_name=beta&scope=tenant&scope_id={t}",
        None,
        Member(Admin),
        204,
    );
    unset.setup = Setup::WithTenantFlag;
    let mut archive =
        case("archive", Method::POST, "/tenants/{t}/archive", Some(json!({"reason": "closed"})), Platform, 200);
    archive.setup = Setup::Suspended;
    let mut ofrep_one = case(
        "ofrep single",
        Method::POST,
        "/ofrep/v1/evaluate/flags/beta",
        Some(json!({"context": {"targetingKey": "{t}"}})),
        Member(Viewer),
        200,
    );
    ofrep_one.setup = Setup::WithTenantFlag;
    let ofrep_bulk = case(
        "ofrep bulk",
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        Some(json!({"context": {"targetingKey": "{t}"}})),
        Member(Viewer),
        200,
    );
    let ofrep_config = case("ofrep configuration", Method::GET, "/ofrep/v1/configuration", None, Authenticated, 200);
    c.extend([activate, archive, delete, unset, ofrep_one, ofrep_bulk, ofrep_config]);
    c.extend([
        case(
            "ingest",
            Method::POST,
            "/tenants/{t}/documents",
            Some(json!({"title": "Plan", "text": "revenue plan"})),
            Member(Analyst),
            201,
        ),
        case("list documents", Method::GET, "/tenants/{t}/documents", None, Member(Viewer), 200),
        case("query", Method::POST, "/tenants/{t}/query", Some(json!({"text": "revenue"})), Member(Viewer), 200),
        case("usage", Method::GET, "/tenants/{t}/usage", None, Member(Viewer), 200),
        case("placement", Method::GET, "/tenants/{t}/placement", None, Member(Viewer), 200),
        case("indexes", Method::GET, "/indexes", None, Platform, 200),
        case("cost report", Method::GET, "/costs?month=2026-03&currency=USD", None, Platform, 200),
        case("chargeback", Method::GET, "/costs/chargeback?month=2026-03&currency=USD", None, Platform, 200),
        case("tenant costs", Method::GET, "/tenants/{t}/costs?month=2026-03&currency=USD", None, Member(Reviewer), 200),
        case("meters", Method::GET, "/costs/meters", None, Platform, 200),
        case("prices", Method::GET, "/costs/prices", None, Platform, 200),
        case(
            "set price",
            Method::POST,
            "/costs/prices",
            Some(json!({"meter": "api_calls", "provider": "platform", "currency": "USD", "unit_price": "0.01",
                        "effective_from": "2026-03-01"})),
            Platform,
            201,
        ),
        case(
            "load price preset",
            Method::POST,
            "/costs/prices/presets/seed-002-usd",
            Some(json!({"effective_from": "2026-01-01"})),
            Platform,
            201,
        ),
        case("fixed costs", Method::GET, "/costs/fixed", None, Platform, 200),
        case(
            "put fixed cost",
            Method::PUT,
            "/costs/fixed/lb",
            Some(json!({"provider": "cloud", "amount": "35", "currency": "USD", "from": "2026-03"})),
            Platform,
            200,
        ),
        case(
            "import bills",
            Method::POST,
            "/costs/bills",
            Some(json!({"bills": [{"provider": "cloud", "month": "2026-03", "currency": "USD", "amount": "35"}]})),
            Platform,
            201,
        ),
        case("budget check", Method::POST, "/costs/budgets/check", None, Platform, 200),
        case("readiness", Method::GET, "/readiness", None, Platform, 200),
        case("show config", Method::GET, "/tenants/{t}/config", None, Member(Viewer), 200),
        case(
            "set config",
            Method::PUT,
            "/tenants/{t}/config",
            Some(json!({"settings": {"top_k": 4}, "reason": "tune"})),
            Member(Admin),
            200,
        ),
        case("config versions", Method::GET, "/tenants/{t}/config/versions", None, Member(Viewer), 200),
        case(
            "config preview",
            Method::POST,
            "/tenants/{t}/config/preview",
            Some(json!({"question": "what is the plan?"})),
            Member(Viewer),
            200,
        ),
        case("ask", Method::POST, "/tenants/{t}/ask", Some(json!({"question": "revenue plan?"})), Member(Viewer), 200),
        case("platform config", Method::GET, "/config/platform", None, Platform, 200),
        case(
            "set platform config",
            Method::PUT,
            "/config/platform",
            Some(json!({"settings": {"max_tokens": 400}})),
            Platform,
            200,
        ),
        case("tier config", Method::GET, "/config/tiers/gold", None, Platform, 200),
        case(
            "set tier config",
            Method::PUT,
            "/config/tiers/gold",
            Some(json!({"settings": {"rerank": "lexical"}})),
            Platform,
            200,
        ),
    ]);
    let mut rollback = case(
        "config rollback",
        Method::POST,
        "/tenants/{t}/config/rollback",
        Some(json!({"version": 1})),
        Member(Admin),
        200,
    );
    rollback.setup = Setup::WithConfig;
    let mut diff = case("config diff", Method::GET, "/tenants/{t}/config/diff?from=0&to=1", None, Member(Viewer), 200);
    diff.setup = Setup::WithConfig;
    c.extend([rollback, diff]);
    for (name, method, path, need, ok) in [
        ("get document", Method::GET, "/tenants/{t}/documents/{n}", Member(Viewer), 200),
        ("document text", Method::GET, "/tenants/{t}/documents/{n}/text", Member(Viewer), 200),
        ("delete document", Method::DELETE, "/tenants/{t}/documents/{n}", Member(Analyst), 204),
    ] {
        let mut with_doc = case(name, method, path, None, need, ok);
        with_doc.setup = Setup::WithDocument;
        c.push(with_doc);
    }
    c
}

/// The strongest role that is still too weak for `need`.
fn too_weak(need: Need) -> Option<Role> {
    match need {
        Need::Authenticated | Need::Member(Role::Viewer) => None,
        Need::Member(Role::Analyst) | Need::Member(Role::Reviewer) => Some(Role::Viewer),
        Need::Member(Role::Admin) => Some(Role::Reviewer),
        Need::Platform => Some(Role::Admin),
    }
}

/// Prepares a target tenant and the placeholders of one run.
async fn prepare(w: &World, case: &Case) -> (String, String, String) {
    let tenant = w.fresh_tenant().await;
    let id = TenantId::parse(&tenant).unwrap();
    let scope = w.operator.act_in(id);
    match case.setup {
        Setup::Active => {}
        Setup::Suspended => {
            w.registry.transition(&scope, TenantStatus::Suspended, "setup", None, None).await.unwrap();
        }
        Setup::ArchivedExpired => {
            w.registry.transition(&scope, TenantStatus::Suspended, "setup", None, None).await.unwrap();
            w.registry.transition(&scope, TenantStatus::Archived, "setup", Some(0), None).await.unwrap();
        }
        Setup::WithTenantFlag => {
            w.registry
                .set_tenant_flag(&scope, "beta".parse_key(), tenantry_domain::FlagValue::Bool(true))
                .await
                .unwrap();
        }
        Setup::WithDocument => {}
        Setup::WithConfig => {
            let layer = tenantry_domain::rag::RagSettings { top_k: Some(3), ..Default::default() };
            w.answers.set_tenant_config(&scope, layer, None, Some("setup".into())).await.unwrap();
        }
    }
    let mut n = w.next_id("");
    if let Setup::WithDocument = case.setup {
        let doc = tenantry_domain::NewDocument::new("Secret plan", "merger plan".into(), &Value::Null, None).unwrap();
        n = w.data.ingest(&scope, vec![doc]).await.unwrap().remove(0).id.to_string();
    }
    let key = w
        .directory
        .create_key(&w.operator, KeyOwner::User(UserId::parse("u-spare").unwrap()), "to revoke", None)
        .await
        .unwrap();
    (tenant, key.key.id.to_string(), n)
}

trait ParseKey {
    fn parse_key(&self) -> tenantry_domain::FlagKey;
}
impl ParseKey for str {
    fn parse_key(&self) -> tenantry_domain::FlagKey {
        tenantry_domain::FlagKey::parse(self).unwrap()
    }
}

fn fill(template: &str, t: &str, k: &str, n: &str) -> String {
    template.replace("{t}", t).replace("{k}", k).replace("{n}", n)
}

fn fill_json(v: &Value, t: &str, k: &str, n: &str) -> Value {
    serde_json::from_str(&fill(&v.to_string(), t, k, n)).unwrap()
}

async fn version_of(w: &World, tenant: &str) -> (i64, usize, i64, u32) {
    let scope = w.operator.act_in(TenantId::parse(tenant).unwrap());
    let t = w.registry.get_tenant(&scope).await.unwrap();
    let members = w.directory.list_members(&scope).await.unwrap().len();
    let documents = w.data.usage(&scope).await.unwrap().0.documents;
    let config = w.answers.config(&scope).await.unwrap().version;
    (t.version, members, documents, config)
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    Outsider,
    Weak(Role),
    Right(Role),
    PlatformAdmin,
}

async fn run_case(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut checked = 0;
    for case in cases() {
        let mut runs = vec![Who::Nobody, Who::Outsider, Who::PlatformAdmin];
        if let Some(role) = too_weak(case.need) {
            runs.push(Who::Weak(role));
        }
        if let Need::Member(role) = case.need {
            runs.push(Who::Right(role));
        }
        for who in runs {
            let (t, k, n) = prepare(&w, &case).await;
            let path = fill(case.path, &t, &k, &n);
            let body = case.body.as_ref().map(|b| fill_json(b, &t, &k, &n));
            let token = match who {
                Who::Nobody => None,
                Who::Outsider => Some(w.outsider.clone()),
                Who::Weak(role) | Who::Right(role) => Some(w.token_of(role).to_owned()),
                Who::PlatformAdmin => Some(w.admin.clone()),
            };
            let before = version_of(&w, &t).await;
            let r = w.call(case.method.clone(), &path, token.as_deref(), body).await;
            let context = format!("{} as {who:?}: {} {}", case.name, r.status, r.text);
            let allowed = match who {
                Who::Nobody => false,
                Who::Outsider => case.need == Need::Authenticated,
                Who::Weak(_) => false,
                Who::Right(_) | Who::PlatformAdmin => true,
            };
            if allowed {
                let ok = match who {
                    Who::PlatformAdmin => case.ok_platform.unwrap_or(case.ok),
                    _ => case.ok,
                };
                assert_eq!(r.status.as_u16(), ok, "{context}");
            } else {
                match who {
                    Who::Nobody => assert_problem(&r, 401, "unauthenticated"),
                    _ => assert_problem(&r, 403, "forbidden"),
                }
                let secret = format!("Secret Name {}", t.trim_start_matches('t').trim_end_matches("-co"));
                assert!(!r.text.contains(&secret), "a refusal leaks tenant data: {context}");
                assert_eq!(version_of(&w, &t).await, before, "a refused call changed the tenant: {context}");
            }
            checked += 1;
        }
    }
    assert!(checked > 130, "the matrix ran {checked} calls");
}

on_both_stores!(run_case);
