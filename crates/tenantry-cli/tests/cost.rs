//! `tenantry cost` end to end on the embedded store: usage from the CLI's own queries, a price,
//! a report, and `cost reconcile` against bills 3%, 7% and 12% off — exit codes 0, 3 and 1, each
//! result recorded.

mod support;

use serde_json::Value;
use support::{embedded, run, run_ok};

#[test]
fn reconcile_exits_0_3_1_for_bills_3_7_and_12_percent_off() {
    let dir = std::env::temp_dir().join(format!("tenantry-cost-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = || embedded(&dir);
    run_ok({
        let mut c = t();
        c.args(["tenant", "create", "acme", "--name", "Acme", "--tier", "gold", "--cost-center", "CC-1"]);
        c
    });
    let today = time::OffsetDateTime::now_utc().date();
    let month = format!("{:04}-{:02}", today.year(), u8::from(today.month()));
    let first = format!("{month}-01");
    run_ok({
        let mut c = t();
        c.args(["cost", "prices", "set", "--meter", "vector_queries", "--provider", "vector-db"]).args([
            "--currency",
            "USD",
            "--unit-price",
            "1.00",
            "--from",
            &first,
        ]);
        c
    });
    for _ in 0..10 {
        run_ok({
            let mut c = t();
            c.args(["query", "acme", "quarterly revenue"]);
            c
        });
    }
    let report: Value = serde_json::from_str(&run_ok({
        let mut c = t();
        c.args(["--json", "cost", "report", "--month", &month]);
        c
    }))
    .unwrap();
    assert_eq!(report["by_provider"]["vector-db"], 1_000, "ten queries at $1.00: {report}");
    let csv = run_ok({
        let mut c = t();
        c.args(["cost", "chargeback", "--month", &month, "--format", "csv"]);
        c
    });
    assert!(csv.lines().any(|l| l.starts_with("CC-1,1,USD,10.00,0.00,10.00")), "{csv}");

    let bills = dir.join("bills.csv");
    for (billed, code, verdict) in [("9.71", 0, "pass"), ("9.35", 3, "warn"), ("8.93", 1, "fail")] {
        std::fs::write(&bills, format!("provider,month,currency,amount\nvector-db,{month},USD,{billed}\n")).unwrap();
        run_ok({
            let mut c = t();
            c.args(["cost", "bills", "import"]).arg(&bills);
            c
        });
        let (status, stdout, stderr) = run(t().args(["--json", "cost", "reconcile", "--month", &month]));
        assert_eq!(status, code, "bill {billed}: {stdout}{stderr}");
        let result: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(result["reconciliation"]["verdict"], verdict, "{result}");
        assert_eq!(result["reconciliation"]["providers"][0]["drivers"][0][0], "vector_queries");
    }
    // readiness: one tenant and no documents fails (exit 1), saying why
    let (status, stdout, stderr) = run(t().args(["--json", "readiness"]));
    assert_eq!(status, 1, "{stdout}{stderr}");
    let readiness: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(readiness["verdict"], "fail", "{readiness}");
    let query = readiness["checks"].as_array().unwrap().iter().find(|c| c["name"] == "tenants_query").unwrap();
    assert!(query["reason"].as_str().unwrap().starts_with("0 of the 3 tenants"), "{query}");
    // a malformed bills file is refused with a sentence naming the line, exit 2
    std::fs::write(&bills, "provider,month,currency,amount\nvector-db,2026-13,USD,1\n").unwrap();
    let (status, _, stderr) = run(t().args(["cost", "bills", "import"]).arg(&bills));
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("line 2") && stderr.contains("month"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
