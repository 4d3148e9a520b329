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
        routes::whoami, routes::create_user, routes::list_users, routes::list_members, routes::put_member,
        routes::remove_member, routes::create_key, routes::list_keys, routes::revoke_key, routes::audit,
        crate::ofrep::evaluate_flag, crate::ofrep::evaluate_all, crate::ofrep::configuration,
        crate::documents::ingest, crate::documents::list, crate::documents::get, crate::documents::text,
        crate::documents::delete, crate::documents::query, crate::documents::usage, crate::documents::placement,
        crate::documents::indexes,
    ),
    components(schemas(
        Problem, KillSwitchBody, KillSwitchView, CreateTenantBody, PatchTenantBody, LimitsBody, MoneyBody, MoneyView, TransitionBody, TenantView,
        TenantListView, HealthBody, HealthView, PenaltiesView, StatisticsView, AuditEntryView, SetFlagBody, FlagView,
        EvaluationView, EvaluationsView, TierView, CreateUserBody, UserView, WhoAmIView, RoleView, PutMemberBody,
        MembershipView, FlagDefinitionView, StaleFlagView, CreateKeyBody, KeyView, IssuedKeyView, StatusView, AuditPageView, crate::ofrep::OfrepSuccess, crate::ofrep::OfrepFailure,
        crate::documents::DocumentBody, crate::documents::BatchBody, crate::documents::IngestBody,
        crate::documents::DocumentView, crate::documents::DocumentsView, crate::documents::QueryBody,
        crate::documents::HitView, crate::documents::QueryView, crate::documents::UsageView,
        crate::documents::PlacementView, crate::documents::IndexView, crate::documents::IndexesView,
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

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
