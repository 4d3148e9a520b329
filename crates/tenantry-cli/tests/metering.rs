//! Metering survives SIGKILL: a server under concurrent query load is killed; afterwards every
//! query that was answered 2xx has its usage in the ledger, and none is counted twice (each
//! request's API call and vector query commit together, so the two totals are equal), on the
//! embedded store and on PostgreSQL.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use support::{embedded, free_port, run_ok, tenantry};

/// One request; `None` when the server is gone (connection refused, reset, or no full answer).
fn try_query(port: u16, token: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = r#"{"text": "quarterly revenue"}"#;
    let request = format!(
        "POST /tenants/metered/query HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

fn kill_under_load(command: &dyn Fn() -> Command) {
    let token = {
        let mut cmd = command();
        cmd.args(["keys", "create", "--platform-admin", "--admin-name", "ops"]);
        run_ok(cmd).trim().to_owned()
    };
    let mut cmd = command();
    cmd.args(["tenant", "create", "metered", "--name", "Metered", "--tier", "gold"]).args([
        "--rate-limit-per-minute",
        "1000000",
        "--max-queries-per-day",
        "100000000",
    ]);
    run_ok(cmd);

    let port = free_port();
    let mut server = command()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (answered, sent, stop) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (answered, sent, stop, token) = (answered.clone(), sent.clone(), stop.clone(), token.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match try_query(port, &token) {
                        Some(s) if (200..300).contains(&s) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(s) => panic!("a query was refused with {s}"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    while answered.load(Ordering::Relaxed) < 300 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(Command::new("kill").args(["-KILL", &server.id().to_string()]).status().unwrap().success());
    let _ = server.wait();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (answered, sent) = (answered.load(Ordering::Relaxed), sent.load(Ordering::Relaxed));

    // the ledger after the kill (an empty price book: every quantity is listed as unpriced)
    let month = time::OffsetDateTime::now_utc().date();
    let month = format!("{:04}-{:02}", month.year(), u8::from(month.month()));
    let mut cmd = command();
    cmd.args(["--json", "cost", "report", "--month", &month, "--currency", "USD"]);
    let report: Value = serde_json::from_str(&run_ok(cmd)).unwrap();
    let quantity = |meter: &str| -> u64 {
        report["unpriced"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["tenant"] == "metered" && u["meter"] == meter)
            .map(|u| u["quantity"].as_u64().unwrap())
            .sum()
    };
    let (queries, calls) = (quantity("vector_queries"), quantity("api_calls"));
    assert!(queries >= answered, "every answered query is in the ledger: {queries} recorded, {answered} answered");
    assert!(queries <= sent, "no query counted twice: {queries} recorded, {sent} sent");
    assert_eq!(calls, queries, "a request's API call and query commit together");
    assert!(quantity("embedding_tokens") >= 2 * answered, "two words per query");
}

#[test]
fn answered_requests_keep_their_usage_through_sigkill_on_the_embedded_store() {
    let dir = std::env::temp_dir().join(format!("tenantry-metering-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    kill_under_load(&|| embedded(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_requests_keep_their_usage_through_sigkill_on_postgresql() {
    let Some(config) = tenantry_store_postgres::testing::fresh_config().await else { return };
    let url = config.owner_url.clone();
    let dir = std::env::temp_dir().join(format!("tenantry-metering-kill-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = tokio::task::spawn_blocking(move || {
        kill_under_load(&|| {
            let mut cmd = tenantry(&url, &dir);
            cmd.env_remove("REDIS_URL");
            cmd
        });
        let _ = std::fs::remove_dir_all(&dir);
    });
    run.await.unwrap();
}
