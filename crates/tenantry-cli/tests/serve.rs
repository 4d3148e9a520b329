//! `tenantry serve` as a process: keys issued by the CLI work against the server, logs are JSON
//! lines carrying the request id and tenant id, and SIGTERM shuts it down cleanly (exit 0).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tenantry(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.env_remove("DATABASE_URL").env("USER", "serve-test").arg("--data-dir").arg(data_dir);
    cmd
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn wait_ready(port: u16, child: &mut Child) {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tenantry serve exited early: {status}");
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("tenantry serve did not start listening");
}

#[test]
fn serve_end_to_end_with_cli_keys_json_logs_and_graceful_shutdown() {
    let dir = std::env::temp_dir().join(format!("tenantry-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // the CLI issues the first platform-admin key
    let out = tenantry(&dir).args(["keys", "create", "--platform-admin", "--admin-name", "ops"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("tnt_"), "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown once"));

    let port = free_port();
    let bootstrap = "bootstrap-key-for-the-serve-test-0123456789";
    let mut child = tenantry(&dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--audit-checkpoint-interval-secs", "1"])
        .env("TENANTRY_BOOTSTRAP_ADMIN_KEY", bootstrap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);

    assert_eq!(http(port, "GET", "/healthz", None, None).0, 200);
    assert_eq!(http(port, "GET", "/tenants", None, None).0, 401);
    let (status, body) = http(
        port,
        "POST",
        "/tenants",
        Some(&token),
        Some(r#"{"tenant_id":"finance_dept","tenant_name":"Finance Department","tier":"platinum"}"#),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(http(port, "GET", "/tenants/finance_dept", Some(bootstrap), None).0, 200, "bootstrap key works");

    // the server signs the audit chain head periodically; the CLI verifies it next to the server
    let mut checkpoints = 0;
    for _ in 0..100 {
        let out = tenantry(&dir).args(["--json", "audit", "verify"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        checkpoints = report["checkpoints_checked"].as_u64().unwrap();
        if checkpoints > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(checkpoints > 0, "no periodic checkpoint was signed");

    // SIGTERM: clean exit
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let logs: Vec<Value> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let tenant_line = logs
        .iter()
        .find(|l| l["span"]["tenant_id"] == "finance_dept")
        .unwrap_or_else(|| panic!("no log line with tenant_id: {logs:#?}"));
    assert!(tenant_line["span"]["request_id"].as_str().is_some_and(|id| id.len() == 36), "{tenant_line}");
    assert!(logs.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("shut down cleanly"))));
    let _ = std::fs::remove_dir_all(&dir);
}
