//! Membership by invitation: a tenant's admin invites, the user accepts. The invitation answers
//! the same for existing and unknown user ids (no probing of the platform's users), a user can
//! accept only their own open invitation, and archived or deleted tenants take no member or flag
//! changes.

mod common;

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use tenantry_app::ports::Store;
use tenantry_domain::Role;

use common::{World, assert_problem};

fn shape(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

async fn a_tenant_admin_invites_and_the_user_accepts(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.fresh_tenant().await;
    let tenant_admin = Some(w.token_of(Role::Admin));
    let members = format!("/tenants/{t}/members");

    let known =
        w.call(Method::POST, &members, tenant_admin, Some(json!({"user_id": "u-outsider", "role": "analyst"}))).await;
    let unknown = w
        .call(Method::POST, &members, tenant_admin, Some(json!({"user_id": "u-nobody-here", "role": "analyst"})))
        .await;
    assert_eq!(known.status.as_u16(), 202, "{}", known.text);
    assert_eq!(unknown.status.as_u16(), 202, "an unknown user id answers the same: {}", unknown.text);
    assert_eq!(shape(&known.body), shape(&unknown.body));
    assert_eq!(known.body["status"], "invited");
    assert_eq!(known.body["expires_at"], unknown.body["expires_at"]);

    // not a member until accepted
    let outsider = Some(w.outsider.as_str());
    assert_problem(&w.call(Method::GET, &format!("/tenants/{t}"), outsider, None).await, 403, "forbidden");
    let mine = w.call(Method::GET, "/me/invitations", outsider, None).await;
    assert_eq!(mine.status.as_u16(), 200, "{}", mine.text);
    assert_eq!(mine.body.as_array().map(Vec::len), Some(1), "only their own invitations: {}", mine.text);
    assert_eq!(mine.body[0]["tenant_id"], t.as_str());
    assert_eq!(mine.body[0]["role"], "analyst");
    // another user sees none of them
    let viewer = Some(w.token_of(Role::Viewer));
    let theirs = w.call(Method::GET, "/me/invitations", viewer, None).await;
    assert_eq!(theirs.body, json!([]), "{}", theirs.text);

    // accepting an invitation one does not hold: the same answer for another tenant, an unknown
    // tenant, and another user's invitation
    let other = w.fresh_tenant().await;
    for tenant in [other.as_str(), "zz-no-such-co"] {
        let r = w.call(Method::POST, &format!("/me/invitations/{tenant}/accept"), outsider, None).await;
        assert_problem(&r, 404, "invitation_not_found");
    }
    let r = w.call(Method::POST, &format!("/me/invitations/{t}/accept"), viewer, None).await;
    assert_problem(&r, 404, "invitation_not_found");

    let accepted = w.call(Method::POST, &format!("/me/invitations/{t}/accept"), outsider, None).await;
    assert_eq!(accepted.status.as_u16(), 200, "{}", accepted.text);
    assert_eq!(accepted.body["role"], "analyst");
    assert_eq!(w.call(Method::GET, &format!("/tenants/{t}"), outsider, None).await.status.as_u16(), 200);
    let again = w.call(Method::POST, &format!("/me/invitations/{t}/accept"), outsider, None).await;
    assert_problem(&again, 404, "invitation_not_found");

    // both steps are on the tenant's record, the acceptance by the user
    let history = w.call(Method::GET, &format!("/tenants/{t}/history"), Some(&w.admin), None).await;
    let entries = history.body.as_array().cloned().unwrap_or_default();
    let ops: Vec<(&str, &str)> =
        entries.iter().map(|e| (e["operation"].as_str().unwrap_or(""), e["actor_id"].as_str().unwrap_or(""))).collect();
    assert!(ops.contains(&("member.invite", "u-admin")), "{ops:?}");
    assert!(ops.contains(&("member.accept", "u-outsider")), "{ops:?}");

    // an invitation lapses after seven days
    let r = w.call(Method::POST, &members, tenant_admin, Some(json!({"user_id": "u-spare", "role": "viewer"}))).await;
    assert_eq!(r.status.as_u16(), 202, "{}", r.text);
    w.clock.advance(time::Duration::days(8));
    let spare = w
        .directory
        .create_key(
            &w.operator,
            tenantry_app::KeyOwner::User(tenantry_domain::UserId::parse("u-spare").unwrap()),
            "t",
            None,
        )
        .await
        .unwrap()
        .token;
    let r = w.call(Method::POST, &format!("/me/invitations/{t}/accept"), Some(&spare), None).await;
    assert_problem(&r, 404, "invitation_not_found");

    // a platform administrator adds directly; an existing member's role changes directly
    let r = w.call(Method::POST, &members, Some(&w.admin), Some(json!({"user_id": "u-spare", "role": "viewer"}))).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let r = w.call(Method::POST, &members, tenant_admin, Some(json!({"user_id": "u-spare", "role": "analyst"}))).await;
    assert_eq!((r.status.as_u16(), r.body["role"].as_str()), (200, Some("analyst")), "{}", r.text);
}

async fn archived_and_deleted_tenants_take_no_member_or_flag_changes(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = Some(w.admin.as_str());
    let t = w.fresh_tenant().await;
    let tenant_admin = Some(w.token_of(Role::Admin));
    let r = w
        .call(
            Method::POST,
            &format!("/tenants/{t}/members"),
            tenant_admin,
            Some(json!({"user_id": "u-outsider", "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 202, "{}", r.text);
    for (path, body) in [("suspend", json!({"reason": "r"})), ("archive", json!({"reason": "r", "retention_days": 0}))]
    {
        let r = w.call(Method::POST, &format!("/tenants/{t}/{path}"), admin, Some(body)).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    }
    for stage in ["archived", "deleted"] {
        if stage == "deleted" {
            let r = w.call(Method::DELETE, &format!("/tenants/{t}?reason=done"), admin, None).await;
            assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        }
        let r = w
            .call(
                Method::POST,
                &format!("/tenants/{t}/members"),
                admin,
                Some(json!({"user_id": "u-spare", "role": "viewer"})),
            )
            .await;
        assert_problem(&r, 422, "invalid_input");
        assert!(r.text.contains(stage), "{}", r.text);
        let flag = json!({"feature_name": "beta", "enabled": true, "scope": "tenant", "scope_id": t});
        assert_problem(&w.call(Method::POST, "/feature-flags", admin, Some(flag)).await, 422, "invalid_input");
        let r = w.call(Method::POST, &format!("/me/invitations/{t}/accept"), Some(&w.outsider), None).await;
        assert!(r.status.is_client_error() && r.status.as_u16() != 200, "{}", r.text);
    }
    let members = w.call(Method::GET, &format!("/tenants/{t}/members"), admin, None).await;
    assert!(!members.text.contains("u-spare") && !members.text.contains("u-outsider"), "{}", members.text);
    // taking access away stays possible
    let r = w.call(Method::DELETE, &format!("/tenants/{t}/members/u-viewer"), admin, None).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
}

on_both_stores!(
    a_tenant_admin_invites_and_the_user_accepts,
    archived_and_deleted_tenants_take_no_member_or_flag_changes
);
