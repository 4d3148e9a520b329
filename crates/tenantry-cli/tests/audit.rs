//! `tenantry audit` through the real binary on the embedded store: verify, checkpoint, export,
//! a third party verifying an export with only the public key, and tampering detected both in
//! the database and in an export file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::{Connection, SqliteConnection};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .env_remove("DATABASE_URL")
        .env_remove("TENANTRY_AUDIT_KEY")
        .env("USER", "auditor-test")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run tenantry")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "tenantry {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenantry-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn verify_checkpoint_export_and_tampering() {
    let dir = temp("main");
    ok(&dir, &["tenant", "create", "finance_dept", "--name", "Finance", "--tier", "platinum"]);
    ok(&dir, &["tenant", "create", "legal_dept", "--name", "Legal", "--tier", "gold"]);
    ok(&dir, &["flag", "set", "beta", "--enabled", "true", "--scope", "tier", "--scope-id", "gold"]);
    ok(&dir, &["tenant", "suspend", "legal_dept", "--reason", "matter on hold"]);
    ok(&dir, &["tenant", "get", "legal_dept"]);
    let verified = ok(&dir, &["audit", "verify"]);
    assert!(verified.contains("audit log intact"), "{verified}");
    assert!(verified.contains("signatures checked"), "{verified}");
    let cp: serde_json::Value = serde_json::from_str(&ok(&dir, &["--json", "audit", "checkpoint"])).unwrap();
    let checkpoint_seq = cp["seq"].as_i64().unwrap();
    let report: serde_json::Value = serde_json::from_str(&ok(&dir, &["--json", "audit", "verify"])).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["checkpoints_checked"], 1);

    // export, then a third party verifies it with nothing but the public key
    let export = ok(&dir, &["audit", "export"]);
    let lines: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() > 6);
    assert!(lines.iter().all(|l| l["hash"].as_str().is_some_and(|h| h.len() == 64) && l["signature"].is_string()));
    let file = dir.join("export.jsonl");
    std::fs::write(&file, &export).unwrap();
    let public_key = ok(&dir, &["audit", "public-key"]).trim().to_owned();
    let stranger = temp("stranger");
    let third_party =
        ok(&stranger, &["audit", "verify", "--file", file.to_str().unwrap(), "--public-key", &public_key]);
    assert!(third_party.contains("intact"), "{third_party}");
    assert!(!stranger.exists(), "verifying an export touches no store and no key");
    // an edited export is caught, naming the entry
    let edited = export.replacen("matter on hold", "routine check", 1);
    std::fs::write(&file, &edited).unwrap();
    let out = run(&stranger, &["audit", "verify", "--file", file.to_str().unwrap(), "--public-key", &public_key]);
    assert_eq!(out.status.code(), Some(1));
    let suspended = lines.iter().find(|l| l["reason"] == "matter on hold").unwrap()["seq"].as_i64().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("entry {suspended}")) && stderr.contains("hash_mismatch"), "{stderr}");
    // a key that did not sign is refused
    std::fs::write(&file, &export).unwrap();
    let other_key = ok(&stranger, &["audit", "public-key"]).trim().to_owned();
    let out = run(&stranger, &["audit", "verify", "--file", file.to_str().unwrap(), "--public-key", &other_key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_signature"));

    // tamper in the database itself, as someone with the file would
    let mut db = SqliteConnection::connect(&format!("sqlite://{}", dir.join("tenantry.db").display())).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "drop trigger audit_log_no_update; update audit_log set actor_id = 'nobody' where seq = {suspended}"
    )))
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    let out = run(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("failed at entry {suspended}")), "{stderr}");
    assert!(checkpoint_seq > suspended);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&stranger);
}
