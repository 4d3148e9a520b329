//! Load at twice an expected traffic profile, open loop, against one `tenantry serve` on
//! PostgreSQL (and Redis when `REDIS_URL` is set), for `LOAD_SECS` (default 300 s).
//!
//! The expected profile (a mid-size deployment: 100 tenants, one replica) is, per second:
//! 100 OFREP flag evaluations, 10 queries, 2 documents ingested and 2 management calls
//! (alternately a tenant read and a tenant-scoped flag write). The bench runs it at `LOAD_FACTOR`
//! (default 2) times that rate: each class of request starts on its own schedule whether or not
//! earlier requests have answered (open loop), over a fresh connection each, and every answer is
//! recorded — status and latency from the scheduled start, so queueing counts.
//!
//! `DATABASE_URL=postgres://tenantry_owner@127.0.0.1:5432/postgres cargo bench -p tenantry-cli --bench load`

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Replica, http, run_ok, tenantry};

const TENANTS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Class {
    Ofrep,
    Query,
    Ingest,
    Management,
}

/// Requests per second of the expected profile.
fn expected_rate(class: Class) -> f64 {
    match class {
        Class::Ofrep => 100.0,
        Class::Query => 10.0,
        Class::Ingest => 2.0,
        Class::Management => 2.0,
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn request(port: u16, token: &str, class: Class, n: u64) -> u16 {
    let tenant = format!("load-{}", n as usize % TENANTS);
    match class {
        Class::Ofrep => {
            let body = format!("{{\"context\":{{\"targetingKey\":\"{tenant}\"}}}}");
            http(port, "POST", "/ofrep/v1/evaluate/flags", Some(token), Some(&body)).0
        }
        Class::Query => {
            let body = r#"{"text": "quarterly revenue and budget", "top_k": 5}"#;
            http(port, "POST", &format!("/tenants/{tenant}/query"), Some(token), Some(body)).0
        }
        Class::Ingest => {
            let body = format!(
                r#"{{"title": "report {n}", "text": "load document {n}: quarterly revenue, budget and hiring plan", "client_id": "load-{n}"}}"#
            );
            http(port, "POST", &format!("/tenants/{tenant}/documents"), Some(token), Some(&body)).0
        }
        Class::Management if n.is_multiple_of(2) => {
            http(port, "GET", &format!("/tenants/{tenant}"), Some(token), None).0
        }
        Class::Management => {
            let body = format!(
                r#"{{"feature_name": "new_ranker", "enabled": {}, "scope": "tenant", "scope_id": "{tenant}"}}"#,
                n % 4 == 1
            );
            http(port, "POST", "/feature-flags", Some(token), Some(&body)).0
        }
    }
}

type Samples = Arc<Mutex<Vec<(Class, u16, Duration)>>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        println!("load: skipped (set DATABASE_URL)");
        return;
    };
    let _ = base;
    let config = tenantry_store_postgres::testing::fresh_config().await.expect("a fresh database");
    let url = config.owner_url.clone();
    let dir = std::env::temp_dir().join(format!("tenantry-load-{}", std::process::id()));
    let redis = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    let command = || {
        let mut cmd = tenantry(&url, &dir);
        match &redis {
            Some(r) => cmd.env("REDIS_URL", r).env("TENANTRY_REDIS_NAMESPACE", format!("load-{}:", std::process::id())),
            None => cmd.env_remove("REDIS_URL"),
        };
        cmd
    };
    let mut cmd = command();
    cmd.args(["keys", "create", "--platform-admin", "--admin-name", "ops"]);
    let token = run_ok(cmd).trim().to_owned();
    let mut serve = command();
    serve.arg("--no-migrate");
    let replica = Replica::serve(serve);
    let port = replica.port;

    // 100 gold tenants with 5 documents each, a global flag and a tier rollout
    for t in 0..TENANTS {
        let body = format!(r#"{{"tenant_id": "load-{t}", "tenant_name": "Load {t}", "tier": "gold"}}"#);
        assert_eq!(http(port, "POST", "/tenants", Some(&token), Some(&body)).0, 201);
        let docs: Vec<String> = (0..5)
            .map(|i| {
                format!(
                    r#"{{"title": "seed {i}", "text": "seed document {i} of tenant {t}: revenue, budget, hiring"}}"#
                )
            })
            .collect();
        let batch = format!(r#"{{"documents": [{}]}}"#, docs.join(","));
        assert_eq!(http(port, "POST", &format!("/tenants/load-{t}/documents"), Some(&token), Some(&batch)).0, 201);
    }
    for body in [
        r#"{"feature_name": "new_ranker", "enabled": false, "scope": "global"}"#,
        r#"{"feature_name": "new_ranker", "enabled": true, "scope": "tier", "scope_id": "gold", "rollout_percentage": 50}"#,
        r#"{"feature_name": "top_k", "value": 5, "scope": "global"}"#,
    ] {
        assert_eq!(http(port, "POST", "/feature-flags", Some(&token), Some(body)).0, 200);
    }

    let factor: f64 = env_or("LOAD_FACTOR", 2.0);
    let secs: u64 = env_or("LOAD_SECS", 300);
    let classes = [Class::Ofrep, Class::Query, Class::Ingest, Class::Management];
    println!(
        "[load] {secs} s at {factor}x the expected profile: {} rps in all ({}), postgres{}",
        classes.iter().map(|c| expected_rate(*c) * factor).sum::<f64>(),
        classes.iter().map(|c| format!("{c:?} {}", expected_rate(*c) * factor)).collect::<Vec<_>>().join(", "),
        if redis.is_some() { " + redis" } else { "" }
    );
    let samples: Samples = Arc::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut schedulers = Vec::new();
    for class in classes {
        let (samples, token) = (samples.clone(), token.clone());
        let every = Duration::from_secs_f64(1.0 / (expected_rate(class) * factor));
        schedulers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0u64;
            let mut inflight = Vec::new();
            while Instant::now() < deadline {
                tick.tick().await;
                n += 1;
                let (samples, token) = (samples.clone(), token.clone());
                let scheduled = Instant::now();
                inflight.push(tokio::task::spawn_blocking(move || {
                    let status = request(port, &token, class, n);
                    samples.lock().unwrap().push((class, status, scheduled.elapsed()));
                }));
            }
            for task in inflight {
                let _ = task.await;
            }
        }));
    }
    for s in schedulers {
        s.await.unwrap();
    }
    let elapsed = started.elapsed();
    let samples = samples.lock().unwrap().clone();
    println!("[load] {} requests in {:.0} s", samples.len(), elapsed.as_secs_f64());
    for class in classes {
        let mut latencies: Vec<Duration> = samples.iter().filter(|s| s.0 == class).map(|s| s.2).collect();
        let statuses: Vec<u16> = samples.iter().filter(|s| s.0 == class).map(|s| s.1).collect();
        latencies.sort();
        let errors = statuses.iter().filter(|s| !(200..300).contains(*s)).count();
        let mut codes: std::collections::BTreeMap<u16, usize> = Default::default();
        for s in &statuses {
            *codes.entry(*s).or_default() += 1;
        }
        println!(
            "[load] {class:?}: n={} rps={:.1} errors={} ({:.2}%) p50={:.1} ms p99={:.1} ms max={:.1} ms statuses={codes:?}",
            statuses.len(),
            statuses.len() as f64 / elapsed.as_secs_f64(),
            errors,
            100.0 * errors as f64 / statuses.len().max(1) as f64,
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    drop(replica);
    let _ = std::fs::remove_dir_all(&dir);
}
