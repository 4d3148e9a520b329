//! Invalidation propagation between two `tenantry serve` replicas sharing PostgreSQL and Redis:
//! change a flag (and suspend/activate a tenant) through replica A, poll replica B over OFREP
//! until it answers the new state; p50/p99 over 300 trials each. Time runs from A's committed
//! write (its HTTP response) to B's first fresh answer, so it includes B's poll round trip.
//!
//! `DATABASE_URL=... REDIS_URL=redis://127.0.0.1:6379 cargo bench -p tenantry-cli --bench invalidation`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Replica, http, ofrep, run_ok, tenantry};

const TRIALS: usize = 300;

fn wait_until(mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(10), "B never saw the change");
    }
    started.elapsed()
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "{what:<28} trials={} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        samples.len(),
        pct(0.50),
        pct(0.99),
        samples.last().unwrap().as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (Ok(_), Ok(redis)) = (std::env::var("DATABASE_URL"), std::env::var("REDIS_URL")) else {
        println!("invalidation: skipped (set DATABASE_URL and REDIS_URL)");
        return;
    };
    let config = tenantry_store_postgres::testing::fresh_config().await.expect("a database");
    let url = config.owner_url.clone();
    let dir = std::env::temp_dir().join(format!("tenantry-bench-replicas-{}", std::process::id()));
    let mut cmd = tenantry(&url, &dir);
    cmd.args(["keys", "create", "--platform-admin", "--admin-name", "bench"]);
    let token = run_ok(cmd).trim().to_owned();
    for args in [
        &["tenant", "create", "finance", "--name", "Finance", "--tier", "gold"][..],
        &["flag", "set", "beta", "--enabled", "false", "--scope", "global"][..],
    ] {
        let mut cmd = tenantry(&url, &dir);
        cmd.args(args);
        run_ok(cmd);
    }
    let namespace = format!("bench-{}:", std::process::id());
    let a = Replica::start(&url, &dir, &redis, &namespace);
    let b = Replica::start(&url, &dir, &redis, &namespace);
    assert_eq!(ofrep(b.port, &token, "finance", "beta").0, 200);

    let mut flag_samples = Vec::new();
    for i in 0..TRIALS {
        let value = i % 2 == 0;
        let body =
            format!(r#"{{"feature_name": "beta", "enabled": {value}, "scope": "tenant", "scope_id": "finance"}}"#);
        assert_eq!(http(a.port, "POST", "/feature-flags", Some(&token), Some(&body)).0, 200);
        flag_samples.push(wait_until(|| ofrep(b.port, &token, "finance", "beta").1["value"] == value));
    }
    report("flag change A -> B", flag_samples);

    let mut suspend_samples = Vec::new();
    for _ in 0..TRIALS {
        assert_eq!(http(a.port, "POST", "/tenants/finance/suspend", Some(&token), None).0, 200);
        suspend_samples.push(wait_until(|| ofrep(b.port, &token, "finance", "beta").0 == 403));
        assert_eq!(http(a.port, "POST", "/tenants/finance/activate", Some(&token), None).0, 200);
        wait_until(|| ofrep(b.port, &token, "finance", "beta").0 == 200);
    }
    report("suspension A -> B refused", suspend_samples);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
