//! Tenantry's HTTP shell: the axum router over the registry and directory use-cases.
//!
//! Layers, outermost first: request id (`x-request-id`, generated when absent, echoed back) →
//! trace span (method, route, request id, principal, tenant) → panic catcher → metrics →
//! problem normalizer (any bare 4xx/5xx from routing or limits becomes problem+json) → timeout →
//! body size limit → handlers.

pub mod answers;
pub mod costs;
pub mod documents;
pub mod dto;
pub mod extract;
pub mod metrics;
pub mod ofrep;
pub mod openapi;
pub mod problem;
pub mod routes;

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_swagger_ui::SwaggerUi;

use tenantry_app::ErrorCode;
use tenantry_app::ports::Clock;
use tenantry_app::{Auditor, Costs, DataPlane, Directory, Metering, Readiness, Registry};

use crate::metrics::Metrics;
use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE, code_for_status};

/// Server settings (all with defaults; `tenantry serve --help` documents them).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub max_tenant_metric_labels: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { body_limit_bytes: 1024 * 1024, request_timeout: Duration::from_secs(30), max_tenant_metric_labels: 1000 }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub directory: Directory,
    pub auditor: Auditor,
    pub data: DataPlane,
    pub costs: Costs,
    pub metering: Metering,
    pub readiness: Readiness,
    pub answers: tenantry_app::Answers,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub(crate) fn data_clock_now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}

/// The use-cases the shell serves (never the composition root itself: a request cannot mint
/// operator scope).
#[derive(Clone)]
pub struct Services {
    pub registry: Registry,
    pub directory: Directory,
    pub auditor: Auditor,
    pub data: DataPlane,
    pub costs: Costs,
    pub metering: Metering,
    pub readiness: Readiness,
    pub answers: tenantry_app::Answers,
    pub clock: Arc<dyn Clock>,
}

impl Services {
    pub fn of(app: &tenantry_app::App) -> Self {
        Self {
            registry: app.registry.clone(),
            directory: app.directory.clone(),
            auditor: app.auditor.clone(),
            data: app.data.clone(),
            costs: app.costs.clone(),
            metering: app.metering.clone(),
            readiness: app.readiness.clone(),
            answers: app.answers.clone(),
            clock: app.clock.clone(),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The complete application: every route, with every layer.
pub fn router(services: Services, config: &ServerConfig) -> Router {
    let metrics = Arc::new(Metrics::new(config.max_tenant_metric_labels));
    let Services { registry, directory, auditor, data, costs, metering, readiness, answers, clock } = services;
    let state = AppState { registry, directory, auditor, data, costs, metering, readiness, answers, clock, metrics };
    // the data plane's requests are metered (usage recorded before the answer leaves)
    let metered = Router::new()
        .route("/tenants/{tenant_id}/documents", post(documents::ingest).get(documents::list))
        .route("/tenants/{tenant_id}/documents/{document_id}", get(documents::get).delete(documents::delete))
        .route("/tenants/{tenant_id}/documents/{document_id}/text", get(documents::text))
        .route("/tenants/{tenant_id}/query", post(documents::query))
        .route("/tenants/{tenant_id}/ask", post(answers::ask))
        .route_layer(middleware::from_fn_with_state(state.clone(), costs::meter_requests));
    let timeout = config.request_timeout;
    let api = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/tenants", post(routes::create_tenant).get(routes::list_tenants))
        .route(
            "/tenants/{tenant_id}",
            get(routes::get_tenant).patch(routes::patch_tenant).delete(routes::delete_tenant),
        )
        .route("/tenants/{tenant_id}/suspend", post(routes::suspend_tenant))
        .route("/tenants/{tenant_id}/activate", post(routes::activate_tenant))
        .route("/tenants/{tenant_id}/archive", post(routes::archive_tenant))
        .route("/tenants/{tenant_id}/migrate", post(routes::migrate_tenant))
        .route("/tenants/{tenant_id}/health", post(routes::record_health))
        .route("/tenants/{tenant_id}/history", get(routes::tenant_history))
        .route("/tenants/{tenant_id}/members", get(routes::list_members).post(routes::put_member))
        .route("/tenants/{tenant_id}/members/{user_id}", axum::routing::delete(routes::remove_member))
        .merge(metered)
        .route("/tenants/{tenant_id}/costs", get(costs::tenant_costs))
        .route("/costs", get(costs::report))
        .route("/costs/chargeback", get(costs::chargeback_report))
        .route("/costs/meters", get(costs::meters))
        .route("/costs/prices", get(costs::prices).post(costs::set_price))
        .route("/costs/prices/presets/{preset}", post(costs::load_preset))
        .route("/costs/fixed", get(costs::fixed_costs))
        .route("/costs/fixed/{item}", axum::routing::put(costs::put_fixed_cost).delete(costs::delete_fixed_cost))
        .route("/costs/bills", post(costs::import_bills))
        .route("/costs/reconcile", post(costs::reconcile))
        .route("/costs/budgets/check", post(costs::check_budgets))
        .route("/readiness", get(costs::readiness))
        .route("/tenants/{tenant_id}/config", get(answers::show_config).put(answers::set_config))
        .route("/tenants/{tenant_id}/config/versions", get(answers::config_versions))
        .route("/tenants/{tenant_id}/config/diff", get(answers::config_diff))
        .route("/tenants/{tenant_id}/config/rollback", post(answers::rollback_config))
        .route("/tenants/{tenant_id}/config/preview", post(answers::preview))
        .route("/config/platform", get(answers::platform_config).put(answers::set_platform_config))
        .route("/config/tiers/{name}", get(answers::tier_config).put(answers::set_tier_config))
        .route("/tenants/{tenant_id}/usage", get(documents::usage))
        .route("/tenants/{tenant_id}/placement", get(documents::placement))
        .route("/indexes", get(documents::indexes))
        .route("/statistics", get(routes::statistics))
        .route("/feature-flags", post(routes::set_flag).get(routes::list_flags).delete(routes::delete_flag))
        .route("/feature-flags/{tenant_id}", get(routes::evaluate_all))
        .route("/flag-definitions", get(routes::flag_definitions))
        .route("/flag-definitions/stale", get(routes::stale_flags))
        .route("/flag-definitions/{feature}/disable", post(routes::disable_flag))
        .route("/flag-definitions/{feature}/enable", post(routes::enable_flag))
        .route("/feature-flags/{tenant_id}/{feature}", get(routes::evaluate_flag))
        .route("/tiers", get(routes::list_tiers))
        .route("/tiers/{name}", get(routes::get_tier))
        .route("/me", get(routes::whoami))
        .route("/me/invitations", get(routes::my_invitations))
        .route("/me/invitations/{tenant_id}/accept", post(routes::accept_invitation))
        .route("/users", post(routes::create_user).get(routes::list_users))
        .route("/keys", post(routes::create_key).get(routes::list_keys))
        .route("/keys/{key_id}", axum::routing::delete(routes::revoke_key))
        .route("/audit", get(routes::audit))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_flag))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_all))
        .route("/ofrep/v1/configuration", get(ofrep::configuration))
        .fallback(route_not_found)
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(middleware::from_fn(move |req, next| with_timeout(timeout, req, next)))
        .layer(middleware::from_fn(normalize_errors))
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .with_state(state);
    Router::new()
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", openapi::document()))
        .merge(api)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::map_response(no_sniff))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %request_id,
                        principal = tracing::field::Empty,
                        tenant_id = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Every answer declares its content type; browsers must not guess another (a text or JSON body
/// is never run as a script or rendered as HTML).
async fn no_sniff(mut response: Response) -> Response {
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn route_not_found(req: Request) -> ApiError {
    ApiError::new(
        ErrorCode::RouteNotFound,
        format!("there is no route {} {}; see /docs", req.method(), req.uri().path()),
    )
}

async fn with_timeout(timeout: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(ErrorCode::RequestTimeout, format!("the request took longer than {timeout:?}; try again"))
                .into_response()
        }
    }
}

/// Turns a bare error status produced below the handlers (405 from routing, 413 from a limit)
/// into a problem document, so that every error has the same shape.
async fn normalize_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    // a handler's own error body (problem+json, or OFREP's JSON errors) stays as it is
    let has_json_body = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()) || v.as_bytes().starts_with(b"application/json")
    });
    if !(status.is_client_error() || status.is_server_error()) || has_json_body {
        return response;
    }
    let code = code_for_status(status);
    let detail = match status.as_u16() {
        405 => format!("{method} is not allowed on this route; see /docs"),
        413 => "the request body is larger than this server accepts".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut problem = ApiError::new(code, detail).into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    problem
}

async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let route = route.as_deref().unwrap_or("unmatched");
    let (status, elapsed) = (response.status().as_u16(), started.elapsed());
    state.metrics.observe_request(&method, route, status, elapsed);
    if let Some(tenant) = tenant_in_path(route, &path) {
        state.metrics.observe_tenant_request(tenant, status, elapsed);
    }
    response
}

/// The `{tenant_id}` segment of `path` on a route whose template has one.
fn tenant_in_path<'a>(route: &str, path: &'a str) -> Option<&'a str> {
    let at = route.split('/').position(|segment| segment == "{tenant_id}")?;
    path.split('/').nth(at).filter(|t| !t.is_empty())
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "handler panicked");
    ApiError::new(ErrorCode::Internal, "unexpected internal error; it has been logged").into_response()
}

/// Binds and serves until SIGTERM or Ctrl-C; in-flight requests finish before it returns.
/// Serves `app` on `bind` until SIGTERM or Ctrl-C, then stops accepting, lets the requests in
/// flight finish and returns. A client that has not sent a request's complete headers within
/// `header_read_timeout` is disconnected (a slow client cannot hold a connection open).
pub async fn serve(app: Router, bind: SocketAddr, header_read_timeout: Duration) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| anyhow::anyhow!("bind {bind}: {e}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "tenantry serving; API docs at /docs");
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // e.g. out of file descriptors: keep serving the connections we have
                        tracing::warn!(error = %e, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut signal => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
