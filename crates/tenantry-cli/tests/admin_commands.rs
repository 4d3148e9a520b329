//! The administration commands no other test runs, through the real binary on the embedded
//! store: users, members, keys revoke, flag defs|disable|enable|stale, tenant
//! update|suspend|activate — each change checked by reading it back with another command.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn tenantry(dir: &PathBuf, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("TENANTRY_AUDIT_KEY", "42".repeat(32))
        .env("USER", "admin-test")
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .expect("run tenantry");
    assert!(out.status.success(), "tenantry {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("tenantry {args:?} printed no JSON ({e})"))
}

fn refused(dir: &PathBuf, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .env_remove("DATABASE_URL")
        .env("TENANTRY_AUDIT_KEY", "42".repeat(32))
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .expect("run tenantry");
    assert_eq!(out.status.code(), Some(1), "tenantry {args:?} should be refused");
    serde_json::from_slice(&out.stderr).expect("one JSON error on stderr")
}

#[test]
fn users_members_keys_flags_and_tenant_changes_read_back() {
    let dir = std::env::temp_dir().join(format!("tenantry-admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tenantry(&dir, &["tenant", "create", "acme", "--name", "Acme", "--tier", "gold"]);

    // users and members
    tenantry(&dir, &["users", "create", "alice", "--display-name", "Alice"]);
    let users = tenantry(&dir, &["users", "list"]);
    assert_eq!(users[0]["user_id"], "alice", "{users}");
    tenantry(&dir, &["members", "add", "acme", "alice", "--role", "analyst"]);
    let members = tenantry(&dir, &["members", "list", "acme"]);
    assert_eq!((members[0]["user_id"].as_str(), members[0]["role"].as_str()), (Some("alice"), Some("analyst")));
    let tenants = tenantry(&dir, &["users", "tenants", "alice"]);
    assert_eq!(tenants[0]["tenant_id"], "acme", "{tenants}");
    tenantry(&dir, &["members", "add", "acme", "alice", "--role", "admin"]);
    assert_eq!(tenantry(&dir, &["members", "list", "acme"])[0]["role"], "admin", "the role changed");

    // keys: issued once, revoked for good
    let issued = tenantry(&dir, &["keys", "create", "--user", "alice", "--name", "laptop"]);
    let key_id = issued["key"]["key_id"].as_str().unwrap().to_owned();
    assert!(issued["token"].as_str().unwrap().contains(&key_id));
    tenantry(&dir, &["keys", "revoke", &key_id]);
    let keys = tenantry(&dir, &["keys", "list", "--owner", "alice"]);
    assert!(keys[0]["revoked_at"].is_string(), "{keys}");
    let unknown = refused(&dir, &["keys", "revoke", "nosuchkey"]);
    assert_eq!(unknown["error"]["code"], "key_not_found", "{unknown}");

    // the kill switch and the stale report
    tenantry(&dir, &["flag", "set", "beta", "--enabled", "true", "--scope", "global"]);
    tenantry(&dir, &["flag", "disable", "beta", "--reason", "incident"]);
    let defs = tenantry(&dir, &["flag", "defs"]);
    assert_eq!((defs[0]["feature_name"].as_str(), defs[0]["enabled"].as_bool()), (Some("beta"), Some(false)));
    tenantry(&dir, &["flag", "enable", "beta"]);
    assert_eq!(tenantry(&dir, &["flag", "defs"])[0]["enabled"], true);
    let stale = tenantry(&dir, &["flag", "stale", "--max-age-days", "0"]);
    let reasons = stale[0]["reasons"].as_array().unwrap();
    assert!(reasons.iter().any(|r| r == "same_for_every_tenant"), "{stale}");
    assert!(
        tenantry(&dir, &["flag", "stale"])
            .as_array()
            .unwrap()
            .iter()
            .all(|f| { f["reasons"].as_array().unwrap().iter().all(|r| r != "older_than_max_age") })
    );

    // tenant update, suspend, activate
    let updated = tenantry(&dir, &["tenant", "update", "acme", "--name", "Acme Two"]);
    assert_eq!((updated["tenant_name"].as_str(), updated["version"].as_i64()), (Some("Acme Two"), Some(2)));
    let stale_version = refused(&dir, &["tenant", "update", "acme", "--name", "X", "--expected-version", "1"]);
    assert_eq!(stale_version["error"]["code"], "version_conflict", "{stale_version}");
    assert_eq!(tenantry(&dir, &["tenant", "suspend", "acme", "--reason", "billing"])["status"], "suspended");
    assert_eq!(tenantry(&dir, &["tenant", "activate", "acme", "--reason", "paid"])["status"], "active");
    assert_eq!(tenantry(&dir, &["tenant", "get", "acme"])["tenant_name"], "Acme Two");

    // members remove
    tenantry(&dir, &["members", "remove", "acme", "alice"]);
    assert_eq!(tenantry(&dir, &["members", "list", "acme"]), Value::Array(vec![]));
    let gone = refused(&dir, &["members", "remove", "acme", "alice"]);
    assert_eq!(gone["error"]["code"], "member_not_found", "{gone}");
    std::fs::remove_dir_all(&dir).unwrap();
}
