//! The data-plane commands end to end through the binary, on the embedded store and on
//! PostgreSQL: `docs ingest` of a directory (re-ingest skips, non-text files are refused), `query`,
//! `docs list`, `docs delete`, `index list`, `seed-data`, and bad input (exit 2 / exit 1).

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn json(mut cmd: Command, args: &[&str]) -> Value {
    cmd.arg("--json").args(args);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn status(mut cmd: Command, args: &[&str]) -> (i32, String) {
    cmd.args(args);
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn scenario(make: &dyn Fn() -> Command, dir: &Path) {
    let docs = dir.join("input");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    std::fs::write(docs.join("invoice.txt"), "The invoice payment terms are net thirty days.").unwrap();
    std::fs::write(docs.join("sub/privacy.md"), "Patient privacy policy and records retention.").unwrap();
    std::fs::write(docs.join("blob.bin"), [0xff, 0xfe, 0x00]).unwrap();
    json(make(), &["tenant", "create", "acme", "--name", "Acme", "--tier", "silver"]);
    json(make(), &["tenant", "create", "rival", "--name", "Rival", "--tier", "silver"]);
    json(make(), &["tenant", "create", "vip", "--name", "VIP", "--tier", "platinum"]);

    let r = json(make(), &["docs", "ingest", "acme", docs.to_str().unwrap()]);
    assert_eq!(r["stored"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["refused"].as_array().unwrap().len(), 1, "{r}");
    let r = json(make(), &["docs", "ingest", "acme", docs.to_str().unwrap()]);
    assert_eq!((r["stored"].as_array().unwrap().len(), r["skipped"].as_array().unwrap().len()), (0, 2), "{r}");
    json(make(), &["docs", "ingest", "rival", docs.join("invoice.txt").to_str().unwrap()]);

    let r = json(make(), &["query", "acme", "invoice payment", "--top-k", "1"]);
    assert_eq!(r["results"][0]["title"], "invoice.txt", "{r}");
    let acme_invoice = r["results"][0]["document_id"].as_str().unwrap().to_owned();
    let r = json(make(), &["query", "rival", "invoice payment", "--top-k", "10"]);
    let rival: Vec<&str> =
        r["results"].as_array().unwrap().iter().map(|h| h["document_id"].as_str().unwrap()).collect();
    assert_eq!(rival.len(), 1);
    assert!(!rival.contains(&acme_invoice.as_str()), "rival sees only its own");

    let r = json(make(), &["docs", "list", "acme"]);
    assert_eq!(r["documents"].as_array().unwrap().len(), 2);
    // acme's document through rival: not found, nothing deleted
    let (code, err) = status(make(), &["docs", "delete", "rival", &acme_invoice]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    json(make(), &["docs", "delete", "acme", &acme_invoice]);
    assert_eq!(json(make(), &["docs", "list", "acme"])["documents"].as_array().unwrap().len(), 1);

    let r = json(make(), &["index", "list"]);
    let names: Vec<&str> = r["indexes"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shared-1", "dedicated-vip"], "{r}");

    let r = json(make(), &["seed-data", "--scale", "0.01"]);
    let seeded: Vec<i64> = r["seeded"].as_array().unwrap().iter().map(|s| s["documents"].as_i64().unwrap()).collect();
    assert_eq!(seeded, [10, 1, 2], "{r}");
    let r = json(make(), &["query", "tenant_e", "revenue contract", "--top-k", "3"]);
    assert_eq!(r["results"].as_array().unwrap().len(), 3, "{r}");

    // bad input: exit 2 with a sentence; refusals: exit 1
    for (args, want) in [
        (&["query", "acme", "x", "--top-k", "0"][..], 2),
        (&["query", "acme", "x", "--filter", "{nope"][..], 2),
        (&["docs", "delete", "acme", "../etc"][..], 2),
        (&["docs", "ingest", "acme", "/definitely/not/here"][..], 2),
        (&["query", "ghost", "x"][..], 1),
        (&["seed-data", "--scale", "0"][..], 2),
    ] {
        let (code, err) = status(make(), args);
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[test]
fn docs_and_query_on_the_embedded_store() {
    let dir = std::env::temp_dir().join(format!("tenantry-docs-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    scenario(&|| support::embedded(&data), &dir);
    assert!(data.join("objects/tenants/acme/documents").is_dir(), "raw documents under the tenant's prefix");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_and_query_on_postgres() {
    let Some(config) = tenantry_store_postgres::testing::fresh_config().await else { return };
    let dir = std::env::temp_dir().join(format!("tenantry-docs-cli-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let url = config.owner_url.clone();
    tokio::task::spawn_blocking(move || scenario(&|| support::tenantry(&url, &data), &dir)).await.unwrap();
}

/// A capacity alert reaches the webhook and the command's log: with capacity 2 and threshold
/// 0.5, the first signup fills the index to its alert point; the CLI waits for the delivery
/// before it exits.
#[test]
fn capacity_alerts_are_posted_to_the_webhook() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // read until the JSON body is complete
        while !String::from_utf8_lossy(&request).contains('}') {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let dir = std::env::temp_dir().join(format!("tenantry-webhook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = support::embedded(&dir);
    cmd.args(["--index-capacity", "2", "--index-alert-threshold", "0.5"])
        .arg("--capacity-webhook-url")
        .arg(format!("http://127.0.0.1:{port}/hooks/capacity"));
    cmd.args(["--json", "tenant", "create", "first", "--name", "First", "--tier", "silver"]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // logged by the command itself too (every command logs warnings to stderr)
    assert!(stderr.contains("capacity alert threshold") && stderr.contains("shared-1"), "{stderr}");
    let request = server.join().unwrap();
    assert!(request.starts_with("POST /hooks/capacity "), "{request}");
    let body = &request[request.find("\r\n\r\n").unwrap() + 4..];
    let alert: Value = serde_json::from_str(body).unwrap();
    assert_eq!(alert["event"], "index_capacity_alert");
    assert_eq!(
        (alert["index"].as_str(), alert["used"].as_u64(), alert["capacity"].as_u64()),
        (Some("shared-1"), Some(1), Some(2))
    );
    let r = json(support::embedded(&dir), &["index", "list"]);
    assert_eq!(r["indexes"].as_array().unwrap().len(), 2, "a standby index was provisioned: {r}");
    std::fs::remove_dir_all(&dir).unwrap();
}
