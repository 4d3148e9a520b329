//! `tenantry serve` as a process: keys issued by the CLI work against the server, logs are JSON
//! lines carrying the request id and tenant id, and SIGTERM shuts it down cleanly (exit 0).

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{free_port, http};

fn tenantry(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.env_remove("DATABASE_URL").env("USER", "serve-test").arg("--data-dir").arg(data_dir);
    cmd
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
