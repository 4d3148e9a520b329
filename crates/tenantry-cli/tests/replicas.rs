//! Two `tenantry serve` processes sharing PostgreSQL and Redis: a flag change and a suspension
//! made through replica A are seen by replica B, and query limits count across both
//! (correctness only; the propagation time is measured by `benches/invalidation.rs`).

mod support;

use std::time::Duration;

use support::{Replica, http, ofrep, run_ok, tenantry};
use tenantry_store_postgres::testing::required_env;

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_replica_a_is_seen_by_replica_b() {
    let Some(redis) = required_env("REDIS_URL") else { return };
    let Some(config) = tenantry_store_postgres::testing::fresh_config().await else { return };
    let url = config.owner_url.clone();
    let dir = std::env::temp_dir().join(format!("tenantry-replicas-{}", std::process::id()));
    let token = {
        let mut cmd = tenantry(&url, &dir);
        cmd.args(["keys", "create", "--platform-admin", "--admin-name", "ops"]);
        run_ok(cmd).trim().to_owned()
    };
    let mut cmd = tenantry(&url, &dir);
    cmd.args(["tenant", "create", "finance", "--name", "Finance", "--tier", "gold"]);
    run_ok(cmd);
    let mut cmd = tenantry(&url, &dir);
    cmd.args(["flag", "set", "beta", "--enabled", "false", "--scope", "global"]);
    run_ok(cmd);
    let mut cmd = tenantry(&url, &dir);
    cmd.args(["tenant", "create", "capped", "--name", "Capped", "--tier", "gold", "--rate-limit-per-minute", "3"]);
    run_ok(cmd);

    let namespace = format!("replicas-{}:", std::process::id());
    let a = Replica::start(&url, &dir, &redis, &namespace);
    let b = Replica::start(&url, &dir, &redis, &namespace);
    let (status, body) = ofrep(b.port, &token, "finance", "beta");
    assert_eq!((status, &body["value"]), (200, &serde_json::json!(false)), "{body}");

    let change = r#"{"feature_name": "beta", "enabled": true, "scope": "tenant", "scope_id": "finance"}"#;
    assert_eq!(http(a.port, "POST", "/feature-flags", Some(&token), Some(change)).0, 200);
    eventually("B evaluates the new value", || ofrep(b.port, &token, "finance", "beta").1["value"] == true);

    // query limits are counted once across replicas (Redis): 3 per minute in total
    let query = Some(r#"{"text": "budget"}"#);
    for port in [a.port, b.port, a.port] {
        let (status, body) = http(port, "POST", "/tenants/capped/query", Some(&token), query);
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = http(b.port, "POST", "/tenants/capped/query", Some(&token), query);
    assert_eq!(status, 429, "the fourth query in the minute, on either replica, is refused: {body}");

    let (status, body) = http(a.port, "POST", "/tenants/finance/suspend", Some(&token), None);
    assert_eq!(status, 200, "{body}");
    eventually("B refuses the suspended tenant", || {
        let (status, body) = ofrep(b.port, &token, "finance", "beta");
        status == 403 && body["errorDetails"].as_str().is_some_and(|d| d.contains("suspended"))
    });
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
