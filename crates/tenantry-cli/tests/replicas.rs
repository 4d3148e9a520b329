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

/// An answer-configuration change made through replica A is in effect on replica B's very next
/// request (configuration is read from the store by every answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_through_replica_a_answers_on_replica_b_at_once() {
    let Some(redis) = required_env("REDIS_URL") else { return };
    let Some(config) = tenantry_store_postgres::testing::fresh_config().await else { return };
    let url = config.owner_url.clone();
    let dir = std::env::temp_dir().join(format!("tenantry-replicas-config-{}", std::process::id()));
    let token = {
        let mut cmd = tenantry(&url, &dir);
        cmd.args(["keys", "create", "--platform-admin", "--admin-name", "ops"]);
        run_ok(cmd).trim().to_owned()
    };
    let mut cmd = tenantry(&url, &dir);
    cmd.args(["tenant", "create", "legal", "--name", "Legal", "--tier", "gold"]);
    run_ok(cmd);
    let namespace = format!("replicas-config-{}:", std::process::id());
    let a = Replica::start(&url, &dir, &redis, &namespace);
    let b = Replica::start(&url, &dir, &redis, &namespace);
    for (title, text) in
        [("Retention", "Contracts are retained for seven years."), ("Holds", "A legal hold stops deletion.")]
    {
        let doc = serde_json::json!({"title": title, "text": text}).to_string();
        let (status, body) = http(a.port, "POST", "/tenants/legal/documents", Some(&token), Some(&doc));
        assert_eq!(status, 201, "{body}");
    }
    let ask = Some(r#"{"question": "how long are contracts retained?"}"#);
    let (status, body) = http(b.port, "POST", "/tenants/legal/ask", Some(&token), ask);
    assert_eq!(status, 200, "{body}");
    let before: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((before["config_version"].as_u64(), before["citations"].as_array().map(Vec::len)), (Some(0), Some(2)));

    let change = r#"{"settings": {"top_k": 1}, "reason": "one passage is enough"}"#;
    let (status, body) = http(a.port, "PUT", "/tenants/legal/config", Some(&token), Some(change));
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(b.port, "POST", "/tenants/legal/ask", Some(&token), ask);
    assert_eq!(status, 200, "{body}");
    let after: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((after["config_version"].as_u64(), after["citations"].as_array().map(Vec::len)), (Some(1), Some(1)));
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `redis-server` on a free port, nothing persisted; killed with SIGKILL when dropped.
struct RedisProcess(std::process::Child);

impl RedisProcess {
    fn start(port: u16) -> RedisProcess {
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return RedisProcess(child);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on {port}");
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Redis killed (SIGKILL) and restarted empty under two running replicas: both keep serving
/// from the store meanwhile, a change made through A while Redis is down commits, and once Redis
/// is back both replicas resubscribe, resynchronize and B serves the change — no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_resynchronize_after_redis_is_killed_and_restarted() {
    // a Redis of this test's own: killing the shared one would disturb every other test
    if required_env("REDIS_URL").is_none() {
        return;
    }
    let Some(config) = tenantry_store_postgres::testing::fresh_config().await else { return };
    let url = config.owner_url.clone();
    let dir = std::env::temp_dir().join(format!("tenantry-redis-restart-{}", std::process::id()));
    let port = support::free_port();
    let redis_url = format!("redis://127.0.0.1:{port}");
    let redis = RedisProcess::start(port);
    let cli = |args: &[&str]| {
        let mut cmd = tenantry(&url, &dir);
        cmd.env("REDIS_URL", &redis_url).args(args);
        run_ok(cmd).trim().to_owned()
    };
    let token = cli(&["keys", "create", "--platform-admin", "--admin-name", "ops"]);
    cli(&["tenant", "create", "finance", "--name", "Finance", "--tier", "gold"]);
    cli(&["flag", "set", "beta", "--enabled", "false", "--scope", "global"]);
    let a = Replica::start(&url, &dir, &redis_url, "");
    let b = Replica::start(&url, &dir, &redis_url, "");
    assert_eq!(ofrep(b.port, &token, "finance", "beta").1["value"], false, "B caches the value");

    drop(redis);
    let change = r#"{"feature_name": "beta", "enabled": true, "scope": "tenant", "scope_id": "finance"}"#;
    let (status, body) = http(a.port, "POST", "/feature-flags", Some(&token), Some(change));
    assert_eq!(status, 200, "a write commits to the store while Redis is down: {body}");
    let (status, body) = ofrep(b.port, &token, "finance", "beta");
    assert_eq!(status, 200, "B keeps serving while Redis is down: {body}");

    let _redis = RedisProcess::start(port);
    // B's subscriber reconnects with backoff; on reconnecting it drops its snapshots
    let mut seen = false;
    for _ in 0..600 {
        if ofrep(b.port, &token, "finance", "beta").1["value"] == true {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "B never served the change made while Redis was down");
    let (status, _) = http(a.port, "POST", "/feature-flags", Some(&token), Some(&change.replace("true", "false")));
    assert_eq!(status, 200);
    eventually("B hears A again over the restarted Redis", || {
        ofrep(b.port, &token, "finance", "beta").1["value"] == false
    });
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
