//! Property test over the request-body parsers: any JSON object made of the bodies' own member
//! names with arbitrary values is either refused with an `invalid_input`-class error or parsed
//! into domain values, never a panic. (The route-level fuzz in `fuzz.rs` covers transport,
//! content types, paths and queries.)

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use tenantry_http::dto::{CreateTenantBody, PatchTenantBody, SetFlagBody};

const MEMBERS: &[&str] = &[
    "tenant_id",
    "tenant_name",
    "tier",
    "max_users",
    "max_documents",
    "max_queries_per_day",
    "max_storage_gb",
    "rate_limit_per_minute",
    "sla_target",
    "support_level",
    "reset_limits",
    "billing_email",
    "owner",
    "cost_center",
    "monthly_budget",
    "compliance_tags",
    "data_region",
    "metadata",
    "feature_name",
    "enabled",
    "value",
    "scope",
    "scope_id",
    "rollout",
    "description",
    "expires_at",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::from),
        "[a-z0-9_\\-]{0,12}".prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        prop_oneof![
            Just("9999-12-31T23:59:59-23:59"),
            Just("2030-01-01T00:00:00Z"),
            Just("1e400"),
            Just("max_users"),
            Just("24/7")
        ]
        .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            (inner.clone(), inner).prop_map(|(a, b)| json!({"amount": a, "currency": b})),
        ]
    })
}

fn body() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(MEMBERS), value()), 0..10)
        .prop_map(|members| Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn bodies_parse_or_are_refused(body in body()) {
        if let Ok(create) = serde_json::from_value::<CreateTenantBody>(body.clone()) {
            let _ = create.parse();
        }
        if let Ok(patch) = serde_json::from_value::<PatchTenantBody>(body.clone()) {
            let _ = patch.parse();
        }
        if let Ok(flag) = serde_json::from_value::<SetFlagBody>(body) {
            let _ = flag.meta();
        }
    }
}
