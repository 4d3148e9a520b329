//! The OpenAPI document, generated from the handlers' annotations and the DTOs.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::problem::Problem;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry",
        description = "Control plane for multi-tenant RAG platforms: tenant registry, lifecycle, feature flags, \
                       users and API keys. Every endpoint except the probes and these docs needs \
                       `Authorization: Bearer <api key>`. Errors are application/problem+json with a stable `code`."
    ),
    paths(
        routes::healthz, routes::readyz, routes::metrics,
        routes::create_tenant, routes::list_tenants, routes::get_tenant, routes::patch_tenant,
        routes::suspend_tenant, routes::activate_tenant, routes::archive_tenant, routes::migrate_tenant,
        routes::delete_tenant, routes::record_health, routes::tenant_history, routes::statistics,
        routes::set_flag, routes::delete_flag, routes::list_flags, routes::flag_definitions, routes::stale_flags, routes::disable_flag, routes::enable_flag, routes::evaluate_all, routes::evaluate_flag,
        routes::list_tiers, routes::get_tier,
        routes::whoami, routes::my_invitations, routes::accept_invitation, routes::create_user, routes::list_users, routes::list_members, routes::put_member,
        routes::remove_member, routes::create_key, routes::list_keys, routes::revoke_key, routes::audit,
        crate::ofrep::evaluate_flag, crate::ofrep::evaluate_all, crate::ofrep::configuration,
        crate::documents::ingest, crate::documents::list, crate::documents::get, crate::documents::text,
        crate::documents::delete, crate::documents::query, crate::documents::usage, crate::documents::placement,
        crate::documents::indexes,
        crate::costs::report, crate::costs::chargeback_report, crate::costs::tenant_costs, crate::costs::meters,
        crate::costs::prices, crate::costs::set_price, crate::costs::load_preset, crate::costs::fixed_costs,
        crate::costs::put_fixed_cost, crate::costs::delete_fixed_cost, crate::costs::import_bills,
        crate::costs::reconcile, crate::costs::check_budgets, crate::costs::readiness,
        crate::answers::show_config, crate::answers::set_config, crate::answers::config_versions, crate::answers::config_diff,
        crate::answers::rollback_config, crate::answers::preview, crate::answers::ask,
        crate::answers::platform_config, crate::answers::set_platform_config, crate::answers::tier_config,
        crate::answers::set_tier_config,
    ),
    components(schemas(
        Problem, KillSwitchBody, KillSwitchView, CreateTenantBody, PatchTenantBody, LimitsBody, MoneyBody, MoneyView, TransitionBody, TenantView,
        TenantListView, HealthBody, HealthView, PenaltiesView, StatisticsView, AuditEntryView, SetFlagBody, FlagView,
        EvaluationView, EvaluationsView, TierView, CreateUserBody, UserView, WhoAmIView, RoleView, PutMemberBody,
        MembershipView, InvitationView, FlagDefinitionView, StaleFlagView, CreateKeyBody, KeyView, IssuedKeyView, StatusView, AuditPageView, crate::ofrep::OfrepSuccess, crate::ofrep::OfrepFailure,
        crate::documents::DocumentBody, crate::documents::BatchBody, crate::documents::IngestBody,
        crate::documents::DocumentView, crate::documents::DocumentsView, crate::documents::QueryBody,
        crate::documents::HitView, crate::documents::QueryView, crate::documents::UsageView,
        crate::documents::PlacementView, crate::documents::IndexView, crate::documents::IndexesView,
        crate::costs::CostDocument, crate::costs::PriceBody, crate::costs::PresetBody, crate::costs::FixedCostBody,
        crate::costs::BillBody, crate::costs::BillsBody, crate::costs::ReconcileBody, crate::costs::BudgetCheckBody,
        crate::answers::AnswerDocument, crate::answers::ConfigBody, crate::answers::RollbackBody,
        crate::answers::PreviewBody, crate::answers::AskBody,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
    }
}

/// The document as served: the handlers' annotations, plus the answers every operation of a
/// given shape can give because of the layers and extractors in front of every handler — so
/// that each operation lists every status it can actually return:
/// - any operation: 500 `internal` (the panic catcher), 503 `store_unavailable` or
///   `request_timeout` (the store, the timeout layer);
/// - with a bearer requirement: 401 `unauthenticated`;
/// - with path or query parameters: 400 `malformed_request` (undecodable) and 422
///   `invalid_input` (an id that does not parse);
/// - with a request body: 400 (JSON syntax), 413 `payload_too_large`, 415
///   `unsupported_media_type` and 422 (a body that does not fit its schema).
///
/// Every error is `application/problem+json` (OFREP's own errors, which its protocol defines as
/// `application/json`, excepted).
pub fn document() -> serde_json::Value {
    // utoipa's own types serialize to JSON without fail (no maps with non-string keys)
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    add_standard_answers(&mut doc);
    close_flattened_bodies(&mut doc);
    constrain_path_parameters(&mut doc);
    doc
}

/// Each path parameter's pattern and lengths: the rule its domain type parses by
/// (`tenantry_domain::ids`, `DocumentId`). A value outside it is answered 422 `invalid_input`.
pub const PATH_PARAMETERS: [(&str, &str, u64, u64); 9] = [
    ("tenant_id", "^[a-z0-9][a-z0-9_-]{1,62}$", 2, 63),
    ("name", "^[a-z0-9][a-z0-9_-]{0,31}$", 1, 32),
    ("feature", "^[a-z0-9][a-z0-9_.-]{0,127}$", 1, 128),
    ("key", "^[a-z0-9][a-z0-9_.-]{0,127}$", 1, 128),
    ("user_id", "^[a-z0-9][a-z0-9_.@-]{1,127}$", 2, 128),
    ("key_id", "^[a-z0-9][a-z0-9_-]{1,63}$", 2, 64),
    ("document_id", "^d-[0-9a-f]{1,62}$", 3, 64),
    ("item", "^[a-z0-9][a-z0-9_./:-]{0,63}$", 1, 64),
    ("preset", "^[a-z0-9][a-z0-9_./:-]{0,63}$", 1, 64),
];

fn constrain_path_parameters(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
        for param in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            if param["in"] != "path" {
                continue;
            }
            let name = param["name"].as_str().unwrap_or_default();
            if let Some((_, pattern, min, max)) = PATH_PARAMETERS.iter().find(|(n, ..)| *n == name) {
                param["schema"] = json!({"type": "string", "pattern": pattern, "minLength": min, "maxLength": max});
            }
        }
    }
}

/// A body with a flattened part (`CreateTenantBody`, `PatchTenantBody`: the limit fields) is an
/// `allOf` whose parts each forbid the others' properties (`additionalProperties: false`), so no
/// body could satisfy it. The closed-ness belongs to the whole: the parts stay open and the
/// schema says `unevaluatedProperties: false` (JSON Schema 2020-12, which OpenAPI 3.1 uses).
fn close_flattened_bodies(doc: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    for schema in schemas.values_mut() {
        let Some(parts) = schema.get_mut("allOf").and_then(Value::as_array_mut) else { continue };
        let mut closed = false;
        for part in parts.iter_mut().filter_map(Value::as_object_mut) {
            if part.get("additionalProperties") == Some(&Value::Bool(false)) {
                part.remove("additionalProperties");
                closed = true;
            }
        }
        if closed && let Some(object) = schema.as_object_mut() {
            object.insert("unevaluatedProperties".to_owned(), Value::Bool(false));
        }
    }
}

const PROBLEM_MEDIA: &str = "application/problem+json";

fn add_standard_answers(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem_media = json!({ "schema": { "$ref": "#/components/schemas/Problem" } });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let params = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
            let has = |place: &str| params.iter().any(|p| p["in"] == place);
            let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let has_body = op.get("requestBody").is_some();
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            // the handlers' own error answers are problem documents, not plain JSON; and any error
            // may be one (the layers answer with problems whatever the handler's own shape, e.g.
            // OFREP's): every error response documents problem+json
            for (status, response) in responses.iter_mut() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let Some(response) = response.as_object_mut() else { continue };
                let Some(content) = response.entry("content").or_insert_with(|| json!({})).as_object_mut() else {
                    continue;
                };
                let documents_problem_as_json = content
                    .get("application/json")
                    .is_some_and(|c| c["schema"]["$ref"] == "#/components/schemas/Problem");
                if documents_problem_as_json && let Some(json_content) = content.remove("application/json") {
                    content.insert(PROBLEM_MEDIA.to_owned(), json_content);
                }
                content.entry(PROBLEM_MEDIA).or_insert_with(|| problem_media.clone());
            }
            let mut add = |status: &str, description: &str| {
                responses.entry(status.to_owned()).or_insert_with(
                    || json!({ "description": description, "content": { PROBLEM_MEDIA: problem_media.clone() } }),
                );
            };
            add("500", "internal: an unexpected failure (details in the log)");
            add("503", "store_unavailable or request_timeout");
            if secured {
                add("401", "unauthenticated: no API key, or one that is not valid");
            }
            if has("path") || has("query") {
                add("400", "malformed_request: a parameter that cannot be decoded");
                add("422", "invalid_input: a parameter that does not parse");
            }
            if has_body {
                add("400", "malformed_request: the body is not JSON");
                add("413", "payload_too_large");
                add("415", "unsupported_media_type: the body is not sent as application/json");
                add("422", "invalid_input: the body does not fit its schema");
            }
        }
    }
}
