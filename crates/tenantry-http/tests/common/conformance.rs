//! Every response the HTTP test suites produce is checked against the OpenAPI document the server
//! publishes: the operation (method and path template) must document the status it answered, and
//! the body must match the schema documented for that status. A mismatch fails the test that
//! produced the response. Responses to paths the document does not describe (unknown routes, the
//! Swagger UI) are checked only for being problems when they are errors.
//!
//! The validator covers the JSON Schema that utoipa emits for this API: `$ref`, `type` (one or a
//! list), `properties`/`required`/`additionalProperties`, `items`, `allOf`/`oneOf`/`anyOf`,
//! `enum`, `const`, `minimum`/`maximum`, `minLength`/`maxLength`, `pattern` is not checked.

use std::sync::OnceLock;

use serde_json::Value;

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(tenantry_http::openapi::document)
}

/// The operation of `method` on a concrete `path`, and its template: literal segments must be
/// equal, `{param}` segments match any one segment. A literal match wins over a template.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let path = path.split('?').next().unwrap_or(path);
    // axum routes `/x/` apart from `/x`: a trailing slash is not the documented path
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, item) in doc["paths"].as_object()? {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') {
                !s.is_empty()
            } else {
                literal += 1;
                p == s
            }
        });
        if fits
            && let Some(op) = item.get(method.to_ascii_lowercase())
            && best.is_none_or(|(n, _, _)| literal > n)
        {
            best = Some((literal, template, op));
        }
    }
    best.map(|(_, t, op)| (t, op))
}

/// A mismatch fails the test (`TENANTRY_CONFORMANCE_LOG=<file>` collects them instead, to
/// survey a change).
pub fn report(mismatch: &str, body: &str) {
    match std::env::var("TENANTRY_CONFORMANCE_LOG") {
        Ok(file) if !file.is_empty() => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file).expect("open the log");
            writeln!(f, "{mismatch}").expect("write the log");
        }
        _ => panic!("the response does not match /openapi.json: {mismatch}\nbody: {body}"),
    }
}

/// Checks an accepted request's JSON body against the operation's documented request body: what
/// the server accepts must be what the document describes.
pub fn check_request(method: &str, path: &str, body: &Value) -> Result<(), String> {
    let doc = document();
    let Some((template, op)) = operation(doc, method, path) else { return Ok(()) };
    let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else {
        // GET and DELETE handlers never read a body: one sent along is ignored, not accepted
        return if body.is_null() || ["GET", "DELETE", "HEAD"].contains(&method) {
            Ok(())
        } else {
            Err(format!("{method} {template} accepted a JSON body but documents none"))
        };
    };
    if body.is_null() {
        return Ok(()); // an optional body left out
    }
    validate(doc, schema, body, "$", true).map_err(|e| format!("{method} {template} request body: {e}"))
}

/// Checks one response; returns the first mismatch.
pub fn check(method: &str, path: &str, status: u16, content_type: &str, body: &Value) -> Result<(), String> {
    let doc = document();
    let Some((template, op)) = operation(doc, method, path) else {
        // not a documented operation (unknown route, wrong method, docs assets)
        return Ok(());
    };
    let responses = &op["responses"];
    let Some(response) = responses.get(status.to_string()).or_else(|| responses.get("default")) else {
        let documented: Vec<&String> = responses.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        return Err(format!("{method} {template} answered {status}, which it does not document ({documented:?})"));
    };
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return Ok(()); // documented without a body (e.g. 204, 304)
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    let Some(schema) = content.get(media).and_then(|c| c.get("schema")) else {
        if (body.is_null() && media.is_empty()) || content.contains_key(media) {
            return Ok(()); // no body, or a documented media type without a schema
        }
        let documented: Vec<&String> = content.keys().collect();
        return Err(format!("{method} {template} {status}: content type {media:?} is not documented ({documented:?})"));
    };
    if !media.ends_with("json") {
        return Ok(()); // text bodies: the content type was checked
    }
    validate(doc, schema, body, "$", true).map_err(|e| format!("{method} {template} {status}: {e}"))
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> Result<&'a Value, String> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").ok_or_else(|| format!("unsupported $ref {r}"))?;
            let target = &doc["components"]["schemas"][name];
            if target.is_null() {
                return Err(format!("$ref to a missing schema {name}"));
            }
            resolve(doc, target)
        }
        None => Ok(schema),
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// The properties an object schema documents (its own and its `allOf` parts'), and whether it
/// accepts any others.
fn documented_properties(doc: &Value, schema: &Value, names: &mut Vec<String>) -> Result<bool, String> {
    let schema = resolve(doc, schema)?;
    let mut open = matches!(schema.get("additionalProperties"), Some(Value::Bool(true) | Value::Object(_)));
    if let Some(p) = schema.get("properties").and_then(Value::as_object) {
        names.extend(p.keys().cloned());
    } else if schema.get("allOf").is_none() {
        open = true; // a free-form object
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        open |= documented_properties(doc, part, names)?;
    }
    Ok(open)
}

/// Validates `v` against `schema`; `at` is the JSON path for the message. `strict`: an object
/// may carry only documented properties (false for the parts of an `allOf`, which document
/// them together).
pub fn validate(doc: &Value, schema: &Value, v: &Value, at: &str, strict: bool) -> Result<(), String> {
    let schema = resolve(doc, schema)?;
    if schema.as_bool() == Some(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(doc, s, v, at, false)?;
        }
        if strict && let Some(object) = v.as_object() {
            let mut names = Vec::new();
            if !documented_properties(doc, schema, &mut names)?
                && let Some(extra) = object.keys().find(|k| !names.contains(k))
            {
                return Err(format!("{at}: property {extra:?} is not in the schema"));
            }
        }
    }
    for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let errors: Vec<String> =
                alternatives.iter().filter_map(|s| validate(doc, s, v, at, strict).err()).collect();
            let matched = alternatives.len() - errors.len();
            if matched == 0 || (exactly_one && matched > 1) {
                return Err(format!("{at}: {matched} of the {key} alternatives match {v} ({})", errors.join("; ")));
            }
        }
    }
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
        let matches = types.iter().any(|t| type_matches(t, v)) || (nullable && v.is_null());
        if !matches {
            return Err(format!("{at}: expected {types:?}, got {v}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {options:?}"));
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        return Err(format!("{at}: expected the constant {c}, got {v}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{at}: {n} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{at}: {n} is above the maximum {max}"));
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| len < min) {
            return Err(format!("{at}: {s:?} is shorter than minLength"));
        }
        if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| len > max) {
            return Err(format!("{at}: {s:?} is longer than maxLength"));
        }
    }
    if let Some(object) = v.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: the required property {name:?} is missing"));
            }
        }
        for (name, value) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(s) => validate(doc, s, value, &format!("{at}.{name}"), true)?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{at}: property {name:?} is not documented")),
                    Some(s @ Value::Object(_)) => validate(doc, s, value, &format!("{at}.{name}"), true)?,
                    // an object schema with properties lists what is sent: anything else is a
                    // mismatch, unless the schema declares no properties at all (free-form)
                    _ if strict && properties.is_some() && schema.get("allOf").is_none() => {
                        return Err(format!("{at}: property {name:?} is not in the schema"));
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), v.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"), true)?;
        }
    }
    Ok(())
}

#[test]
fn the_validator_catches_what_it_must() {
    let doc = serde_json::json!({"components": {"schemas": {
        "P": {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}, "b": {"type": ["string", "null"]}}},
    }}});
    let p = serde_json::json!({"$ref": "#/components/schemas/P"});
    assert!(validate(&doc, &p, &serde_json::json!({"a": 1, "b": null}), "$", true).is_ok());
    assert!(validate(&doc, &p, &serde_json::json!({"a": 1, "b": "x"}), "$", true).is_ok());
    assert!(validate(&doc, &p, &serde_json::json!({"b": "x"}), "$", true).is_err(), "missing required");
    assert!(validate(&doc, &p, &serde_json::json!({"a": "1"}), "$", true).is_err(), "wrong type");
    assert!(validate(&doc, &p, &serde_json::json!({"a": 1, "c": 2}), "$", true).is_err(), "undocumented property");
    let one_of = serde_json::json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
    assert!(validate(&doc, &one_of, &serde_json::json!(3), "$", true).is_ok());
    assert!(validate(&doc, &one_of, &serde_json::json!(true), "$", true).is_err());
}
