//! Running `tenantry serve` replicas as processes, and a minimal HTTP/1.1 client for them
//! (shared by the replica test and the invalidation benchmark).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const AUDIT_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `tenantry` on the embedded store in `data_dir` (no DATABASE_URL, no REDIS_URL).
pub fn embedded(data_dir: &PathBuf) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("TENANTRY_AUDIT_KEY", AUDIT_KEY)
        .env("USER", "sdk-test")
        .arg("--data-dir")
        .arg(data_dir);
    cmd
}

/// Runs `cmd` to completion: (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run tenantry");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tenantry` against the PostgreSQL database at `database_url`.
pub fn tenantry(database_url: &str, data_dir: &PathBuf) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.env("DATABASE_URL", database_url)
        .env("TENANTRY_AUDIT_KEY", AUDIT_KEY)
        .env("USER", "replica-test")
        .arg("--data-dir")
        .arg(data_dir);
    cmd
}

pub fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("run tenantry");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub struct Replica {
    pub port: u16,
    child: Child,
}

impl Replica {
    pub fn start(database_url: &str, data_dir: &PathBuf, redis_url: &str, namespace: &str) -> Replica {
        let mut cmd = tenantry(database_url, data_dir);
        cmd.arg("--no-migrate").env("REDIS_URL", redis_url).env("TENANTRY_REDIS_NAMESPACE", namespace);
        Replica::serve(cmd)
    }

    /// `tenantry serve` from `cmd` (its store options set) on a free port, once it listens.
    pub fn serve(mut cmd: Command) -> Replica {
        let port = free_port();
        let mut child = cmd
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--log", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tenantry serve");
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("tenantry serve exited early: {status}");
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Replica { port, child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tenantry serve did not start listening");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request over a fresh connection: (status, body).
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
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

/// The OFREP evaluation of `flag` for `tenant` on a replica: (status, parsed body).
pub fn ofrep(port: u16, token: &str, tenant: &str, flag: &str) -> (u16, serde_json::Value) {
    let body = format!("{{\"context\":{{\"targetingKey\":\"{tenant}\"}}}}");
    let (status, text) = http(port, "POST", &format!("/ofrep/v1/evaluate/flags/{flag}"), Some(token), Some(&body));
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}
