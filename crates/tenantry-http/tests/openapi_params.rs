//! The OpenAPI document's path parameters carry the patterns and lengths their domain types
//! parse by, and the two agree: a value the pattern accepts parses, one it refuses does not.

use serde_json::Value;
use tenantry_domain::{DocumentId, FlagKey, KeyId, TenantId, TierName, UserId};
use tenantry_http::openapi::{PATH_PARAMETERS, document};

fn parses(name: &str, value: &str) -> bool {
    match name {
        "tenant_id" => TenantId::parse(value).is_ok(),
        "name" => TierName::parse(value).is_ok(),
        "feature" | "key" => FlagKey::parse(value).is_ok(),
        "user_id" => UserId::parse(value).is_ok(),
        "key_id" => KeyId::parse(value).is_ok(),
        "document_id" => DocumentId::parse(value).is_ok(),
        "item" | "preset" => tenantry_domain::Label::parse(value).is_ok(),
        other => panic!("no parser for path parameter {other}"),
    }
}

#[test]
fn every_path_parameter_documents_the_rule_its_type_parses_by() {
    let doc = document();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
                let schema = &p["schema"];
                assert!(
                    schema["pattern"].is_string() && schema["maxLength"].is_u64(),
                    "{method} {path}: parameter {} has no pattern and length: {schema}",
                    p["name"]
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 30, "only {seen} path parameters seen");
}

#[test]
fn each_pattern_agrees_with_its_parser() {
    let samples = [
        "a", "ab", "acme", "acme-co", "acme_co", "a.b", "a@b", "Acme", "-acme", "_a", "a b", "a/b", "ä", "d-1", "d-0f",
        "d-", "d-G1", "x-1", "9", "99", "0abc",
    ];
    let long = |n: usize| "a".repeat(n);
    for (name, pattern, min, max) in PATH_PARAMETERS {
        let re = regex::Regex::new(pattern).unwrap();
        let mut values: Vec<String> = samples.iter().map(|s| s.to_string()).collect();
        for n in [min, max, max + 1] {
            values.push(long(n as usize));
            values.push(format!("d-{}", "f".repeat((n as usize).saturating_sub(2))));
        }
        for v in values {
            let by_pattern = re.is_match(&v) && (min..=max).contains(&(v.chars().count() as u64));
            assert_eq!(by_pattern, parses(name, &v), "{name} {v:?}: pattern {pattern} vs the parser");
        }
    }
    let _ = Value::Null;
}
