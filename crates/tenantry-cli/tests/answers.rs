//! `tenantry config …` and `tenantry ask` end to end on the embedded store: the extractive
//! default answers on a fresh install, a change is versioned with its reason, `diff` and
//! `rollback` work, and bad input exits with a code and a sentence.

mod support;

use serde_json::Value;
use support::{embedded, run, run_ok};

#[test]
fn config_is_versioned_and_ask_answers_offline() {
    let dir = std::env::temp_dir().join(format!("tenantry-answers-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cli = |args: &[&str]| {
        let mut c = embedded(&dir);
        c.args(args);
        run_ok(c)
    };
    cli(&["tenant", "create", "hr", "--name", "HR", "--tier", "gold"]);
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("leave.txt"),
        "Employees get 25 days of paid leave per year. Unused leave expires in March.",
    )
    .unwrap();
    std::fs::write(docs.join("payroll.txt"), "Salaries are paid on the last working day of the month.").unwrap();
    cli(&["docs", "ingest", "hr", docs.to_str().unwrap(), "--quiet"]);

    let answer: Value = serde_json::from_str(&cli(&["--json", "ask", "hr", "How many days of paid leave?"])).unwrap();
    assert_eq!(answer["model"], "local/extractive");
    assert!(answer["answer"].as_str().unwrap().contains("25 days"), "{answer}");
    assert_eq!(answer["config_version"], 0);

    let set = cli(&["config", "set", "hr", "--top-k", "1", "--rerank", "lexical", "--reason", "tighter answers"]);
    assert!(set.contains("configuration version 1"), "{set}");
    cli(&["config", "set", "hr", "--unset", "rerank", "--max-tokens", "200"]);
    let shown: Value = serde_json::from_str(&cli(&["--json", "config", "show", "hr"])).unwrap();
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["config"]["top_k"], serde_json::json!({"value": 1, "level": "tenant"}));
    assert_eq!(shown["config"]["rerank"]["level"], "default");
    let diff = cli(&["config", "diff", "hr", "1", "2"]);
    assert!(
        diff.contains("rerank: lexical -> (inherited)") && diff.contains("max_tokens: (inherited) -> 200"),
        "{diff}"
    );
    let history: Value = serde_json::from_str(&cli(&["--json", "config", "history", "hr"])).unwrap();
    assert_eq!(history["versions"][0]["reason"], "tighter answers");
    cli(&["config", "rollback", "hr", "1"]);
    let shown: Value = serde_json::from_str(&cli(&["--json", "config", "show", "hr"])).unwrap();
    assert_eq!((shown["version"].as_u64(), shown["config"]["rerank"]["value"].as_str()), (Some(3), Some("lexical")));

    let answer: Value = serde_json::from_str(&cli(&["--json", "ask", "hr", "When are salaries paid?"])).unwrap();
    assert_eq!(answer["citations"].as_array().unwrap().len(), 1, "top_k 1 from the configuration: {answer}");
    assert_eq!(answer["config_version"], 3);

    // bad input: a sentence and a non-zero exit, nothing written
    for (args, says) in [
        (vec!["config", "set", "hr", "--model", "gpt-4o"], "does not offer model"),
        (vec!["config", "set", "hr", "--top-k", "0"], "top_k must be between 1 and 50"),
        (vec!["config", "set", "hr", "--rerank", "cohere"], "use off, lexical or model"),
        (vec!["config", "set", "hr", "--rerank", "model", "--rerank-model", "x/y"], "provider \"x\" is not configured"),
        (vec!["config", "set", "hr"], "give at least one field"),
        (vec!["config", "diff", "hr", "1", "9"], "no configuration version 9"),
        (vec!["ask", "hr", " "], "must not be empty"),
    ] {
        let (code, stdout, stderr) = run(embedded(&dir).args(&args));
        assert_ne!(code, 0, "{args:?}: {stdout}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let history: Value = serde_json::from_str(&cli(&["--json", "config", "history", "hr"])).unwrap();
    assert_eq!(history["versions"].as_array().unwrap().len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `compare-tenants` on the seed tenants at a small scale, with a stand-in provider speaking the
/// OpenAI API: every tenant gets its documents' sizes, the current configuration and the grid
/// measured, and a recommendation priced at the given volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_tenants_measures_the_grid_on_the_seed_tenants() {
    let standin = tenantry_llm::standin::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("tenantry-compare-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let providers = dir.join("providers.json");
    let config =
        serde_json::json!([{"name": "oa", "api": "openai", "base_url": standin.base_url, "models": ["echo-1"]}]);
    std::fs::write(&providers, config.to_string()).unwrap();
    let run_cli = |args: Vec<String>| {
        let (dir, providers) = (dir.clone(), providers.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let mut c = embedded(&dir);
                c.env("TENANTRY_LLM_PROVIDERS", &providers).args(&args);
                run_ok(c)
            })
            .await
            .unwrap()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    run_cli(args(&["seed-data", "--scale", "0.02"])).await;
    for meter in ["llm_input_tokens", "llm_output_tokens"] {
        run_cli(args(&[
            "cost",
            "prices",
            "set",
            "--meter",
            meter,
            "--model",
            "oa/echo-1",
            "--provider",
            "oa",
            "--currency",
            "USD",
            "--unit-price",
            "0.5",
            "--from",
            "2020-01-01",
        ]))
        .await;
    }
    let report: Value = serde_json::from_str(
        &run_cli(args(&[
            "--json",
            "compare-tenants",
            "tenant_d",
            "tenant_e",
            "tenant_f",
            "--repeats",
            "1",
            "--monthly-queries",
            "10000",
        ]))
        .await,
    )
    .unwrap();
    let tenants = report["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 3);
    let (d, e, f) = (&tenants[0], &tenants[1], &tenants[2]);
    assert_eq!(
        (d["documents"].as_i64(), e["documents"].as_i64(), f["documents"].as_i64()),
        (Some(20), Some(1), Some(4))
    );
    assert!(e["avg_tokens"].as_f64() > f["avg_tokens"].as_f64() && f["avg_tokens"].as_f64() > d["avg_tokens"].as_f64());
    assert_eq!(d["name"], "Customer Support Co");
    for t in tenants {
        let trials = t["trials"].as_array().unwrap();
        // the current configuration (local/extractive, top_k 5, rerank off) plus 2 models × 3 × 2 less that one
        assert_eq!(trials.len(), 12, "{t}");
        assert_eq!(trials.iter().filter(|x| x["current"] == true).count(), 1);
        let priced = trials.iter().filter(|x| x["model"] == "echo-1").all(|x| x["cost_per_query"].is_string());
        assert!(priced, "{t}");
        let rec = t["recommended"].as_u64().expect("a recommendation") as usize;
        // retrieval quality cannot tell the models apart: the free extractive answerer wins
        let cost = |x: &Value| x["cost_per_query"].as_str().unwrap().parse::<f64>().unwrap();
        let cheapest = trials.iter().map(cost).fold(f64::INFINITY, f64::min);
        assert_eq!((trials[rec]["model"].as_str(), cost(&trials[rec])), (Some("extractive"), cheapest), "{t}");
        assert!(trials.iter().filter(|x| x["model"] == "echo-1").all(|x| cost(x) > 0.0));
        assert!(t["projected_monthly"].is_string(), "{t}");
        assert!(trials.iter().all(|x| (0.0..=1.0).contains(&x["quality"].as_f64().unwrap())));
    }
    let markdown = run_cli(args(&["compare-tenants", "tenant_d", "--repeats", "1", "--format", "markdown"])).await;
    assert!(markdown.contains("| Tenant | Doc Count | Avg Doc Size | Current Cost/Query |"), "{markdown}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `--embedding-provider minilm` (the model scripts/setup-minilm.sh installs), retrieval
/// finds a passage by meaning: "vacation" finds the paid-leave policy although they share no word.
#[test]
fn the_semantic_embedder_retrieves_by_meaning() {
    let model = match std::env::var("TENANTRY_MINILM_DIR") {
        Ok(d) if !d.is_empty() => d,
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("TENANTRY_MINILM_DIR is not set"),
        _ => return,
    };
    let dir = std::env::temp_dir().join(format!("tenantry-minilm-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cli = |args: &[&str]| {
        let mut c = embedded(&dir);
        c.args(["--embedding-provider", "minilm", "--embedding-model-dir", &model]).args(args);
        run_ok(c)
    };
    cli(&["tenant", "create", "hr", "--name", "HR", "--tier", "gold"]);
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("leave.txt"), "Employees receive twenty-five days of paid leave per year.").unwrap();
    std::fs::write(docs.join("parking.txt"), "Staff parking permits are issued by the facilities office.").unwrap();
    std::fs::write(docs.join("laptops.txt"), "Laptops are replaced every three years by the IT department.").unwrap();
    cli(&["docs", "ingest", "hr", docs.to_str().unwrap(), "--quiet"]);
    let answer: Value =
        serde_json::from_str(&cli(&["--json", "ask", "hr", "How much vacation time do I get?", "--top-k", "1"]))
            .unwrap();
    assert_eq!(answer["citations"][0]["title"], "leave.txt", "{answer}");
    let (code, _, stderr) = run(embedded(&dir).args([
        "--embedding-provider",
        "minilm",
        "--embedding-dimensions",
        "64",
        "--embedding-model-dir",
        &model,
        "ask",
        "hr",
        "q",
    ]));
    assert_ne!(code, 0);
    assert!(stderr.contains("384-dimensional"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
