//! Runs one parsed command against the configured store: argument values are parsed into domain
//! types here (a bad value is a usage error), then the registry use-case decides.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;

use tenantry_app::ports::{Store, SystemClock, TenantFilter};
use tenantry_app::{
    App, AppConfig, AppError, AuditFilter, AuditKey, Auditor, Directory, EntrySigner, KeyOwner, PlatformScope,
    Registry, TenantScope, TrustedKeys,
};
use tenantry_domain::timestamp::{days_after, parse_time};
use tenantry_domain::{
    Currency, FlagKey, FlagLevel, FlagScope, FlagValue, HealthSignals, IsolationMode, KeyId, Label, LimitOverrides,
    Limits, Money, NewTenant, Role, TenantId, TenantPatch, TenantStatus, Tier, TierName, UserId,
};
use tenantry_store_postgres::{PgConfig, PgStore};
use tenantry_store_sqlite::SqliteStore;

use crate::cli::{
    AttributeArgs, AuditCmd, Cli, Command, DoctorCmd, FlagCmd, Global, HealthCmd, KeysCmd, LimitArgs, MembersCmd,
    ServeArgs, TenantCmd, TierCmd, TransitionArgs, UsersCmd,
};
use crate::output::Out;

#[derive(Debug)]
pub enum CliError {
    /// The command line was understood but a value is malformed.
    Usage(String),
    /// The registry refused the operation.
    Refused(AppError),
    /// Something failed that the user did not cause (store unreachable, IO).
    Failed(anyhow::Error),
    /// A check command ran and found problems (already printed).
    ChecksFailed(String),
    /// A check command ran and found something to look at, short of a failure (exit 3).
    Warned(String),
}

impl From<AppError> for CliError {
    fn from(e: AppError) -> Self {
        CliError::Refused(e)
    }
}

type Result<T> = std::result::Result<T, CliError>;

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn pg_config(g: &Global, url: &str) -> PgConfig {
    let mut c = PgConfig::new(url);
    c.app_url = g.app_database_url.clone();
    c.app_role = g.app_role.clone();
    c.app_password = g.app_password.clone();
    c.pool_size = g.db_pool_size;
    c.statement_timeout_ms = g.db_statement_timeout_ms;
    c.migrate = !g.no_migrate;
    c
}

/// The audit signing key: `TENANTRY_AUDIT_KEY` (hex seed), else the key file (created on first use).
fn audit_key(g: &Global) -> Result<Arc<AuditKey>> {
    if let Ok(hex) = std::env::var("TENANTRY_AUDIT_KEY")
        && !hex.trim().is_empty()
    {
        return AuditKey::from_hex(&hex).map(Arc::new).map_err(|e| usage(format!("TENANTRY_AUDIT_KEY: {e}")));
    }
    let path = g.audit_key_file.clone().unwrap_or_else(|| g.data_dir.join("audit-signing.key"));
    let (key, created) = AuditKey::load_or_create(&path, true).map_err(|e| CliError::Failed(anyhow::anyhow!(e)))?;
    if created {
        eprintln!(
            "generated the audit signing key {} (key id {}, public key {}); every process writing to this store must use it",
            path.display(),
            key.key_id(),
            key.public_hex()
        );
    }
    Ok(Arc::new(key))
}

async fn open_store(g: &Global, key: &Arc<AuditKey>) -> Result<Arc<dyn Store>> {
    let signer: Arc<dyn EntrySigner> = key.clone();
    match &g.database_url {
        Some(url) if !url.is_empty() => {
            let store = PgStore::connect(&pg_config(g, url)).await.map_err(CliError::Failed)?;
            Ok(Arc::new(store.with_signer(signer)))
        }
        _ => {
            let store = SqliteStore::open(&g.data_dir).await.map_err(CliError::Failed)?;
            Ok(Arc::new(store.with_signer(signer)))
        }
    }
}

/// The CLI acts with platform scope: whoever runs it holds the store's credentials already. The
/// scope is attributed to the OS user name.
fn operator(app: &App) -> PlatformScope {
    let name = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "operator".to_owned());
    app.operator(name)
}

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(usage)
}
fn tier_name(s: &str) -> Result<TierName> {
    TierName::parse(s).map_err(usage)
}
fn label(s: &str) -> Result<Label> {
    Label::parse(s).map_err(usage)
}
fn status(s: &str) -> Result<TenantStatus> {
    TenantStatus::parse(s).map_err(usage)
}

fn limit_overrides(l: &LimitArgs) -> Result<LimitOverrides> {
    let mut overrides = LimitOverrides::default();
    for (field, value) in &l.given {
        overrides.set(*field, Some(value.clone())).map_err(usage)?;
    }
    Ok(overrides)
}

fn budget_action(a: &AttributeArgs) -> Result<Option<tenantry_domain::BudgetAction>> {
    a.budget_action
        .as_deref()
        .map(tenantry_domain::BudgetAction::parse)
        .transpose()
        .map_err(|e| usage(format!("--budget-action: {}", e.reason())))
}

fn budget(a: &AttributeArgs) -> Result<Option<Money>> {
    match (&a.monthly_budget, &a.currency) {
        (Some(amount), Some(cur)) => {
            let cur = Currency::parse(cur).map_err(usage)?;
            Ok(Some(Money::parse_decimal(amount, cur).map_err(usage)?))
        }
        _ => Ok(None),
    }
}

fn metadata(a: &AttributeArgs) -> Result<Option<serde_json::Value>> {
    a.metadata
        .as_deref()
        .map(|m| serde_json::from_str(m).map_err(|e| usage(format!("--metadata is not valid JSON: {e}"))))
        .transpose()
}

fn tags(a: &AttributeArgs) -> Result<BTreeSet<Label>> {
    a.compliance_tags.iter().map(|t| label(t)).collect()
}

fn flag_scope(scope: &str, scope_id: Option<&str>) -> Result<FlagScope> {
    let level = FlagLevel::parse(scope).map_err(usage)?;
    FlagScope::from_parts(level, scope_id).map_err(usage)
}

pub async fn run(cli: Cli) -> Result<()> {
    let out = Out { json: cli.global.json };
    init_logging(cli.global.log.as_deref(), matches!(cli.command, Command::Serve(_)))?;
    if let Command::Migrate = cli.command {
        return migrate(&cli.global, &out).await;
    }
    if let Command::Audit(AuditCmd::Verify { file: Some(path), public_keys, .. }) = &cli.command {
        return verify_export_file(path, public_keys, &out);
    }
    let key = audit_key(&cli.global)?;
    if let Command::Audit(AuditCmd::PublicKey) = cli.command {
        out.public_key(key.key_id(), &key.public_hex());
        return Ok(());
    }
    let store = open_store(&cli.global, &key).await?;
    let serve_args = match &cli.command {
        Command::Serve(args) => Some(args),
        _ => None,
    };
    let serving = serve_args.is_some();
    let (app, alerts) = build_app(&cli.global, serve_args, store, key.clone()).await?;
    let (registry, directory, data) = (&app.registry, &app.directory, &app.data);
    let admin = operator(&app);
    let auditor = |trusted: TrustedKeys| app.auditor_trusting(trusted);
    let result = match cli.command {
        Command::Serve(args) => serve(&app, args).await,
        Command::Docs(cmd) => crate::data::docs(data, &admin, cmd, &out).await,
        Command::Query { tenant, text, top_k, filter } => {
            crate::data::query(data, &admin, &tenant, text, top_k, filter, &out).await
        }
        Command::Index(cmd) => crate::data::index(data, &admin, cmd, &out).await,
        Command::Cost(cmd) => crate::cost::cost(&app.costs, &admin, cmd, &out).await,
        Command::Readiness => readiness(&app, &admin, &out).await,
        Command::Config(cmd) => crate::answers::config(&app.answers, &admin, cmd, &out).await,
        Command::CompareTenants { tenants, question, questions, repeats, tolerance, monthly_queries, format } => {
            let args = crate::answers::CompareArgs { question, questions, repeats, tolerance, monthly_queries, format };
            crate::answers::compare(&app.answers, &admin, &tenants, args, &out).await
        }
        Command::Ask { tenant, question, top_k, filter, stream } => {
            crate::answers::ask(&app.answers, &admin, &tenant, question, top_k, filter, stream, &out).await
        }
        Command::SeedData { scale, tier } => crate::data::seed_data(registry, data, &admin, scale, &tier, &out).await,
        Command::Audit(cmd) => audit(&key, auditor, &admin, cmd, &out).await,
        Command::Keys(cmd) => keys(directory, &admin, cmd, &out).await,
        Command::Users(cmd) => users(directory, &admin, cmd, &out).await,
        Command::Members(cmd) => members(directory, &admin, cmd, &out).await,
        Command::Tenant(cmd) => tenant(registry, &admin, *cmd, &out).await,
        Command::Flag(cmd) => flag(registry, &admin, cmd, &out).await,
        Command::Health(HealthCmd::Set { tenant, latency_p95, error_rate, success_rate, storage }) => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            let signals = HealthSignals::new(latency_p95, error_rate, success_rate, storage).map_err(usage)?;
            let (t, report) = registry.record_health(&scope, signals).await?;
            out.health(&t, &report);
            Ok(())
        }
        Command::Tier(cmd) => tier(registry, &admin, cmd, &out).await,
        Command::Stats => {
            out.statistics(&registry.statistics(&admin).await?);
            Ok(())
        }
        Command::Doctor(DoctorCmd::Rls) => doctor_rls(&cli.global, &out).await,
        Command::Migrate => unreachable!("handled above"),
    };
    // a command that placed a tenant may have started capacity-alert webhook deliveries
    alerts.drain().await;
    if !serving {
        settle(&app).await;
    }
    result
}

/// Logs to stderr for every command: `serve` as JSON lines (default level info), the others as
/// one plain line per event (default warn), so what a command raises on the way — a capacity
/// alert from `tenant create` — is seen.
fn init_logging(level: Option<&str>, serve: bool) -> Result<()> {
    let level = level.unwrap_or(if serve { "info" } else { "warn" });
    let level: tracing_subscriber::filter::LevelFilter =
        level.parse().map_err(|_| usage(format!("--log {level:?} is not one of error, warn, info, debug, trace")))?;
    let logs = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr);
    let installed = if serve {
        logs.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        logs.compact().without_time().with_target(false).try_init()
    };
    installed.map_err(|e| CliError::Failed(anyhow::anyhow!("set up logging: {e}")))
}

/// A third party's check of an export: no store, no signing key, only trusted public keys.
fn verify_export_file(path: &std::path::Path, public_keys: &[String], out: &Out) -> Result<()> {
    let mut trusted = TrustedKeys::default();
    for k in public_keys.iter().filter(|k| !k.trim().is_empty()) {
        trusted.add_hex(k).map_err(|e| usage(format!("--public-key {k:?}: {e}")))?;
    }
    if trusted.is_empty() {
        return Err(usage("verifying an export needs the signer's public key: --public-key <hex>"));
    }
    let report = tenantry_app::audit::verify_exported(&read_export(path)?, &trusted);
    out.verify_report(&report);
    verdict(report)
}

fn verdict(report: tenantry_app::VerifyReport) -> Result<()> {
    match report.fault {
        None => Ok(()),
        Some(fault) => Err(CliError::ChecksFailed(format!(
            "audit log verification failed at entry {} ({}): {fault}",
            fault.seq(),
            fault.kind()
        ))),
    }
}

async fn audit(
    key: &AuditKey,
    auditor: impl Fn(TrustedKeys) -> Auditor,
    admin: &PlatformScope,
    cmd: AuditCmd,
    out: &Out,
) -> Result<()> {
    match cmd {
        AuditCmd::Verify { from, public_keys, file } => {
            let mut trusted = TrustedKeys::default();
            for k in public_keys.iter().filter(|k| !k.trim().is_empty()) {
                trusted.add_hex(k).map_err(|e| usage(format!("--public-key {k:?}: {e}")))?;
            }
            if trusted.is_empty() {
                trusted = key.trusted();
            }
            let report = match file {
                Some(path) => tenantry_app::audit::verify_exported(&read_export(&path)?, &trusted),
                None => auditor(trusted).verify(admin, from).await?,
            };
            out.verify_report(&report);
            verdict(report)
        }
        AuditCmd::Export { since, tenant, after_seq } => {
            let since = since.as_deref().map(|t| parse_time("--since", t)).transpose().map_err(usage)?;
            let tenant = tenant.as_deref().map(tenant_id).transpose()?;
            let auditor = auditor(TrustedKeys::default());
            let mut filter = AuditFilter { after_seq, tenant, since, limit: tenantry_app::audit::VERIFY_PAGE };
            loop {
                // each page read is itself recorded, as the last entry of the log
                let page = auditor.entries(admin, filter.clone()).await?;
                for entry in &page {
                    out.json_line(&entry_json(entry));
                }
                match page.last() {
                    Some(last) if page.len() == filter.limit as usize => filter.after_seq = last.seq,
                    _ => break,
                }
            }
            Ok(())
        }
        AuditCmd::Checkpoint => {
            let cp = auditor(key.trusted()).checkpoint(admin).await?;
            out.checkpoint(&cp);
            Ok(())
        }
        AuditCmd::PublicKey => unreachable!("handled before the store is opened"),
    }
}

/// Reads an export file (JSON lines of `audit export`).
fn read_export(path: &std::path::Path) -> Result<Vec<tenantry_app::audit::ExportedEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("read {}: {e}", path.display())))?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |what: &str| usage(format!("{} line {}: {what}", path.display(), n + 1));
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(&format!("not JSON: {e}")))?;
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let json = |k: &str| Some(v[k].clone()).filter(|j| !j.is_null());
        entries.push(tenantry_app::audit::ExportedEntry {
            seq: v["seq"].as_i64().ok_or_else(|| bad("no seq"))?,
            at_micros: v["at_micros"].as_i64().ok_or_else(|| bad("no at_micros"))?,
            actor_kind: text("actor_kind").ok_or_else(|| bad("no actor_kind"))?,
            actor_id: text("actor_id").ok_or_else(|| bad("no actor_id"))?,
            tenant_id: text("tenant_id"),
            operation: text("operation").ok_or_else(|| bad("no operation"))?,
            before: json("before"),
            after: json("after"),
            reason: text("reason"),
            request_id: text("request_id"),
            prev_hash: text("prev_hash"),
            hash: text("hash"),
            key_id: text("key_id"),
            signature: text("signature"),
        });
    }
    Ok(entries)
}

fn entry_json(entry: &tenantry_app::AuditEntry) -> serde_json::Value {
    serde_json::to_value(tenantry_http::dto::AuditEntryView::from(entry)).unwrap_or(serde_json::Value::Null)
}

async fn serve(app: &App, args: ServeArgs) -> Result<()> {
    if let Some(token) = args.bootstrap_admin_key.as_deref().filter(|t| !t.is_empty())
        && app.directory.bootstrap_admin_key(token).await?
    {
        eprintln!("installed the platform-admin key from TENANTRY_BOOTSTRAP_ADMIN_KEY");
    }
    let config = tenantry_http::ServerConfig {
        body_limit_bytes: args.body_limit_bytes,
        request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
        max_tenant_metric_labels: args.max_tenant_metric_labels,
    };
    if args.audit_checkpoint_interval_secs > 0 {
        spawn_checkpoints(
            app.auditor.clone(),
            app.operator("checkpointer"),
            std::time::Duration::from_secs(args.audit_checkpoint_interval_secs),
        );
    }
    let router = tenantry_http::router(tenantry_http::Services::of(app), &config);
    spawn_orphan_sweeps(app.data.clone(), std::time::Duration::from_secs(60));
    spawn_cost_tasks(app, args.storage_sample_secs, args.budget_check_secs, args.usage_retention_days);
    let reporter = tenantry_app::ReplicaReporter::start(
        app.store.clone(),
        app.clock.clone(),
        app.bus().as_ref(),
        app.cache.clone(),
        replica_id(args.bind),
    )
    .await;
    let header_timeout = std::time::Duration::from_secs(args.header_read_timeout_secs.max(1));
    let served = tenantry_http::serve(router, args.bind, header_timeout).await.map_err(CliError::Failed);
    reporter.leave().await;
    served
}

/// This server's name in replica reports: host, listening address and process id.
fn replica_id(bind: std::net::SocketAddr) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let id = format!("{host}/{bind}/{}", std::process::id());
    id.chars().take(100).collect()
}

/// The services, wired by the composition root from the command line: the invalidation bus and
/// shared cache are Redis with `--redis-url` (serve), else in-process; with Redis, query limits
/// are counted once for every replica together. Also returns the alert sink, to drain webhook
/// deliveries before the command exits.
async fn build_app(
    g: &Global,
    serve: Option<&ServeArgs>,
    store: Arc<dyn Store>,
    key: Arc<AuditKey>,
) -> Result<(App, Arc<crate::data::Alerts>)> {
    let parts = crate::data::data_parts(g)?;
    let cache = match serve {
        Some(args) => tenantry_app::CacheConfig {
            critical_ttl: std::time::Duration::from_secs(args.cache_critical_ttl_secs.max(1)),
            standard_ttl: std::time::Duration::from_secs(args.cache_standard_ttl_secs.max(1)),
            stale_if_error: std::time::Duration::from_secs(args.stale_if_error_secs),
        },
        None => tenantry_app::CacheConfig::default(),
    };
    let redis = g.redis_url.as_deref().filter(|u| !u.is_empty()).map(|u| (u, g.redis_namespace.as_str()));
    let poll = std::time::Duration::from_millis(serve.map_or(100, |a| a.change_feed_poll_ms.max(1)));
    let feed = || -> Arc<dyn tenantry_app::InvalidationBus> {
        Arc::new(tenantry_app::StoreBus::new(store.clone(), Arc::new(SystemClock), poll))
    };
    let (bus, shared_cache, meter, budget_holds): (Arc<dyn tenantry_app::InvalidationBus>, _, _, _) = match redis {
        Some((url, namespace)) => match redis_parts(url, namespace, g.redis_ca_file.as_deref()).await {
            Ok((bus, meter, holds)) => {
                let shared: Arc<dyn tenantry_app::SharedCache> = bus.clone();
                (bus, Some(shared), Some(meter), Some(holds))
            }
            // a server without its bus would serve stale data: refuse to start
            Err(e) if serve.is_some() => return Err(CliError::Failed(e)),
            Err(e) => {
                tracing::warn!(
                    "Redis is unreachable ({e:#}); this command's change reaches the servers when their caches expire"
                );
                (feed(), None, None, None)
            }
        },
        None => (feed(), None, None, None),
    };
    let trusted = key.trusted();
    let app = App::build(AppConfig {
        store,
        clock: Arc::new(SystemClock),
        bus,
        shared_cache,
        cache,
        embedder: parts.embedder,
        blobs: parts.blobs,
        alerts: parts.alerts.clone(),
        data: parts.config,
        meter,
        audit_key: Some(key),
        trusted,
        metering: tenantry_app::MeteringConfig::default(),
        budget_alerts: Arc::new(tenantry_app::LogBudgetAlerts),
        budget_holds,
        providers: providers(g)?,
    })
    .await
    .map_err(CliError::Failed)?;
    Ok((app, parts.alerts))
}

/// The configured language-model providers, `local` always among them.
fn providers(g: &Global) -> Result<tenantry_app::Providers> {
    let mut providers = tenantry_app::Providers::default();
    if let Some(path) = &g.data.llm_providers {
        for p in tenantry_llm::load(path).map_err(|e| CliError::Failed(anyhow::anyhow!(e)))? {
            providers = providers.with(Arc::new(p)).map_err(|e| CliError::Failed(anyhow::anyhow!(e)))?;
        }
    }
    Ok(providers)
}

async fn redis_parts(
    url: &str,
    namespace: &str,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<(
    Arc<tenantry_bus_redis::RedisBus>,
    Arc<dyn tenantry_app::QueryMeter>,
    Arc<dyn tenantry_app::BudgetHolds>,
)> {
    use anyhow::Context;
    let ca = ca_file
        .map(|f| std::fs::read(f).with_context(|| format!("read --redis-ca-file {}", f.display())))
        .transpose()?;
    let client = tenantry_bus_redis::client(url, ca.as_deref())?;
    let bus = Arc::new(tenantry_bus_redis::RedisBus::connect_client(client.clone(), namespace).await?);
    let meter = tenantry_bus_redis::RedisQueryMeter::connect_client(client.clone(), namespace).await?;
    let holds = tenantry_bus_redis::RedisBudgetHolds::connect_client(client, namespace).await?;
    Ok((bus, Arc::new(meter), Arc::new(holds)))
}

/// How long a command waits for the running servers to apply its change.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// After a command that changed something: waits until every running server on this command's
/// bus has applied the change, and says on stderr which servers did not confirm it.
async fn settle(app: &App) {
    match app.settle(SETTLE_TIMEOUT).await {
        Ok(report) => {
            if !report.lagging.is_empty() {
                tracing::warn!(
                    "servers {} did not confirm this change within {} s; they apply it when their caches expire",
                    report.lagging.join(", "),
                    SETTLE_TIMEOUT.as_secs()
                );
            }
            if !report.elsewhere.is_empty() {
                let buses: BTreeSet<&str> = report.elsewhere.iter().map(|(_, bus)| bus.as_str()).collect();
                tracing::warn!(
                    "{} running server(s) listen on {}, not on this command's bus ({}): give the command the servers' \
                     --redis-url so they hear changes at once; until then they apply it when their caches expire",
                    report.elsewhere.len(),
                    buses.into_iter().collect::<Vec<_>>().join(", "),
                    app.bus().name()
                );
            }
        }
        Err(e) => tracing::warn!("cannot read the servers' progress: {e}"),
    }
}

/// Removes the objects left behind in object storage (recorded when it could not remove them at
/// the time), at start and then every `every`.
fn spawn_orphan_sweeps(data: tenantry_app::DataPlane, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match data.sweep_orphans(1000).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed objects left behind by failed writes"),
                Err(e) => tracing::warn!(error = %e, "could not sweep the objects left behind"),
            }
        }
    });
}

/// Prunes raw usage events past their retention (hourly), samples stored bytes into the ledger
/// and checks budgets, each on its own period (0: off).
fn spawn_cost_tasks(app: &App, storage_every: u64, budgets_every: u64, retention_days: u32) {
    if retention_days > 0 {
        let (costs, access) = (app.costs.clone(), app.operator("usage-pruner"));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                match costs.prune_usage_events(&access, retention_days).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "pruned raw usage events past their retention"),
                    Err(e) => tracing::warn!(error = %e, "could not prune raw usage events"),
                }
            }
        });
    }
    if storage_every > 0 {
        let (costs, access) = (app.costs.clone(), app.operator("storage-sampler"));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(storage_every));
            loop {
                tick.tick().await;
                if let Err(e) = costs.sample_storage(&access, storage_every).await {
                    tracing::warn!(error = %e, "could not sample stored bytes into the ledger");
                }
            }
        });
    }
    if budgets_every > 0 {
        let (costs, access) = (app.costs.clone(), app.operator("budget-checker"));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(budgets_every));
            loop {
                tick.tick().await;
                if let Err(e) = costs.check_budgets(&access).await {
                    tracing::warn!(error = %e, "could not check budgets");
                }
            }
        });
    }
}

/// Signs the chain head periodically, when it has moved since the last checkpoint.
fn spawn_checkpoints(auditor: Auditor, access: PlatformScope, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match auditor.checkpoint_if_moved(&access).await {
                Ok(Some(cp)) => {
                    eprintln!("{}", serde_json::json!({"message": "audit checkpoint signed", "seq": cp.seq}))
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("{}", serde_json::json!({"message": "audit checkpoint failed", "error": e.to_string()}))
                }
            }
        }
    });
}

fn user_id(s: &str) -> Result<UserId> {
    UserId::parse(s).map_err(usage)
}

async fn keys(directory: &Directory, admin: &PlatformScope, cmd: KeysCmd, out: &Out) -> Result<()> {
    match cmd {
        KeysCmd::Create { platform_admin, admin_name, user, name, expires_in_days } => {
            let owner = match (platform_admin, user) {
                (true, _) => KeyOwner::PlatformAdmin(user_id(&admin_name)?),
                (false, Some(u)) => KeyOwner::User(user_id(&u)?),
                (false, None) => return Err(usage("give --platform-admin or --user <id>")),
            };
            let expires_at = expires_in_days
                .map(|d| days_after("--expires-in-days", time::OffsetDateTime::now_utc(), d.max(1)))
                .transpose()
                .map_err(usage)?;
            let issued = directory.create_key(admin, owner, &name, expires_at).await?;
            out.issued_key(&issued);
        }
        KeysCmd::List { owner } => {
            let owner = owner.as_deref().map(user_id).transpose()?;
            out.keys(&directory.list_keys(admin, owner.as_ref()).await?);
        }
        KeysCmd::Revoke { key_id } => {
            let id = KeyId::parse(&key_id).map_err(usage)?;
            directory.revoke_key(admin, &id).await?;
            out.message(&format!("API key {id} revoked"));
        }
    }
    Ok(())
}

async fn users(directory: &Directory, admin: &PlatformScope, cmd: UsersCmd, out: &Out) -> Result<()> {
    match cmd {
        UsersCmd::Create { user_id: id, display_name } => {
            let user = directory.create_user(admin, user_id(&id)?, &display_name).await?;
            out.users(&[user]);
        }
        UsersCmd::List => out.users(&directory.list_users(admin).await?),
        UsersCmd::Tenants { user_id: id } => out.memberships(&directory.memberships_of(admin, &user_id(&id)?).await?),
    }
    Ok(())
}

async fn members(directory: &Directory, admin: &PlatformScope, cmd: MembersCmd, out: &Out) -> Result<()> {
    match cmd {
        MembersCmd::Add { tenant, user_id: id, role } => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            let role = Role::parse(&role).map_err(usage)?;
            match directory.put_member(&scope, &user_id(&id)?, role).await? {
                tenantry_app::MemberChange::Added(m) => out.memberships(&[m]),
                // the operator acts with platform authority, which adds directly
                tenantry_app::MemberChange::Invited(i) => out.message(&format!("{} invited to {}", i.user, i.tenant)),
            }
        }
        MembersCmd::Remove { tenant, user_id: id } => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            directory.remove_member(&scope, &user_id(&id)?).await?;
            out.message(&format!("{id} removed from {tenant}"));
        }
        MembersCmd::List { tenant } => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            out.memberships(&directory.list_members(&scope).await?);
        }
    }
    Ok(())
}

async fn migrate(g: &Global, out: &Out) -> Result<()> {
    match &g.database_url {
        Some(url) if !url.is_empty() => {
            let config = pg_config(g, url);
            tenantry_store_postgres::migrate(&config).await.map_err(CliError::Failed)?;
            out.message(&format!("migrations applied; application role {} granted", config.app_role));
        }
        _ => {
            SqliteStore::open(&g.data_dir).await.map_err(CliError::Failed)?;
            out.message(&format!("migrations applied to the embedded store in {}", g.data_dir.display()));
        }
    }
    Ok(())
}

async fn readiness(app: &App, admin: &PlatformScope, out: &Out) -> Result<()> {
    use tenantry_domain::readiness::{Verdict, summary};
    let checks = app.readiness.run(admin).await?;
    let verdict = summary(&checks);
    if out.json {
        crate::output::print_json(&serde_json::json!({"verdict": verdict, "checks": checks}));
    } else {
        for c in &checks {
            println!("{} {:<20} {}", c.verdict.symbol(), c.name, c.reason);
        }
        println!("readiness: {}", verdict.as_str().to_uppercase());
    }
    match verdict {
        Verdict::Pass => Ok(()),
        Verdict::Warn | Verdict::Skipped => {
            Err(CliError::Warned("readiness: a check warned or was skipped".to_owned()))
        }
        Verdict::Fail => Err(CliError::ChecksFailed("readiness: a check failed".to_owned())),
    }
}

async fn doctor_rls(g: &Global, out: &Out) -> Result<()> {
    let Some(url) = g.database_url.as_deref().filter(|u| !u.is_empty()) else {
        return Err(CliError::Usage(
            "doctor rls checks PostgreSQL row-level security: give --database-url or DATABASE_URL (the embedded store has no RLS)"
                .to_owned(),
        ));
    };
    let pool = tenantry_store_postgres::app_pool(&pg_config(g, url)).await.map_err(CliError::Failed)?;
    let probes =
        tenantry_store_postgres::probes::run(&pool).await.context("run RLS probes").map_err(CliError::Failed)?;
    out.probes(&probes);
    // a probe that could not run is reported as skipped, and fails nothing
    if probes.iter().all(|p| p.outcome != tenantry_store_postgres::probes::Outcome::Failed) {
        Ok(())
    } else {
        Err(CliError::ChecksFailed("RLS probes failed: see above".to_owned()))
    }
}

async fn transition(
    registry: &Registry,
    scope: &TenantScope,
    target: TenantStatus,
    args: TransitionArgs,
    out: &Out,
) -> Result<()> {
    let t = registry.transition(scope, target, &args.reason, args.retention_days, args.expected_version).await?;
    out.tenant(&t);
    Ok(())
}

async fn tenant(registry: &Registry, admin: &PlatformScope, cmd: TenantCmd, out: &Out) -> Result<()> {
    match cmd {
        TenantCmd::Create { id, name, tier, limits, attributes } => {
            let new = NewTenant {
                id: tenant_id(&id)?,
                name,
                tier: tier_name(&tier)?,
                billing_email: attributes.billing_email.clone(),
                owner: attributes.owner.clone(),
                limits: limit_overrides(&limits)?,
                cost_center: attributes.cost_center.clone(),
                monthly_budget: budget(&attributes)?,
                budget_action: budget_action(&attributes)?.unwrap_or_default(),
                compliance_tags: tags(&attributes)?,
                data_region: attributes.data_region.as_deref().map(label).transpose()?,
                metadata: metadata(&attributes)?.unwrap_or_else(|| serde_json::json!({})),
            };
            let t = registry.create_tenant(admin, new).await?;
            out.tenant(&t);
        }
        TenantCmd::Get { id } => {
            let t = registry.get_tenant(&admin.act_in(tenant_id(&id)?)).await?;
            out.tenant(&t);
        }
        TenantCmd::List { status: s, tier, limit, after } => {
            let filter = TenantFilter {
                status: s.as_deref().map(status).transpose()?,
                tier: tier.as_deref().map(tier_name).transpose()?,
                after: after.as_deref().map(tenant_id).transpose()?,
                limit: if limit == 0 { return Err(usage("--limit must be at least 1")) } else { limit },
            };
            out.tenant_page(&registry.list_tenants(admin, filter).await?);
        }
        TenantCmd::Update { id, name, tier, limits, attributes, reset_limits, expected_version } => {
            let patch = TenantPatch {
                name,
                tier: tier.as_deref().map(tier_name).transpose()?,
                billing_email: attributes.billing_email.clone().map(Some),
                owner: attributes.owner.clone().map(Some),
                limits: limit_overrides(&limits)?,
                reset_limits,
                cost_center: attributes.cost_center.clone().map(Some),
                monthly_budget: budget(&attributes)?.map(Some),
                budget_action: budget_action(&attributes)?,
                compliance_tags: if attributes.compliance_tags.is_empty() { None } else { Some(tags(&attributes)?) },
                data_region: attributes.data_region.as_deref().map(label).transpose()?,
                metadata: metadata(&attributes)?,
            };
            let t = registry.update_tenant(&admin.act_in(tenant_id(&id)?), patch, expected_version).await?;
            out.tenant(&t);
        }
        TenantCmd::Transition { id, target, args } => {
            transition(registry, &admin.act_in(tenant_id(&id)?), status(&target)?, args, out).await?
        }
        TenantCmd::Suspend { id, args } => {
            transition(registry, &admin.act_in(tenant_id(&id)?), TenantStatus::Suspended, args, out).await?
        }
        TenantCmd::Activate { id, args } => {
            transition(registry, &admin.act_in(tenant_id(&id)?), TenantStatus::Active, args, out).await?
        }
        TenantCmd::Archive { id, args } => {
            transition(registry, &admin.act_in(tenant_id(&id)?), TenantStatus::Archived, args, out).await?
        }
        TenantCmd::Delete { id, args } => {
            transition(registry, &admin.act_in(tenant_id(&id)?), TenantStatus::Deleted, args, out).await?
        }
        TenantCmd::Migrate { id, args } => {
            transition(registry, &admin.act_in(tenant_id(&id)?), TenantStatus::Migrating, args, out).await?
        }
        TenantCmd::History { id, limit } => {
            let scope = admin.act_in(tenant_id(&id)?);
            registry.get_tenant(&scope).await?;
            out.history(&registry.tenant_audit(&scope, limit).await?);
        }
    }
    Ok(())
}

async fn kill_switch(
    registry: &Registry,
    admin: &PlatformScope,
    feature: &str,
    enabled: bool,
    reason: Option<String>,
    out: &Out,
) -> Result<()> {
    let key = FlagKey::parse(feature).map_err(usage)?;
    registry.set_flag_enabled(admin, key.clone(), enabled, reason).await?;
    out.kill_switch(&key, enabled);
    Ok(())
}

async fn flag(registry: &Registry, admin: &PlatformScope, cmd: FlagCmd, out: &Out) -> Result<()> {
    match cmd {
        FlagCmd::Set {
            feature,
            enabled,
            value,
            scope,
            scope_id,
            rollout,
            description,
            owner,
            expires_at,
            platform_set,
        } => {
            let key = FlagKey::parse(&feature).map_err(usage)?;
            let scope = flag_scope(&scope, scope_id.as_deref())?;
            let value = match (enabled, value) {
                (Some(b), _) => FlagValue::Bool(b),
                (None, Some(v)) => {
                    let json: serde_json::Value =
                        serde_json::from_str(&v).unwrap_or_else(|_| serde_json::Value::String(v.clone()));
                    FlagValue::from_json(json).map_err(usage)?
                }
                (None, None) => return Err(usage("give --enabled true|false or --value <json>")),
            };
            let expires_at = expires_at.as_deref().map(|t| parse_time("--expires-at", t)).transpose().map_err(usage)?;
            let meta = tenantry_domain::FlagMeta { description, owner, expires_at: expires_at.map(Some) };
            let rule = tenantry_domain::FlagRule { value: value.clone(), rollout };
            match (&scope, platform_set) {
                (FlagScope::Tenant(t), platform_set) => {
                    registry
                        .set_tenant_flag_rule(&admin.act_in(t.clone()), key.clone(), rule, meta, platform_set)
                        .await?
                }
                (_, Some(_)) => return Err(usage("--platform-set applies only to --scope tenant")),
                (_, None) => registry.set_flag_rule(admin, scope.clone(), key.clone(), rule, meta).await?,
            }
            out.flag_set(&key, &scope, &value);
        }
        FlagCmd::Unset { feature, scope, scope_id } => {
            let key = FlagKey::parse(&feature).map_err(usage)?;
            let scope = flag_scope(&scope, scope_id.as_deref())?;
            registry.delete_flag(admin, scope.clone(), key.clone()).await?;
            out.message(&format!("flag {key} unset at {scope}"));
        }
        FlagCmd::Eval { tenant, feature } => {
            let scope = admin.act_in(tenant_id(&tenant)?);
            match feature {
                Some(f) => {
                    let key = FlagKey::parse(&f).map_err(usage)?;
                    let evaluation = registry.evaluate_flag(&scope, &key).await?;
                    out.evaluation(scope.tenant(), &key, &evaluation);
                }
                None => out.evaluations(scope.tenant(), &registry.evaluate_all_flags(&scope).await?),
            }
        }
        FlagCmd::List => out.flag_rows(&registry.list_flags(admin).await?),
        FlagCmd::Defs => out.flag_definitions(&registry.flag_definitions(admin).await?),
        FlagCmd::Disable { feature, reason } => kill_switch(registry, admin, &feature, false, reason, out).await?,
        FlagCmd::Enable { feature, reason } => kill_switch(registry, admin, &feature, true, reason, out).await?,
        FlagCmd::Stale { max_age_days } => {
            let report = registry.stale_flags(admin, time::Duration::days(i64::from(max_age_days))).await?;
            out.stale_flags(&report);
        }
    }
    Ok(())
}

async fn tier(registry: &Registry, admin: &PlatformScope, cmd: TierCmd, out: &Out) -> Result<()> {
    match cmd {
        TierCmd::List => out.tiers(&registry.list_tiers().await?, &registry.list_flags(admin).await?),
        TierCmd::Get { name } => {
            out.tiers(&[registry.get_tier(&tier_name(&name)?).await?], &registry.list_flags(admin).await?)
        }
        TierCmd::Create { name, rank, description, isolation, retention_days, limits } => {
            let limits = Limits::try_from_fn(|field| {
                limits.0.given.iter().find(|(f, _)| *f == field).map(|(_, v)| v.clone()).ok_or_else(|| {
                    tenantry_domain::Invalid::new(format!("--{} is required", field.as_str().replace('_', "-")))
                })
            })
            .map_err(usage)?;
            let isolation = IsolationMode::parse(&isolation).map_err(usage)?;
            let t =
                Tier::new(tier_name(&name)?, rank, description, limits, isolation, retention_days).map_err(usage)?;
            let t = registry.create_tier(admin, t).await?;
            out.tiers(&[t], &[]);
        }
    }
    Ok(())
}
