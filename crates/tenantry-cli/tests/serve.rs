//! `tenantry serve` as a process: keys issued by the CLI work against the server, logs are JSON
//! lines carrying the request id and tenant id, and SIGTERM shuts it down cleanly (exit 0), after
//! the requests in flight have their answers.

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

/// An OpenAI-compatible embeddings endpoint that answers every request after `delay`, with
/// vectors of `dims` (the stand-in for a paid provider; it speaks the real protocol). The
/// receiver hears of each request as it arrives.
fn slow_embedding_provider(delay: Duration, dims: usize) -> (u16, std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (arrived, arrivals) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // headers, then as many body bytes as Content-Length says
                loop {
                    let n = conn.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap_or(Value::Null);
                let inputs = body["input"].as_array().map_or(1, Vec::len);
                let _ = arrived.send(());
                std::thread::sleep(delay);
                let data: Vec<Value> = (0..inputs)
                    .map(|i| serde_json::json!({"object": "embedding", "index": i, "embedding": vec![0.5f32; dims]}))
                    .collect();
                let answer = serde_json::json!({"object": "list", "data": data, "model": "stand-in"}).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = conn.write_all(response.as_bytes());
            });
        }
    });
    (port, arrivals)
}

/// SIGTERM while a request is in flight: the server stops accepting, the request still gets its
/// answer, and then the process exits 0. The request is a query whose text goes to an embedding
/// provider that takes 1.5 s to answer.
#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let dir = std::env::temp_dir().join(format!("tenantry-serve-inflight-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (provider, arrivals) = slow_embedding_provider(Duration::from_millis(1500), 8);
    let embedding = |cmd: &mut Command| {
        cmd.args(["--embedding-provider", "openai", "--embedding-dimensions", "8"])
            .args(["--embedding-url", &format!("http://127.0.0.1:{provider}/v1")]);
    };
    let mut create = tenantry(&dir);
    embedding(&mut create);
    let out = create.args(["keys", "create", "--platform-admin", "--admin-name", "ops"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let port = free_port();
    let mut serve = tenantry(&dir);
    embedding(&mut serve);
    let mut child = serve
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    let (status, body) = http(
        port,
        "POST",
        "/tenants",
        Some(&token),
        Some(r#"{"tenant_id":"acme","tenant_name":"Acme","tier":"gold"}"#),
    );
    assert_eq!(status, 201, "{body}");

    let in_flight = {
        let token = token.clone();
        std::thread::spawn(move || {
            http(port, "POST", "/tenants/acme/query", Some(&token), Some(r#"{"text":"revenue plan","top_k":3}"#))
        })
    };
    // the query is waiting on the provider when the signal arrives
    arrivals.recv_timeout(Duration::from_secs(60)).expect("the query reached the embedding provider");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "the request in flight got its answer: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["results"].is_array(), "{answer}");
    assert_eq!(answer["model"], "text-embedding-3-small", "answered through the provider: {answer}");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0 after the request, got {exit}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A command run next to a running server: the CLI's `keys revoke`, `members remove` and `tenant
/// suspend` are refused by the server at the very next request. The command waits until the
/// server has applied its change (no timing involved: it returns once the server reported it).
/// Run over the store's change feed (no Redis) and over Redis pub/sub.
#[test]
fn cli_changes_reach_a_running_server_at_the_next_request() {
    changes_reach_the_server("feed", None);
    if let Some(redis) = tenantry_store_postgres::testing::required_env("REDIS_URL") {
        changes_reach_the_server("redis", Some(&redis));
    }
}

fn changes_reach_the_server(label: &str, redis: Option<&str>) {
    let dir = std::env::temp_dir().join(format!("tenantry-cli-reach-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let namespace = format!("cli-reach-{}:", std::process::id());
    let cli = |args: &[&str]| -> String {
        let mut cmd = tenantry(&dir);
        match redis {
            Some(url) => cmd.env("REDIS_URL", url).env("TENANTRY_REDIS_NAMESPACE", &namespace),
            None => cmd.env_remove("REDIS_URL"),
        };
        let out = cmd.args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("did not confirm") && !stderr.contains("not on this command's bus"), "{stderr}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let admin = cli(&["keys", "create", "--platform-admin", "--admin-name", "ops"]);
    cli(&["tenant", "create", "acme", "--name", "Acme", "--tier", "gold"]);
    let mut tokens = Vec::new();
    for user in ["alice", "bob", "carol"] {
        cli(&["users", "create", user, "--display-name", user]);
        cli(&["members", "add", "acme", user, "--role", "analyst"]);
        tokens.push(cli(&["keys", "create", "--user", user, "--name", "laptop"]));
    }
    let (alice, bob, carol) = (tokens[0].as_str(), tokens[1].as_str(), tokens[2].as_str());
    let keys: Value = serde_json::from_str(&cli(&["--json", "keys", "list", "--owner", "bob"])).unwrap();
    let bob_key = keys[0]["key_id"].as_str().unwrap().to_owned();

    let port = free_port();
    let mut cmd = tenantry(&dir);
    match redis {
        Some(url) => cmd.env("REDIS_URL", url).env("TENANTRY_REDIS_NAMESPACE", &namespace),
        None => cmd.env_remove("REDIS_URL"),
    };
    let mut child = cmd
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--log", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    // every principal works, and the server now holds each in its cache
    for token in [alice, bob, carol] {
        assert_eq!(http(port, "GET", "/tenants/acme/documents", Some(token), None).0, 200);
    }
    assert_eq!(http(port, "GET", "/tenants/acme", Some(&admin), None).0, 200);

    cli(&["keys", "revoke", &bob_key]);
    assert_eq!(http(port, "GET", "/tenants/acme/documents", Some(bob), None).0, 401, "a revoked key");
    cli(&["members", "remove", "acme", "alice"]);
    assert_eq!(http(port, "GET", "/tenants/acme/documents", Some(alice), None).0, 403, "a removed member");
    cli(&["tenant", "suspend", "acme", "--reason", "unpaid"]);
    let (status, body) = http(port, "GET", "/tenants/acme/documents", Some(carol), None);
    assert_eq!(status, 423, "a suspended tenant: {body}");

    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGKILL while a batch ingest is half done (the provider has embedded some of its documents):
/// after a restart the tenant has none of the batch — no row, no object — and the same batch
/// ingests whole.
#[test]
fn sigkill_during_a_batch_ingest_leaves_no_half_written_document() {
    let dir = std::env::temp_dir().join(format!("tenantry-serve-sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (provider, arrivals) = slow_embedding_provider(Duration::from_millis(300), 8);
    let command = || {
        let mut cmd = tenantry(&dir);
        cmd.env_remove("REDIS_URL")
            .args(["--embedding-provider", "openai", "--embedding-dimensions", "8"])
            .args(["--embedding-url", &format!("http://127.0.0.1:{provider}/v1")]);
        cmd
    };
    let out = command().args(["keys", "create", "--platform-admin", "--admin-name", "ops"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = command().args(["tenant", "create", "acme", "--name", "Acme", "--tier", "gold"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let start = || {
        let port = free_port();
        let mut child = command()
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(port, &mut child);
        (port, child)
    };
    let batch: String = {
        let docs: Vec<Value> = (0..5)
            .map(|i| serde_json::json!({"title": format!("part {i}"), "text": format!("chapter {i} of the annual report")}))
            .collect();
        serde_json::json!({"documents": docs}).to_string()
    };
    let (port, mut child) = start();
    let ingest = {
        let (token, batch) = (token.clone(), batch.clone());
        std::thread::spawn(move || http(port, "POST", "/tenants/acme/documents", Some(&token), Some(&batch)))
    };
    // three of the five documents have reached the provider: kill the server mid-batch
    for _ in 0..3 {
        arrivals.recv_timeout(Duration::from_secs(60)).expect("the batch reached the embedding provider");
    }
    assert!(Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap().success());
    let _ = child.wait();
    let (status, _) = ingest.join().unwrap();
    assert_ne!(status / 100, 2, "a killed server acknowledged nothing");

    let listed = command().args(["--json", "docs", "list", "acme"]).output().unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["documents"].as_array().map(Vec::len), Some(0), "no document of the killed batch: {listed}");
    let objects = dir.join("objects").join("tenants").join("acme");
    let files = walk(&objects);
    assert!(files.is_empty(), "no object of the killed batch: {files:?}");

    let (port, mut child) = start();
    let (status, body) = http(port, "POST", "/tenants/acme/documents", Some(&token), Some(&batch));
    assert_eq!(status, 201, "the same batch ingests whole after the restart: {body}");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(walk(&objects).len(), 5, "five objects");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file below `dir` (none if it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}
