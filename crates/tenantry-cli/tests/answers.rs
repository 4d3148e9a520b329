//! `tenantry config …` and `tenantry ask` end to end on the embedded store: the extractive
//! default answers on a fresh install, a change is versioned with its reason, `diff` and
//! `rollback` work, and bad input exits with a code and a sentence.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{embedded, run_ok};

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run tenantry");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
        (vec!["config", "set", "hr", "--rerank", "cohere"], "use off or lexical"),
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
