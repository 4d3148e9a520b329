//! The seed's PractaThon, end to end through the `tenantry` binary: on the embedded store (and its
//! data surviving a process restart), and unchanged against PostgreSQL when `DATABASE_URL` is set
//! (always in CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// How the binary reaches its store: an embedded data dir, or a PostgreSQL owner URL.
#[derive(Clone)]
enum Backend {
    Embedded(PathBuf),
    Postgres(String),
}

fn run(backend: &Backend, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.env_remove("DATABASE_URL").env_remove("TENANTRY_DATA_DIR").env("USER", "practathon");
    match backend {
        Backend::Embedded(dir) => cmd.arg("--data-dir").arg(dir),
        // a fixed signing key, so the restarted process signs with the same key
        Backend::Postgres(url) => cmd.arg("--database-url").arg(url).env("TENANTRY_AUDIT_KEY", "42".repeat(32)),
    };
    cmd.args(args).output().expect("run tenantry")
}

/// Runs a command that must succeed and returns its `--json` output.
fn ok(backend: &Backend, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(backend, &all);
    assert!(
        out.status.success(),
        "tenantry {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("tenantry {args:?} printed no JSON ({e})"))
}

/// Runs a command that must be refused with `exit` and returns (code, message) from stderr JSON.
fn refused(backend: &Backend, args: &[&str], exit: i32) -> (String, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(backend, &all);
    assert_eq!(out.status.code(), Some(exit), "tenantry {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "a refused command prints nothing on stdout");
    let err: Value = serde_json::from_slice(&out.stderr).expect("stderr is one JSON error");
    (err["error"]["code"].as_str().unwrap().to_owned(), err["error"]["message"].as_str().unwrap().to_owned())
}

fn practathon(b: &Backend) {
    // 1. five tenants across tiers
    let finance = ok(
        b,
        &[
            "tenant",
            "create",
            "finance_dept",
            "--name",
            "Finance Department",
            "--tier",
            "platinum",
            "--max-users",
            "100",
            "--max-documents",
            "50000",
            "--max-queries-per-day",
            "10000",
            "--sla-target",
            "0.9999",
            "--support-level",
            "24/7",
            "--cost-center",
            "CC-FIN-01",
            "--monthly-budget",
            "250000",
            "--currency",
            "INR",
        ],
    );
    assert_eq!(finance["tenant_name"], "Finance Department");
    assert_eq!(finance["max_documents"], 50000);
    assert_eq!(finance["max_storage_gb"], 1000, "unset limit from the platinum tier");
    for (id, name, tier) in [
        ("legal_dept", "Legal Department", "gold"),
        ("global_ops", "Global Operations", "gold"),
        ("hr_ops", "HR Operations", "silver"),
        ("marketing", "Marketing", "silver"),
    ] {
        let t = ok(b, &["tenant", "create", id, "--name", name, "--tier", tier]);
        assert_eq!((t["status"].as_str(), t["tier"].as_str()), (Some("active"), Some(tier)));
    }
    let listed = ok(b, &["tenant", "list", "--tier", "gold"]);
    let ids: Vec<&str> =
        listed["tenants"].as_array().unwrap().iter().map(|t| t["tenant_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["global_ops", "legal_dept"]);

    // 2. flags: global, tier and one tenant override
    ok(b, &["flag", "set", "basic_search", "--enabled", "true", "--scope", "global"]);
    ok(b, &["flag", "set", "advanced_analytics", "--enabled", "false", "--scope", "global"]);
    for f in ["advanced_analytics", "dedicated_namespace", "priority_support"] {
        ok(b, &["flag", "set", f, "--enabled", "true", "--scope", "tier", "--scope-id", "platinum"]);
    }
    for f in ["advanced_analytics", "shared_namespace"] {
        ok(b, &["flag", "set", f, "--enabled", "true", "--scope", "tier", "--scope-id", "gold"]);
    }
    for f in ["basic_analytics", "shared_namespace"] {
        ok(b, &["flag", "set", f, "--enabled", "true", "--scope", "tier", "--scope-id", "silver"]);
    }
    ok(b, &["flag", "set", "advanced_analytics", "--enabled", "true", "--scope", "tenant", "--scope-id", "marketing"]);
    let platinum = ok(b, &["tier", "get", "platinum"]);
    assert_eq!(
        platinum[0]["default_flags"],
        serde_json::json!({"advanced_analytics": true, "dedicated_namespace": true, "priority_support": true})
    );
    assert_eq!(platinum[0]["isolation"], "dedicated_index");
    for (tenant, enabled, reason) in [
        ("finance_dept", true, "tier_default"),
        ("marketing", true, "tenant_override"),
        ("hr_ops", false, "global_default"),
    ] {
        let e = ok(b, &["flag", "eval", tenant, "advanced_analytics"]);
        assert_eq!((e["enabled"].as_bool(), e["reason"].as_str()), (Some(enabled), Some(reason)), "{tenant}");
    }
    let unknown = ok(b, &["flag", "eval", "hr_ops", "quantum_search"]);
    assert_eq!((unknown["known"].as_bool(), unknown["reason"].as_str()), (Some(false), Some("unknown_flag")));

    // 3. health scores (the seed's three cases)
    for (tenant, args, score, class) in [
        ("finance_dept", ["350", "0.005", "0.98", "0.70"], 100.0, "healthy"),
        ("legal_dept", ["600", "0.02", "0.95", "0.85"], 70.0, "healthy"),
        ("hr_ops", ["1200", "0.10", "0.80", "0.95"], 0.0, "critical"),
    ] {
        let cmd = [
            "health",
            "set",
            tenant,
            "--latency-p95",
            args[0],
            "--error-rate",
            args[1],
            "--success-rate",
            args[2],
            "--storage",
            args[3],
        ];
        let mut json_cmd = vec!["--json"];
        json_cmd.extend_from_slice(&cmd);
        let out = run(b, &json_cmd);
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        let h: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((h["health_score"].as_f64(), h["health_class"].as_str()), (Some(score), Some(class)), "{tenant}");
    }
    // 4. lifecycle
    let hr = ok(b, &["tenant", "suspend", "hr_ops", "--reason", "budget review"]);
    assert_eq!(hr["status"], "suspended");
    let (code, message) = refused(b, &["tenant", "transition", "finance_dept", "deleted", "--reason", "cleanup"], 1);
    assert_eq!(code, "invalid_transition");
    assert!(message.contains("from active to deleted") && message.contains("suspended, migrating"), "{message}");
    ok(b, &["tenant", "transition", "legal_dept", "suspended", "--reason", "matter on hold"]);
    let legal = ok(b, &["tenant", "archive", "legal_dept", "--reason", "matter closed"]);
    assert_eq!(legal["status"], "archived");
    assert!(legal["retention_until"].is_string());
    let (code, _) = refused(b, &["tenant", "delete", "legal_dept", "--reason", "purge"], 1);
    assert_eq!(code, "retention_active");
    let archived_health = [
        "health",
        "set",
        "legal_dept",
        "--latency-p95",
        "1",
        "--error-rate",
        "0",
        "--success-rate",
        "1",
        "--storage",
        "0",
    ];
    let (code, message) = refused(b, &archived_health, 1);
    assert_eq!(code, "invalid_input");
    assert!(message.contains("archived"), "{message}");

    let stats = ok(b, &["stats"]);
    assert_eq!(stats["total_tenants"], 5);
    assert_eq!(stats["by_status"]["suspended"], 1);
    assert_eq!(stats["by_status"]["archived"], 1);
    assert_eq!(stats["by_tier"]["gold"], 2);

    // every transition is in the tenant's history with actor and reason; reads are recorded too
    ok(b, &["tenant", "get", "legal_dept"]);
    let history = ok(b, &["tenant", "history", "legal_dept"]);
    let entries = history.as_array().unwrap();
    assert!(entries.iter().any(|e| e["operation"] == "tenant.read"), "reads are audited: {entries:?}");
    let ops: Vec<(&str, &str, &str)> = entries
        .iter()
        .filter(|e| !e["operation"].as_str().unwrap().ends_with(".read"))
        .map(|e| (e["operation"].as_str().unwrap(), e["actor"].as_str().unwrap(), e["reason"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(
        ops,
        [
            ("tenant.create", "operator:practathon", "-"),
            ("tenant.place", "operator:practathon", "-"),
            ("tenant.health", "operator:practathon", "-"),
            ("tenant.transition.suspended", "operator:practathon", "matter on hold"),
            ("tenant.transition.archived", "operator:practathon", "matter closed"),
        ]
    );

    // bad input: usage errors exit 2 with one sentence
    let (code, message) = refused(b, &["tenant", "create", "Bad Id!", "--name", "x", "--tier", "gold"], 2);
    assert_eq!(code, "usage");
    assert!(message.contains("lowercase"), "{message}");
    let (code, _) = refused(b, &["flag", "set", "x", "--enabled", "true", "--scope", "tier"], 2);
    assert_eq!(code, "usage");
    let (code, _) = refused(b, &["tenant", "get", "nobody"], 1);
    assert_eq!(code, "tenant_not_found");
}

/// After a restart (a new process), the same data is there.
fn check_after_restart(b: &Backend) {
    let list = ok(b, &["tenant", "list"]);
    assert_eq!(list["tenants"].as_array().unwrap().len(), 5);
    let hr = ok(b, &["tenant", "get", "hr_ops"]);
    assert_eq!((hr["status"].as_str(), hr["health_score"].as_f64()), (Some("suspended"), Some(0.0)));
    let e = ok(b, &["flag", "eval", "marketing", "advanced_analytics"]);
    assert_eq!(e["reason"], "tenant_override");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenantry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn practathon_on_the_embedded_store_survives_restart() {
    let dir = temp_dir("practathon");
    let b = Backend::Embedded(dir.clone());
    practathon(&b);
    check_after_restart(&b);
    assert!(Path::new(&dir).join("tenantry.db").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn human_output_is_a_table_and_errors_are_one_sentence() {
    let b = Backend::Embedded(temp_dir("human"));
    let out = run(&b, &["tier", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().starts_with("TIER"), "{text}");
    assert_eq!(text.lines().count(), 5);
    let out = run(&b, &["tenant", "get", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "error: tenant ghost does not exist\n");
    let out = run(&b, &["tenant", "create", "x1"]);
    assert_eq!(out.status.code(), Some(2), "missing required flags is a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn practathon_on_postgres_survives_restart() {
    let base = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("DATABASE_URL must be set in CI"),
        _ => return eprintln!("skipping: DATABASE_URL is not set"),
    };
    let name = format!("tenantry_t_cli_{}", std::process::id());
    let mut admin = PgConnection::connect(&base).await.expect("connect to DATABASE_URL");
    sqlx::raw_sql(AssertSqlSafe(format!("drop database if exists {name}"))).execute(&mut admin).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("create database {name}"))).execute(&mut admin).await.unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    let b = Backend::Postgres(url.to_string());
    let migrated = ok(&b, &["migrate"]);
    assert!(migrated["message"].as_str().unwrap().contains("tenantry_app"));
    tokio::task::spawn_blocking(move || {
        practathon(&b);
        check_after_restart(&b);
        let probes = ok(&b, &["doctor", "rls"]);
        assert!(probes.as_array().unwrap().iter().all(|p| p["outcome"] == "passed"), "{probes}");
    })
    .await
    .unwrap();
}
