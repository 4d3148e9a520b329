//! The command line, as data: every command, argument and environment variable of `tenantry`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tenantry_domain::{LimitField, LimitKind, LimitValue};

#[derive(Debug, Parser)]
#[command(name = "tenantry", version, about = "Control plane for multi-tenant RAG platforms", propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Print machine-readable JSON instead of tables (errors too, on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level on stderr: error, warn, info, debug, trace. Default: info for `serve` (JSON
    /// lines), warn for every other command (one line each, e.g. a capacity alert).
    #[arg(long, global = true, env = "TENANTRY_LOG")]
    pub log: Option<String>,
    /// Directory of the embedded store (used when no database URL is given).
    #[arg(long, global = true, env = "TENANTRY_DATA_DIR", default_value = ".tenantry")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL of the schema owner (selects the PostgreSQL backend).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL URL for the application role, if it is not the owner URL with the role as user.
    #[arg(long, global = true, env = "TENANTRY_APP_DATABASE_URL", hide_env_values = true)]
    pub app_database_url: Option<String>,
    /// Name of the PostgreSQL application role the service connects as.
    #[arg(long, global = true, env = "TENANTRY_APP_ROLE", default_value = "tenantry_app")]
    pub app_role: String,
    /// Password to set on (and use for) the application role.
    #[arg(long, global = true, env = "TENANTRY_APP_PASSWORD", hide_env_values = true)]
    pub app_password: Option<String>,
    /// PostgreSQL connection pool size.
    #[arg(long, global = true, env = "TENANTRY_DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: u32,
    /// PostgreSQL statement timeout in milliseconds.
    #[arg(long, global = true, env = "TENANTRY_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub db_statement_timeout_ms: u64,
    /// Do not apply migrations on start (PostgreSQL; run `tenantry migrate` separately).
    #[arg(long, global = true)]
    pub no_migrate: bool,
    /// File holding the Ed25519 seed that signs audit entries and checkpoints (64 hex digits);
    /// created on first use. Default: `<data-dir>/audit-signing.key`. `TENANTRY_AUDIT_KEY` (the
    /// hex seed itself) takes precedence; every replica must use the same key.
    #[arg(long, global = true, env = "TENANTRY_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// Redis URL: its pub/sub carries cache invalidations between every server and command, and
    /// it holds the shared cache and query counts. Without it, invalidations travel through the
    /// store's change feed. Servers and commands must agree: give both the same URL.
    #[arg(long, global = true, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of the Redis channel and keys, so deployments can share one Redis.
    #[arg(long, global = true, env = "TENANTRY_REDIS_NAMESPACE", default_value = "")]
    pub redis_namespace: String,
    /// PEM file of the CA that signed Redis's certificate (a `rediss://` URL checks the server
    /// against it instead of the system's roots).
    #[arg(long, global = true, env = "TENANTRY_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// The data plane's settings: object storage, embedding provider, chunking, index capacity.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Keep raw documents in this S3 bucket (default: the directory `<data-dir>/objects`).
    /// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(long, global = true, env = "TENANTRY_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 endpoint for S3-compatible servers, e.g. http://127.0.0.1:9000 (default: AWS).
    #[arg(long, global = true, env = "TENANTRY_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, global = true, env = "TENANTRY_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Embedding provider: `local` (offline feature hashing, lexical), `minilm` (offline
    /// all-MiniLM-L6-v2, semantic; install it with scripts/setup-minilm.sh) or `openai` (any
    /// OpenAI-compatible /v1/embeddings endpoint).
    #[arg(long, global = true, env = "TENANTRY_EMBEDDING_PROVIDER", default_value = "local")]
    pub embedding_provider: String,
    /// Base URL of the OpenAI-compatible provider (…/v1).
    #[arg(long, global = true, env = "TENANTRY_EMBEDDING_URL", default_value = "https://api.openai.com/v1")]
    pub embedding_url: String,
    /// Model name sent to the provider.
    #[arg(long, global = true, env = "TENANTRY_EMBEDDING_MODEL", default_value = "text-embedding-3-small")]
    pub embedding_model: String,
    /// API key of the provider.
    #[arg(long, global = true, env = "TENANTRY_EMBEDDING_API_KEY", hide_env_values = true)]
    pub embedding_api_key: Option<String>,
    /// Where `minilm`'s files are (default: `<data-dir>/models/all-MiniLM-L6-v2`).
    #[arg(long, global = true, env = "TENANTRY_EMBEDDING_MODEL_DIR")]
    pub embedding_model_dir: Option<PathBuf>,
    /// Vector dimensions (the local embedder's size; for a provider, its model's output size).
    #[arg(long, global = true, env = "TENANTRY_EMBEDDING_DIMENSIONS", default_value_t = 384)]
    pub embedding_dimensions: usize,
    /// Words per chunk.
    #[arg(long, global = true, env = "TENANTRY_CHUNK_SIZE", default_value_t = 200)]
    pub chunk_size: usize,
    /// Words shared by consecutive chunks.
    #[arg(long, global = true, env = "TENANTRY_CHUNK_OVERLAP", default_value_t = 40)]
    pub chunk_overlap: usize,
    /// Namespaces (tenants) per shared index (the seed's Pinecone limit is 100).
    #[arg(long, global = true, env = "TENANTRY_INDEX_CAPACITY", default_value_t = 100)]
    pub index_capacity: u32,
    /// Fraction of capacity at which an alert fires and a standby index is provisioned.
    #[arg(long, global = true, env = "TENANTRY_INDEX_ALERT_THRESHOLD", default_value_t = 0.8)]
    pub index_alert_threshold: f64,
    /// POST capacity alerts (JSON) to this URL as well as logging and counting them.
    #[arg(long, global = true, env = "TENANTRY_CAPACITY_WEBHOOK_URL")]
    pub capacity_webhook_url: Option<String>,
    /// Language-model providers answers may use: a JSON list of `{name, api: openai|anthropic,
    /// base_url, api_key_env, models, timeout_secs, max_retries, max_concurrency}`. Without it only
    /// `local` (the offline extractive answerer) is configured.
    #[arg(long, global = true, env = "TENANTRY_LLM_PROVIDERS")]
    pub llm_providers: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, read, change and move tenants.
    #[command(subcommand)]
    Tenant(Box<TenantCmd>),
    /// Set and evaluate feature flags (tenant > tier > global).
    #[command(subcommand)]
    Flag(FlagCmd),
    /// Record tenant health signals and get the score.
    #[command(subcommand)]
    Health(HealthCmd),
    /// Show and extend the tier catalog.
    #[command(subcommand)]
    Tier(TierCmd),
    /// Registry statistics: counts by status, tier and health class.
    Stats,
    /// Apply database migrations (PostgreSQL) and provision the application role's grants.
    Migrate,
    /// Readiness checks against the live store.
    #[command(subcommand)]
    Doctor(DoctorCmd),
    /// Run the HTTP API (the control plane) on the configured store until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Issue, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Create and list users (people who get memberships and keys).
    #[command(subcommand)]
    Users(UsersCmd),
    /// Manage a tenant's members and their roles.
    #[command(subcommand)]
    Members(MembersCmd),
    /// Verify, export and checkpoint the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Ingest, list and delete a tenant's documents.
    #[command(subcommand)]
    Docs(DocsCmd),
    /// Search a tenant's documents.
    Query {
        tenant: String,
        text: String,
        /// 1 to 100.
        #[arg(long, default_value_t = 5)]
        top_k: u32,
        /// Metadata equality filter as a JSON object, e.g. '{"lang":"en"}'.
        #[arg(long)]
        filter: Option<String>,
    },
    /// The physical vector index pool.
    #[command(subcommand)]
    Index(IndexCmd),
    /// The cost ledger: reports, chargeback, prices, fixed costs, bills, reconciliation, budgets.
    #[command(subcommand)]
    Cost(CostCmd),
    /// The four readiness checks (isolation, cost reconciliation, capacity monitoring, three
    /// tenants that upload and query): exit 0 when all pass, 3 on a warning or a skipped check,
    /// 1 on a failure.
    Readiness,
    /// Answer configuration: provider, model, top_k, rerank, prompt template (versioned; tenant >
    /// tier > platform > built-in default).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Compare tenants' answer configurations: for each, its documents, its current configuration
    /// and a grid of candidates (priced models × top_k 3/5/10 × rerank off/lexical) measured on
    /// real answers, and the cheapest candidate within the quality tolerance with its projected
    /// monthly cost. Every trial is a metered answer.
    CompareTenants {
        #[arg(required = true)]
        tenants: Vec<String>,
        /// The question asked of every tenant (default for the seed tenants: a question of their
        /// domain).
        #[arg(long)]
        question: Option<String>,
        /// A file of questions, one per line.
        #[arg(long)]
        questions: Option<PathBuf>,
        /// Times each question is asked per configuration (latency is the p50 over all).
        #[arg(long, default_value_t = 3)]
        repeats: u32,
        /// Quality the recommendation may give up against the best candidate (0 to 1).
        #[arg(long, default_value_t = 0.05)]
        tolerance: f64,
        /// Queries per month to project cost with (default: each tenant's last 30 days).
        #[arg(long)]
        monthly_queries: Option<u64>,
        #[arg(long, value_enum, default_value = "table")]
        format: CompareFormat,
    },
    /// Answer a question from a tenant's documents with its configuration.
    Ask {
        tenant: String,
        question: String,
        /// Chunks to answer from (default: the configured top_k).
        #[arg(long)]
        top_k: Option<u32>,
        /// Metadata filter, a JSON object (default: the configured one).
        #[arg(long)]
        filter: Option<String>,
        /// Print the answer's text as the provider produces it.
        #[arg(long)]
        stream: bool,
    },
    /// Create the seed's benchmark tenants D (1,000 docs of ~150 words), E (50 of ~5,200) and
    /// F (200 of ~800) with generated text.
    SeedData {
        /// Multiply every document count by this (e.g. 0.1 for a quick run).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Tier of the created tenants.
        #[arg(long, default_value = "gold")]
        tier: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DocsCmd {
    /// Ingest a file, or every file of a directory (recursively); each file is one document titled
    /// by its name, with its path as client id (re-ingesting skips files already stored).
    Ingest {
        tenant: String,
        path: PathBuf,
        /// Metadata for every document, as a JSON object.
        #[arg(long)]
        metadata: Option<String>,
        /// Documents per request (1 to 100).
        #[arg(long, default_value_t = 20)]
        batch_size: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// List a tenant's documents.
    List {
        tenant: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        after: Option<String>,
    },
    /// Delete a document with its chunks, vectors and stored object.
    Delete { tenant: String, document_id: String },
}

#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    /// Every physical index with its usage.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Walk the hash chain, signatures and checkpoints; exit 1 naming the first bad entry.
    Verify {
        /// Start at this sequence number (trusting the entry before it).
        #[arg(long)]
        from: Option<i64>,
        /// Trust this Ed25519 public key (64 hex digits; repeatable). Default: this installation's key.
        #[arg(long = "public-key", env = "TENANTRY_AUDIT_PUBLIC_KEYS", value_delimiter = ',')]
        public_keys: Vec<String>,
        /// Verify an export file (JSON lines from `audit export`) instead of the store: no database
        /// access needed, only the public key.
        #[arg(long, conflicts_with = "from")]
        file: Option<PathBuf>,
    },
    /// Print entries as JSON lines (for shipping to a separate read-only system).
    Export {
        /// Only entries at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only this tenant's entries.
        #[arg(long)]
        tenant: Option<String>,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
    },
    /// Sign the chain head now.
    Checkpoint,
    /// Print the public key (and key id) that verifies this installation's signatures.
    PublicKey,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TENANTRY_BIND", default_value = "127.0.0.1:8000")]
    pub bind: std::net::SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TENANTRY_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// Requests running longer than this many seconds are answered 503 request_timeout.
    #[arg(long, env = "TENANTRY_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds a client has to send a request's complete headers before it is disconnected.
    #[arg(long, env = "TENANTRY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Distinct tenants that get their own per-tenant request metric series (the rest: `_other`).
    #[arg(long, env = "TENANTRY_MAX_TENANT_METRIC_LABELS", default_value_t = 1000)]
    pub max_tenant_metric_labels: usize,
    /// A platform-admin API key to install on start if absent (for deployments' first key).
    #[arg(long, env = "TENANTRY_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<String>,
    /// How often a server without Redis reads the store's change feed, in milliseconds.
    #[arg(long, env = "TENANTRY_CHANGE_FEED_POLL_MS", default_value_t = 100)]
    pub change_feed_poll_ms: u64,
    /// Safety-net TTL of critical cached data (tenant status, tier, limits; authenticated API
    /// keys), in seconds; invalidation on write is what keeps it current.
    #[arg(long, env = "TENANTRY_CACHE_CRITICAL_TTL_SECS", default_value_t = 60)]
    pub cache_critical_ttl_secs: u64,
    /// Safety-net TTL of standard cached data (feature flags), in seconds.
    #[arg(long, env = "TENANTRY_CACHE_STANDARD_TTL_SECS", default_value_t = 300)]
    pub cache_standard_ttl_secs: u64,
    /// How long reads may keep serving the last snapshot while the store is down, in seconds.
    #[arg(long, env = "TENANTRY_STALE_IF_ERROR_SECS", default_value_t = 1800)]
    pub stale_if_error_secs: u64,
    /// Sign the audit chain head this often, in seconds, when it has moved (0: never).
    #[arg(long, env = "TENANTRY_AUDIT_CHECKPOINT_INTERVAL_SECS", default_value_t = 300)]
    pub audit_checkpoint_interval_secs: u64,
    /// Sample every tenant's stored bytes into the cost ledger this often, in seconds (each
    /// interval is charged once across replicas; 0: never).
    #[arg(long, env = "TENANTRY_STORAGE_SAMPLE_SECS", default_value_t = 3600)]
    pub storage_sample_secs: u64,
    /// Check tenants' spend against their budgets this often, in seconds (alerts at 80% and 100%,
    /// each once a month; 0: never).
    #[arg(long, env = "TENANTRY_BUDGET_CHECK_SECS", default_value_t = 300)]
    pub budget_check_secs: u64,
    /// Keep raw usage events this many days (their daily rollups stay; a retried write older than
    /// this would count again; 0: keep them all).
    #[arg(long, env = "TENANTRY_USAGE_RETENTION_DAYS", default_value_t = 90)]
    pub usage_retention_days: u32,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Issue a key; the token is printed once and never stored.
    Create {
        /// A key for a platform administrator (named by --admin-name).
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        platform_admin: bool,
        /// The administrator's name, recorded as the actor of everything done with the key.
        #[arg(long, default_value = "admin", requires = "platform_admin")]
        admin_name: String,
        /// A key for this user (their memberships decide what it can do).
        #[arg(long)]
        user: Option<String>,
        /// A label for the key, e.g. where it is deployed.
        #[arg(long, default_value = "")]
        name: String,
        /// The key stops working after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List keys (never their secrets).
    List {
        /// Only the keys of this user or administrator.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revoke a key: it stops working at once.
    Revoke { key_id: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Create a user.
    Create {
        user_id: String,
        #[arg(long)]
        display_name: String,
    },
    /// List users.
    List,
    /// The tenants a user belongs to, with roles.
    Tenants { user_id: String },
}

#[derive(Debug, Subcommand)]
pub enum MembersCmd {
    /// Add a user to a tenant, or change their role.
    Add {
        tenant: String,
        user_id: String,
        /// admin | analyst | reviewer | viewer
        #[arg(long)]
        role: String,
    },
    /// Remove a user from a tenant.
    Remove { tenant: String, user_id: String },
    /// List a tenant's members.
    List { tenant: String },
}

/// One optional `--<limit>` flag per [`LimitField`] (`--max-users`, `--sla-target`, …), built from
/// the list of limits: a new limit is a new flag with no edit here.
#[derive(Debug, Clone, Default)]
pub struct LimitArgs {
    /// The limits given, in [`LimitField::ALL`] order.
    pub given: Vec<(LimitField, LimitValue)>,
}

/// The same flags, each required: a new tier's default limits.
#[derive(Debug, Clone, Default)]
pub struct TierLimitArgs(pub LimitArgs);

fn limit_field(name: &str) -> Result<LimitField, String> {
    LimitField::parse(name).map_err(|e| e.to_string())
}

fn limit_flags(mut cmd: clap::Command, required: bool) -> clap::Command {
    for field in LimitField::ALL {
        let value_name = match field.kind() {
            LimitKind::Count => "COUNT",
            LimitKind::Fraction => "FRACTION",
            LimitKind::Label => "LABEL",
        };
        cmd = cmd.arg(
            clap::Arg::new(field.as_str())
                .long(field.as_str().replace('_', "-"))
                .value_name(value_name)
                .help(field.description())
                .required(required),
        );
    }
    cmd
}

impl clap::FromArgMatches for LimitArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for field in LimitField::ALL {
            if let Some(text) = matches.get_one::<String>(field.as_str()) {
                let value = LimitValue::parse(*field, text).map_err(|e| {
                    let flag = field.as_str().replace('_', "-");
                    clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("--{flag}: {e}"))
                })?;
                self.given.retain(|(f, _)| f != field);
                self.given.push((*field, value));
            }
        }
        self.given.sort_by_key(|(f, _)| *f);
        Ok(())
    }
}

impl Args for LimitArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        limit_flags(cmd, false)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        limit_flags(cmd, false)
    }
}

impl clap::FromArgMatches for TierLimitArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        LimitArgs::from_arg_matches(matches).map(TierLimitArgs)
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl Args for TierLimitArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        limit_flags(cmd, true)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        limit_flags(cmd, false)
    }
}

#[derive(Debug, Args)]
pub struct AttributeArgs {
    #[arg(long)]
    pub billing_email: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long)]
    pub cost_center: Option<String>,
    /// Monthly budget as a decimal amount (needs --currency).
    #[arg(long, requires = "currency")]
    pub monthly_budget: Option<String>,
    /// ISO 4217 currency of the budget, e.g. USD, INR.
    #[arg(long, requires = "monthly_budget")]
    pub currency: Option<String>,
    /// What a spent budget does: alert (default) or block (refuse billable requests).
    #[arg(long)]
    pub budget_action: Option<String>,
    /// Compliance tag (repeatable), e.g. --compliance-tag gdpr --compliance-tag sox.
    #[arg(long = "compliance-tag")]
    pub compliance_tags: Vec<String>,
    /// Data residency region, e.g. eu-west-1.
    #[arg(long)]
    pub data_region: Option<String>,
    /// Free-form JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// Create a tenant; limits not given come from the tier.
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        tier: String,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        attributes: AttributeArgs,
    },
    /// Show one tenant.
    Get { id: String },
    /// List tenants, filtered and paginated by id.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        tier: Option<String>,
        /// Page size (1..=1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Cursor: list tenants after this id (the previous page's next_cursor).
        #[arg(long)]
        after: Option<String>,
    },
    /// Change attributes, tier or limits.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        tier: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        attributes: AttributeArgs,
        /// Reset a limit to the tier's default (repeatable), e.g. --reset-limit max_users.
        #[arg(long = "reset-limit", value_parser = limit_field)]
        reset_limits: Vec<LimitField>,
        /// Refuse the update unless the tenant is still at this version.
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Move a tenant to another lifecycle state.
    Transition {
        id: String,
        /// active, suspended, migrating, archived or deleted.
        target: String,
        #[command(flatten)]
        args: TransitionArgs,
    },
    /// Shorthand for `transition <id> suspended`.
    Suspend {
        id: String,
        #[command(flatten)]
        args: TransitionArgs,
    },
    /// Shorthand for `transition <id> active`.
    Activate {
        id: String,
        #[command(flatten)]
        args: TransitionArgs,
    },
    /// Shorthand for `transition <id> archived`.
    Archive {
        id: String,
        #[command(flatten)]
        args: TransitionArgs,
    },
    /// Shorthand for `transition <id> deleted` (only from archived, after retention).
    Delete {
        id: String,
        #[command(flatten)]
        args: TransitionArgs,
    },
    /// Shorthand for `transition <id> migrating`.
    Migrate {
        id: String,
        #[command(flatten)]
        args: TransitionArgs,
    },
    /// The tenant's audit trail: every change with actor and reason.
    History {
        id: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Args)]
pub struct TransitionArgs {
    /// Why (recorded with the actor in the audit log).
    #[arg(long)]
    pub reason: String,
    /// Retention period when archiving (default: the tier's).
    #[arg(long)]
    pub retention_days: Option<u32>,
    #[arg(long)]
    pub expected_version: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum FlagCmd {
    /// Set a flag value at a scope.
    Set {
        feature: String,
        /// Boolean value.
        #[arg(long, conflicts_with = "value", required_unless_present = "value")]
        enabled: Option<bool>,
        /// Any JSON value (string, number, object) for non-boolean flags.
        #[arg(long)]
        value: Option<String>,
        /// global, tier or tenant.
        #[arg(long, default_value = "global")]
        scope: String,
        /// The tier name or tenant id for tier and tenant scope.
        #[arg(long)]
        scope_id: Option<String>,
        /// Apply to this percentage (0..=100) of the scope's tenants, by a stable hash.
        #[arg(long)]
        rollout: Option<u8>,
        /// What the flag is for (kept with its definition).
        #[arg(long)]
        description: Option<String>,
        /// Who owns the flag.
        #[arg(long)]
        owner: Option<String>,
        /// RFC 3339 time after which the flag is reported stale.
        #[arg(long)]
        expires_at: Option<String>,
        /// Tenant scope: `true` makes the value an entitlement the tenant's admins cannot change
        /// or remove, `false` lifts that (absent: unchanged).
        #[arg(long)]
        platform_set: Option<bool>,
    },
    /// Remove a flag value at a scope.
    Unset {
        feature: String,
        #[arg(long, default_value = "global")]
        scope: String,
        #[arg(long)]
        scope_id: Option<String>,
    },
    /// Evaluate a flag (or, without a feature, every flag) for a tenant, with the deciding level.
    Eval { tenant: String, feature: Option<String> },
    /// List every flag value at every scope.
    List,
    /// Flag definitions: type, kill switch, description, owner, expiry, version.
    Defs,
    /// Kill switch off: the flag evaluates to DISABLED for every tenant (its values are kept).
    Disable {
        feature: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Kill switch on again: the flag's values apply.
    Enable {
        feature: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Flags older than --max-age-days, past their expiry, or the same for every tenant.
    Stale {
        #[arg(long, default_value_t = 90)]
        max_age_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum HealthCmd {
    /// Record signals, print the score (0-100) and class.
    Set {
        tenant: String,
        /// p95 latency in milliseconds.
        #[arg(long)]
        latency_p95: f64,
        /// Fraction 0..1.
        #[arg(long)]
        error_rate: f64,
        /// Fraction 0..1.
        #[arg(long)]
        success_rate: f64,
        /// Fraction 0..1.
        #[arg(long)]
        storage: f64,
    },
}

#[derive(Debug, Subcommand)]
pub enum TierCmd {
    /// List the tier catalog.
    List,
    /// Show one tier.
    Get { name: String },
    /// Add a tier (e.g. free, pro, enterprise).
    Create {
        name: String,
        #[arg(long)]
        rank: i32,
        #[arg(long, default_value = "")]
        description: String,
        /// shared_namespace or dedicated_index.
        #[arg(long, default_value = "shared_namespace")]
        isolation: String,
        #[arg(long)]
        retention_days: u32,
        #[command(flatten)]
        limits: TierLimitArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DoctorCmd {
    /// RLS probes (PostgreSQL): no tenant context and a wrong tenant both see zero rows.
    Rls,
}

/// The fields a configuration change sets (absent: unchanged).
#[derive(Debug, Args)]
pub struct ConfigFields {
    #[arg(long)]
    pub provider: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub top_k: Option<u32>,
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// off, lexical or model (a provider's /rerank, with --rerank-model).
    #[arg(long)]
    pub rerank: Option<String>,
    /// The reranker for `--rerank model`: provider/model.
    #[arg(long)]
    pub rerank_model: Option<String>,
    #[arg(long)]
    pub rerank_depth: Option<u32>,
    /// Default metadata filter, a JSON object.
    #[arg(long)]
    pub filter: Option<String>,
    /// The prompt template, from this file.
    #[arg(long)]
    pub template_file: Option<PathBuf>,
    #[arg(long)]
    pub max_answer_chars: Option<u32>,
    /// Remove a field from this layer (inherit it again); repeatable.
    #[arg(long)]
    pub unset: Vec<String>,
    /// Why (kept with the version).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// The tenant's resolved configuration, each field with the level that decided it.
    Show { tenant: String },
    /// Change fields of the tenant's layer (a new version).
    Set {
        tenant: String,
        #[command(flatten)]
        fields: ConfigFields,
    },
    /// Every version of the tenant's layer, with author and reason.
    History { tenant: String },
    /// What changed between two versions of the tenant's layer.
    Diff { tenant: String, from: u32, to: u32 },
    /// Make an earlier version current again (as a new version).
    Rollback {
        tenant: String,
        #[arg(value_name = "VERSION")]
        to: u32,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Render the prompt a provider would receive for a question (with sample passages).
    Preview {
        tenant: String,
        question: String,
        /// Try this template instead of the configured one.
        #[arg(long)]
        template_file: Option<PathBuf>,
    },
    /// Show or change the platform's layer (`--tier NAME`: that tier's layer).
    Defaults {
        #[arg(long)]
        tier: Option<String>,
        #[command(flatten)]
        fields: ConfigFields,
    },
    /// The configured providers and their models.
    Providers,
}

/// How the comparison is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Table,
    Csv,
    Markdown,
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CostCmd {
    /// Per tenant: the meters, variable cost, allocated fixed cost, total, budget and variance.
    Report {
        /// The month, YYYY-MM (UTC).
        #[arg(long)]
        month: String,
        /// Only this tenant's line (fixed shares are still computed over every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Price in this currency (default: the price book's usual one).
        #[arg(long)]
        currency: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
    /// The month by cost center (the CFO's chargeback report).
    Chargeback {
        #[arg(long)]
        month: String,
        #[arg(long)]
        currency: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
    /// The meters, their units and what prices are quoted per.
    Meters,
    /// The price book.
    #[command(subcommand)]
    Prices(PricesCmd),
    /// Monthly fixed costs and how each is allocated.
    #[command(subcommand)]
    Fixed(FixedCmd),
    /// Actual bills from providers.
    #[command(subcommand)]
    Bills(BillsCmd),
    /// Compare the month's allocated provider costs with the bills: exit 0 pass (≤5%), 3 warn
    /// (≤10%), 1 fail; the result is recorded.
    Reconcile {
        #[arg(long)]
        month: String,
        #[arg(long)]
        currency: Option<String>,
    },
    /// Raise budget alerts (80%, 100%) for this month, each once.
    #[command(subcommand)]
    Budgets(BudgetsCmd),
}

#[derive(Debug, Subcommand)]
pub enum PricesCmd {
    /// Every price version.
    List,
    /// Add a price version, in effect from a day on (past months keep their prices).
    Set {
        #[arg(long)]
        meter: String,
        /// For per-model meters; absent: every model without its own price.
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        provider: String,
        #[arg(long)]
        currency: String,
        /// Per the meter's price unit (`cost meters`), e.g. 0.0001 per 1K tokens.
        #[arg(long)]
        unit_price: String,
        /// YYYY-MM-DD (UTC).
        #[arg(long)]
        from: String,
    },
    /// Load a shipped price book: seed-002-usd or seed-004-inr.
    Preset {
        name: String,
        /// YYYY-MM-DD (UTC).
        #[arg(long)]
        from: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FixedCmd {
    List,
    /// Create or replace a fixed cost item.
    Set {
        name: String,
        #[arg(long)]
        provider: String,
        /// Per month (per index with --per-index).
        #[arg(long)]
        amount: String,
        #[arg(long)]
        currency: String,
        /// Charge it once per physical index (a dedicated index's share goes to its tenant).
        #[arg(long)]
        per_index: bool,
        /// proportional (default), meter:<meter>, even, weights:<tenant>=<n>,…, tenant:<tenant>.
        #[arg(long, default_value = "proportional")]
        allocation: String,
        /// First month, YYYY-MM.
        #[arg(long)]
        from: String,
        /// Last month, YYYY-MM.
        #[arg(long)]
        until: Option<String>,
    },
    Remove {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BillsCmd {
    /// Import bills from CSV with columns provider, month, currency, amount.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum BudgetsCmd {
    /// Check every tenant's spend this month against its budget.
    Check,
}

#[cfg(test)]
mod tests {
    /// clap checks names and conflicts only when a command is built: build every one.
    #[test]
    fn every_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
