//! OpenFeature interoperability: the stock Python SDK with its stock OFREP provider (pinned in
//! scripts/test.sh, which installs them in a virtualenv and sets TENANTRY_SDK_PYTHON) evaluates
//! flags against the real `tenantry serve` binary. The client-side checks live in
//! tests/sdk/openfeature_ofrep.py; no code of ours runs on the client.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Replica, embedded, run_ok};
use tenantry_store_postgres::testing::required_env;

#[test]
fn a_stock_openfeature_sdk_evaluates_flags_through_ofrep() {
    let Some(python) = required_env("TENANTRY_SDK_PYTHON") else { return };
    let dir = std::env::temp_dir().join(format!("tenantry-sdk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = |args: &[&str]| {
        let mut cmd = embedded(&dir);
        cmd.args(args);
        run_ok(cmd)
    };
    let token = t(&["keys", "create", "--platform-admin", "--admin-name", "sdk"]).trim().to_owned();
    t(&["tenant", "create", "finance", "--name", "Finance", "--tier", "gold"]);
    t(&["tenant", "create", "legal", "--name", "Legal", "--tier", "gold"]);
    t(&["tenant", "suspend", "legal", "--reason", "audit"]);
    for args in [
        &["flag", "set", "beta", "--enabled", "false", "--scope", "global"][..],
        &["flag", "set", "beta", "--enabled", "true", "--scope", "tenant", "--scope-id", "finance"],
        &["flag", "set", "model", "--value", "\"gpt-4o\"", "--scope", "global"],
        &["flag", "set", "model", "--value", "\"gpt-4o-mini\"", "--scope", "tier", "--scope-id", "gold"],
        &["flag", "set", "dark_mode", "--enabled", "false", "--scope", "global"],
        &["flag", "set", "top_k", "--value", "5", "--scope", "global"],
        &["flag", "set", "temperature", "--value", "0.25", "--scope", "global"],
        &["flag", "set", "rag", "--value", r#"{"rerank": true, "window": 3}"#, "--scope", "global"],
        &["flag", "set", "killed", "--enabled", "false", "--scope", "global"],
        &["flag", "disable", "killed", "--reason", "incident"],
    ] {
        t(args);
    }
    let server = Replica::serve(embedded(&dir));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk/openfeature_ofrep.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", server.port))
        .arg(&token)
        .output()
        .expect("run the SDK script");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "the OpenFeature SDK disagreed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
