//! PostgreSQL stopped for 60 s under load, as processes: a throwaway cluster of the test's own
//! (stopping the shared one would disturb every other test), `tenantry serve` against it, and a
//! client that keeps evaluating flags over OFREP and ingesting documents with its own ids. While
//! the database is down, OFREP keeps answering from the last snapshot (marked stale) and writes
//! answer 503; when it is back, the same server serves writes again, and every document that was
//! acknowledged (201) is there — nothing acknowledged is lost.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Replica, free_port, http, ofrep, run_ok, tenantry};
use tenantry_store_postgres::testing::required_env;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The outage; `TENANTRY_OUTAGE_SECS` shortens it for a quick local run.
fn outage() -> Duration {
    Duration::from_secs(std::env::var("TENANTRY_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60))
}

/// A PostgreSQL cluster in a temporary directory, run as the `postgres` user on a free port.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

fn as_postgres(program: &str, args: &[&str]) {
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{BIN}/{program}")])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

impl Cluster {
    fn create() -> Cluster {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("tenantry-pg-outage-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(Command::new("chown").args(["postgres:postgres", dir.to_str().unwrap()]).status().unwrap().success());
        let data = dir.join("data");
        as_postgres("initdb", &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        let cluster = Cluster { dir, port };
        cluster.start();
        let psql = |db: &str, sql: &str| {
            let status = Command::new("psql")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1"])
                .args(["-qtA", "-c", sql])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "psql {sql}");
        };
        psql("postgres", "create role tenantry_owner login createdb createrole");
        psql("template1", "create extension vector");
        psql("postgres", "create database tenantry owner tenantry_owner");
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let log = self.dir.join("log").to_string_lossy().into_owned();
        as_postgres("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    fn stop(&self) {
        as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://tenantry_owner@127.0.0.1:{}/tenantry", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{BIN}/pg_ctl"), "-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Default)]
struct Tally {
    /// client ids of documents answered 201
    acknowledged: Vec<String>,
    ofrep_ok: u32,
    ofrep_stale: u32,
    ofrep_failed: u32,
    ofrep_failures: Vec<String>,
    writes_503: u32,
    writes_other: Vec<u16>,
}

fn load(port: u16, token: &str, stop: &AtomicBool, phase: &str, tally: &mut Tally) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (status, body) = ofrep(port, token, "finance", "beta");
        match status {
            200 if body["value"] == true => tally.ofrep_ok += 1,
            _ => {
                tally.ofrep_failed += 1;
                tally.ofrep_failures.push(format!("{status} {body}"));
            }
        }
        let stale = stale_header(port, token);
        if stale {
            tally.ofrep_stale += 1;
        }
        let id = format!("{phase}-{n}");
        let doc = format!(r#"{{"title": "t", "text": "load document {id}", "client_id": "{id}"}}"#);
        match http(port, "POST", "/tenants/finance/documents", Some(token), Some(&doc)).0 {
            201 => tally.acknowledged.push(id),
            503 => tally.writes_503 += 1,
            other => tally.writes_other.push(other),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether an OFREP answer right now carries the stale marker.
fn stale_header(port: u16, token: &str) -> bool {
    use std::io::{Read, Write};
    let body = r#"{"context":{"targetingKey":"finance"}}"#;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!(
        "POST /ofrep/v1/evaluate/flags/beta HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.to_ascii_lowercase().contains("x-tenantry-stale: true")
}

fn run_phase(port: u16, token: &str, phase: &str, length: Duration) -> Tally {
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (stop, token, phase) = (stop.clone(), token.to_owned(), phase.to_owned());
        std::thread::spawn(move || {
            let mut tally = Tally::default();
            load(port, &token, &stop, &phase, &mut tally);
            tally
        })
    };
    std::thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load() {
    // the shared server must be there (CI fails without it); the test runs a cluster of its own
    if required_env("DATABASE_URL").is_none() || !Path::new(BIN).join("initdb").exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs PostgreSQL 15's initdb at {BIN}");
        return;
    }
    let cluster = Cluster::create();
    let url = cluster.url();
    let dir = cluster.dir.join("tenantry");
    let cli = |args: &[&str]| {
        let mut cmd = tenantry(&url, &dir);
        cmd.env_remove("REDIS_URL").args(args);
        run_ok(cmd).trim().to_owned()
    };
    cli(&["migrate"]);
    let token = cli(&["keys", "create", "--platform-admin", "--admin-name", "ops"]);
    cli(&["tenant", "create", "finance", "--name", "Finance", "--tier", "platinum"]);
    cli(&["flag", "set", "beta", "--enabled", "true", "--scope", "global"]);
    // short TTLs: during the outage the snapshots expire and can only be served stale
    let mut serve = tenantry(&url, &dir);
    serve.env_remove("REDIS_URL").arg("--no-migrate");
    serve.env("TENANTRY_CACHE_CRITICAL_TTL_SECS", "1").env("TENANTRY_CACHE_STANDARD_TTL_SECS", "1");
    let replica = Replica::serve(serve);
    let port = replica.port;

    let before = run_phase(port, &token, "before", Duration::from_secs(3));
    assert!(
        before.ofrep_ok > 0 && before.ofrep_failed == 0 && !before.acknowledged.is_empty(),
        "warm: {:?}",
        before.writes_other
    );

    cluster.stop();
    let started = Instant::now();
    let during = run_phase(port, &token, "during", outage());
    let down_for = started.elapsed();
    cluster.start();
    assert_eq!(during.ofrep_failed, 0, "OFREP kept answering from the last snapshot: {:?}", during.ofrep_failures);
    assert!(during.ofrep_stale > 0, "and said so (x-tenantry-stale)");
    assert!(during.writes_503 > 0, "writes answered 503 while the database was down");
    assert!(during.writes_other.is_empty(), "no other answer to a write: {:?}", during.writes_other);

    // the same server, no restart: writes are served again once its pool reconnects
    let mut recovered = false;
    for i in 0..600 {
        let doc = format!(r#"{{"title": "t", "text": "after the outage {i}", "client_id": "probe-{i}"}}"#);
        if http(port, "POST", "/tenants/finance/documents", Some(&token), Some(&doc)).0 == 201 {
            recovered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(recovered, "writes never came back after the database did");
    let after = run_phase(port, &token, "after", Duration::from_secs(3));
    assert!(after.writes_503 == 0 && after.writes_other.is_empty() && !after.acknowledged.is_empty());

    // nothing acknowledged is lost
    let listed = cli(&["--json", "docs", "list", "finance", "--limit", "1000"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let stored: Vec<&str> =
        listed["documents"].as_array().unwrap().iter().filter_map(|d| d["client_id"].as_str()).collect();
    for id in before.acknowledged.iter().chain(&during.acknowledged).chain(&after.acknowledged) {
        assert!(stored.contains(&id.as_str()), "acknowledged document {id} is missing");
    }
    println!(
        "outage of {:.0} s: during it {} OFREP answers (all from the snapshot, {} marked stale), {} writes answered 503, {} acknowledged; before {} and after {} acknowledged writes, all stored",
        down_for.as_secs_f64(),
        during.ofrep_ok,
        during.ofrep_stale,
        during.writes_503,
        during.acknowledged.len(),
        before.acknowledged.len(),
        after.acknowledged.len()
    );
    drop(replica);
}
