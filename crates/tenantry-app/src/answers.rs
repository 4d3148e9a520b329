//! Answers and their configuration (the customization issue). A tenant's answer configuration is
//! versioned layers (platform, tier, tenant) resolved per field; `ask` retrieves with it through
//! the data plane (so lifecycle gates, quotas, rate limits and the budget apply as for queries),
//! reranks, renders the tenant's sandboxed template, generates through the configured provider,
//! meters the tokens to the ledger and writes one audit entry per answer.
//!
//! Configuration is read from the store on every `ask` (one indexed read of three rows on the
//! tenant's path), so a change is in effect on every replica at its next request without relying
//! on cache invalidation.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use tenantry_domain::cost::Meter;
use tenantry_domain::pricing::PriceBook;
use tenantry_domain::prompt::{Prompt, PromptChunk, PromptInputs, PromptTemplate};
use tenantry_domain::rag::{
    ConfigScope, ConfigVersion, LOCAL_PROVIDER, RagConfig, RagLayers, RagSettings, Rerank, rerank_lexical,
};
use tenantry_domain::{Invalid, Permission, QuerySpec, Tenant};

use crate::access::{PlatformScope, TenantScope};
use crate::cache::ConfigCache;
use crate::dataplane::DataPlane;
use crate::error::{AppError, StoreError};
use crate::generation::{GenerationRequest, Passage, Providers};
use crate::metering::{Metering, OperationUsage, model_label, operation_id};
use crate::operations::AuditOp;
use crate::ports::{AuditRecord, Clock, NewConfigVersion, Store};

/// Versions a write without an expected version retries when another writer took its number.
const WRITE_ATTEMPTS: usize = 5;

/// What `ask` is asked.
#[derive(Debug, Clone, Default)]
pub struct AskRequest {
    pub question: String,
    /// Overrides the configured metadata filter.
    pub filter: Option<Value>,
    /// Overrides the configured `top_k`.
    pub top_k: Option<u32>,
}

/// One cited chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Citation {
    pub n: usize,
    pub document_id: String,
    pub title: String,
    pub chunk: i32,
    /// The retrieval score (cosine similarity), and the reranker's when it ran.
    pub score: f32,
    pub rerank_score: Option<f32>,
}

/// What an answer cost by the price book: the priced part, and the meters it used that have no
/// price in that currency (their share is not in `amount`).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerCost {
    pub amount: String,
    pub currency: String,
    pub unpriced: Vec<&'static str>,
}

/// Milliseconds spent per stage.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    pub retrieve_ms: f64,
    pub rerank_ms: f64,
    pub prompt_ms: f64,
    pub generate_ms: f64,
    pub total_ms: f64,
}

/// An answer and everything about how it was made.
#[derive(Debug, Clone)]
pub struct Answer {
    pub answer: String,
    /// The answer was cut at `max_answer_chars`.
    pub truncated: bool,
    pub citations: Vec<Citation>,
    /// `provider/model`.
    pub model: String,
    pub embedding_tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `(amount, currency)` from the price book; `None` when it has no prices.
    pub cost: Option<AnswerCost>,
    pub config_version: u32,
    /// The share of the question's terms found in the passages given to the model (see
    /// `tenantry_domain::rag::coverage`).
    pub retrieval_coverage: f64,
    pub timings: Timings,
}

impl Answer {
    pub fn to_json(&self) -> Value {
        json!({
            "answer": self.answer,
            "truncated": self.truncated,
            "citations": self.citations.iter().map(|c| json!({
                "n": c.n, "document_id": c.document_id, "title": c.title, "chunk": c.chunk,
                "score": c.score, "rerank_score": c.rerank_score,
            })).collect::<Vec<_>>(),
            "model": self.model,
            "usage": {"embedding_tokens": self.embedding_tokens, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            "cost": self.cost.as_ref().map(|c| json!({"amount": c.amount, "currency": c.currency, "unpriced_meters": c.unpriced})),
            "config_version": self.config_version,
            "retrieval_coverage": self.retrieval_coverage,
            "timings_ms": {
                "retrieve": self.timings.retrieve_ms, "rerank": self.timings.rerank_ms, "prompt": self.timings.prompt_ms,
                "generate": self.timings.generate_ms, "total": self.timings.total_ms,
            },
        })
    }
}

/// The answers service. Cheap to clone.
#[derive(Clone)]
pub struct Answers {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: ConfigCache,
    data: DataPlane,
    providers: Providers,
    metering: Metering,
}

impl Answers {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cache: ConfigCache,
        data: DataPlane,
        providers: Providers,
        metering: Metering,
    ) -> Self {
        Self { store, clock, cache, data, providers, metering }
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    // ---- configuration ----------------------------------------------------------------------

    /// The tenant (from the snapshot) and its configuration layers (from the store: current on
    /// every replica at the next request).
    pub(crate) async fn layers(&self, scope: &TenantScope) -> Result<(Tenant, RagLayers), AppError> {
        let tenant = self.cache.get(scope).await?.snapshot.tenant.clone();
        let layers = self.store.config_layers(scope, &tenant.tier).await?;
        Ok((tenant, layers))
    }

    /// The tenant's resolved configuration, each field with the level that set it.
    pub async fn config(&self, scope: &TenantScope) -> Result<RagConfig, AppError> {
        scope.require(Permission::ReadTenant)?;
        Ok(self.layers(scope).await?.1.resolve())
    }

    /// The fields that differ between versions `from` and `to` of the tenant's layer (0: the
    /// empty layer before the first version): `(field, from, to)`, `null` for not set.
    pub async fn tenant_diff(
        &self,
        scope: &TenantScope,
        from: u32,
        to: u32,
    ) -> Result<Vec<(String, Value, Value)>, AppError> {
        let versions = self.tenant_versions(scope).await?;
        let find = |n: u32| {
            if n == 0 {
                return Ok(RagSettings::default());
            }
            versions.iter().find(|v| v.version == n).map(|v| v.settings.clone()).ok_or_else(|| {
                AppError::Invalid(format!(
                    "tenant {} has no configuration version {n}: it has {}",
                    scope.tenant(),
                    version_list(&versions)
                ))
            })
        };
        Ok(tenantry_domain::rag::diff(&find(from)?, &find(to)?))
    }

    /// The tenant layer's versions, oldest first.
    pub async fn tenant_versions(&self, scope: &TenantScope) -> Result<Vec<ConfigVersion>, AppError> {
        scope.require(Permission::ReadTenant)?;
        self.cache.get(scope).await?;
        Ok(self.store.tenant_config_versions(scope).await?)
    }

    /// Replaces the tenant's layer with `settings` as a new version (fields it leaves out are
    /// inherited). `expected`: the version the caller read (if the layer moved on: 412
    /// `version_conflict`).
    /// The resolved result must be usable: a model its provider offers, with prices.
    pub async fn set_tenant_config(
        &self,
        scope: &TenantScope,
        settings: RagSettings,
        expected: Option<u32>,
        reason: Option<String>,
    ) -> Result<(u32, RagConfig), AppError> {
        self.write_tenant(scope, settings, expected, reason, AuditOp::ConfigSet).await
    }

    /// Makes version `to`'s settings current again, as a new version.
    pub async fn rollback_tenant(
        &self,
        scope: &TenantScope,
        to: u32,
        reason: Option<String>,
    ) -> Result<(u32, RagConfig), AppError> {
        scope.require(Permission::ManageConfig)?;
        let versions = self.store.tenant_config_versions(scope).await?;
        let target = versions.iter().find(|v| v.version == to).ok_or_else(|| {
            AppError::Invalid(format!(
                "tenant {} has no configuration version {to}: it has {}",
                scope.tenant(),
                version_list(&versions)
            ))
        })?;
        let reason = Some(reason.unwrap_or_else(|| format!("rollback to version {to}")));
        self.write_tenant(scope, target.settings.clone(), None, reason, AuditOp::ConfigRollback).await
    }

    async fn write_tenant(
        &self,
        scope: &TenantScope,
        settings: RagSettings,
        expected: Option<u32>,
        reason: Option<String>,
        op: AuditOp,
    ) -> Result<(u32, RagConfig), AppError> {
        scope.require(Permission::ManageConfig)?;
        settings.check_ranges()?;
        check_reason(reason.as_deref())?;
        for _ in 0..WRITE_ATTEMPTS {
            let (_, mut layers) = self.layers(scope).await?;
            let current = layers.tenant_version;
            if let Some(e) = expected
                && e != current
            {
                return Err(AppError::ConfigConflict {
                    scope: format!("tenant {}", scope.tenant()),
                    expected: e,
                    current,
                });
            }
            let before = layers.tenant.to_json();
            layers.tenant = settings.clone();
            layers.tenant_version = current + 1;
            let resolved = layers.resolve();
            self.check_usable(&resolved).await?;
            let at = self.clock.now();
            let version = NewConfigVersion {
                version: current + 1,
                settings: settings.clone(),
                author: author(scope.actor()),
                reason: reason.clone(),
                at,
            };
            let audit = AuditRecord::tenant(scope, at, op)
                .change(
                    Some(json!({"version": current, "settings": before})),
                    Some(json!({"version": current + 1, "settings": settings.to_json()})),
                )
                .because(reason.clone());
            match self.store.put_tenant_config(scope, &version, &audit).await {
                Ok(v) => return Ok((v, resolved)),
                Err(StoreError::VersionConflict { .. }) if expected.is_none() => continue,
                Err(StoreError::VersionConflict { .. }) => {
                    return Err(AppError::ConfigConflict {
                        scope: format!("tenant {}", scope.tenant()),
                        expected: current,
                        current: current + 1,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::ConcurrentUpdate(scope.tenant().clone()))
    }

    /// Replaces the platform's or a tier's layer with `settings` as a new version.
    pub async fn set_default_config(
        &self,
        access: &PlatformScope,
        scope: ConfigScope,
        settings: RagSettings,
        expected: Option<u32>,
        reason: Option<String>,
    ) -> Result<u32, AppError> {
        settings.check_ranges()?;
        check_reason(reason.as_deref())?;
        let mut layers = RagLayers::default();
        match &scope {
            ConfigScope::Platform => layers.platform = settings.clone(),
            ConfigScope::Tier(name) => {
                self.store.get_tier(name).await?.ok_or_else(|| AppError::TierNotFound(name.clone()))?;
                layers.platform = self.current_default(access, &ConfigScope::Platform).await?.settings;
                layers.tier = settings.clone();
            }
            ConfigScope::Tenant(_) => {
                return Err(AppError::Invalid("a tenant's configuration is set on the tenant".to_owned()));
            }
        }
        self.check_usable(&layers.resolve()).await?;
        let current = self.current_default(access, &scope).await?;
        if let Some(e) = expected
            && e != current.version
        {
            return Err(AppError::ConfigConflict { scope: scope.label(), expected: e, current: current.version });
        }
        let at = self.clock.now();
        let version = NewConfigVersion {
            version: current.version + 1,
            settings: settings.clone(),
            author: author(access.actor()),
            reason: reason.clone(),
            at,
        };
        let audit = AuditRecord::platform(access, at, AuditOp::ConfigSet)
            .change(
                Some(
                    json!({"scope": scope.label(), "version": current.version, "settings": current.settings.to_json()}),
                ),
                Some(json!({"scope": scope.label(), "version": version.version, "settings": settings.to_json()})),
            )
            .because(reason);
        match self.store.put_default_config(access, &scope, &version, &audit).await {
            Ok(v) => {
                // tenants resolve through this layer: drop every snapshot (answers read the store)
                self.cache.invalidate(crate::cache::InvalidationTarget::All).await;
                Ok(v)
            }
            Err(StoreError::VersionConflict { .. }) => Err(AppError::ConfigConflict {
                scope: scope.label(),
                expected: current.version,
                current: current.version + 1,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The platform's or a tier's versions, oldest first.
    pub async fn default_versions(
        &self,
        access: &PlatformScope,
        scope: &ConfigScope,
    ) -> Result<Vec<ConfigVersion>, AppError> {
        Ok(self.store.default_config_versions(access, scope).await?)
    }

    async fn current_default(&self, access: &PlatformScope, scope: &ConfigScope) -> Result<ConfigVersion, AppError> {
        let versions = self.store.default_config_versions(access, scope).await?;
        Ok(versions.into_iter().last().unwrap_or(ConfigVersion {
            scope: scope.clone(),
            version: 0,
            settings: RagSettings::default(),
            author: String::new(),
            reason: None,
            created_at: self.clock.now(),
        }))
    }

    /// A configuration can answer: its provider is configured and offers its model, and (for a
    /// paid provider) the price book prices the model's input and output tokens.
    async fn check_usable(&self, config: &RagConfig) -> Result<(), AppError> {
        self.providers.check(&config.provider.value, &config.model.value)?;
        if config.rerank.value == Rerank::Model {
            if config.rerank_model.value.is_empty() {
                return Err(AppError::Invalid("rerank model needs rerank_model (provider/model)".to_owned()));
            }
            self.providers.check_reranker(&config.rerank_model.value)?;
        }
        if config.provider.value == LOCAL_PROVIDER {
            return Ok(());
        }
        let label = model_label(&config.model_label());
        if !self.price_book().await?.prices_model(&label, self.clock.now().date()) {
            return Err(AppError::Invalid(format!(
                "model {label} has no input and output token prices in the price book: add them with \
                 `tenantry cost prices set llm_input_tokens --model {label} …` (and llm_output_tokens) first"
            )));
        }
        Ok(())
    }

    /// `(documents, mean bytes, mean embedding tokens)` of the tenant's documents.
    pub(crate) async fn document_sizes(&self, scope: &TenantScope) -> Result<(i64, f64, f64), AppError> {
        let (mut n, mut bytes, mut tokens) = (0i64, 0i64, 0i64);
        let mut after = None;
        loop {
            let page = self.data.list_documents(scope, after.as_ref(), crate::registry::MAX_PAGE_SIZE).await?;
            for d in &page {
                n += 1;
                bytes += d.bytes;
                tokens += d.token_count;
            }
            match page.last() {
                Some(last) if page.len() as u32 == crate::registry::MAX_PAGE_SIZE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        let mean = |x: i64| if n == 0 { 0.0 } else { x as f64 / n as f64 };
        Ok((n, mean(bytes), mean(tokens)))
    }

    /// The tenant's vector queries over the last 30 days, from the ledger's daily rollups.
    pub(crate) async fn recent_queries(&self, scope: &TenantScope) -> Result<u64, AppError> {
        let today = self.clock.now().date();
        let from = today - time::Duration::days(30);
        let rollups = self.store.tenant_usage_rollups(scope, from, today.next_day().unwrap_or(today)).await?;
        Ok(rollups.iter().filter(|(k, _)| k.meter == Meter::VectorQueries).map(|(_, q)| *q).sum())
    }

    /// An answer with a candidate configuration (the comparison).
    pub(crate) async fn ask_candidate(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        request: AskRequest,
        config: &RagConfig,
    ) -> Result<Answer, AppError> {
        check_question(&request.question)?;
        self.ask_with(scope, tenant, request, config, None, Instant::now()).await
    }

    pub(crate) fn clock_today(&self) -> time::Date {
        self.clock.now().date()
    }

    /// The price book as it is now (one read; prices change rarely but must count at once).
    pub(crate) async fn price_book(&self) -> Result<PriceBook, AppError> {
        Ok(PriceBook::new(self.store.prices(&PlatformScope::system("answers")).await?))
    }

    /// Renders `template` (or the configured one) over `question` and a sample passage, without
    /// retrieving or generating: what the provider would receive.
    pub async fn preview(
        &self,
        scope: &TenantScope,
        template: Option<String>,
        question: &str,
    ) -> Result<Prompt, AppError> {
        scope.require(Permission::ReadTenant)?;
        check_question(question)?;
        let (tenant, layers) = self.layers(scope).await?;
        let source = template.unwrap_or(layers.resolve().template.value);
        let compiled = PromptTemplate::validate(&source)?;
        let chunks = [PromptChunk {
            document_id: "sample".into(),
            title: "Sample document".into(),
            text: "A retrieved passage appears here.".into(),
            score: 0.8,
        }];
        let date = self.clock.now().date().to_string();
        Ok(compiled.render(&PromptInputs { question, chunks: &chunks, tenant_name: &tenant.name, date: &date })?)
    }

    // ---- answers ----------------------------------------------------------------------------

    /// Answers `request` with the tenant's configuration. With `stream`, the answer's text is
    /// sent there as the provider produces it.
    pub async fn ask(
        &self,
        scope: &TenantScope,
        request: AskRequest,
        stream: Option<mpsc::Sender<String>>,
    ) -> Result<Answer, AppError> {
        let started = Instant::now();
        scope.require(Permission::QueryDocuments)?;
        check_question(&request.question)?;
        let (tenant, layers) = self.layers(scope).await?;
        self.ask_with(scope, &tenant, request, &layers.resolve(), stream, started).await
    }

    /// Answers `request` with `config` (the tenant's, or a candidate the comparison tries).
    async fn ask_with(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        request: AskRequest,
        config: &RagConfig,
        stream: Option<mpsc::Sender<String>>,
        started: Instant,
    ) -> Result<Answer, AppError> {
        self.providers.check(&config.provider.value, &config.model.value).map_err(|e| {
            AppError::Invalid(format!("the tenant's answer configuration cannot be used: {}", e.reason()))
        })?;
        let provider = self
            .providers
            .get(&config.provider.value)
            .cloned()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("a checked provider is missing")))?;
        let top_k = request.top_k.unwrap_or(config.top_k.value);
        if !(1..=tenantry_domain::rag::MAX_TOP_K).contains(&top_k) {
            return Err(AppError::Invalid(format!(
                "top_k must be between 1 and {}; got {top_k}",
                tenantry_domain::rag::MAX_TOP_K
            )));
        }
        let filter = request.filter.clone().unwrap_or_else(|| Value::Object(config.filter.value.clone()));
        let spec = QuerySpec::new(
            Some(request.question.clone()),
            None,
            Some(config.retrieve_depth(top_k)),
            &filter,
            self.data.embedder().dimensions(),
        )
        .map_err(|e| AppError::Invalid(e.to_string()))?;

        let t = Instant::now();
        // the query's usage is gathered to commit with the answer's audit entry, in one commit;
        // the price book is read meanwhile
        let ((retrieved, gathered), book) =
            tokio::join!(crate::metering::collect(self.data.query(scope, spec)), self.price_book());
        let retrieve_ms = ms(t);
        let query_usage = gathered.events;
        let retrieved = match retrieved {
            Ok(r) => r,
            Err(e) => {
                self.metering.meter(query_usage).await?;
                return Err(e);
            }
        };
        let book = book.ok();
        let in_request = crate::metering::collecting();
        let outcome = async {
            let t = Instant::now();
            let chosen: Vec<(usize, Option<f32>)> = match config.rerank.value {
                Rerank::Off => (0..retrieved.hits.len().min(top_k as usize)).map(|i| (i, None)).collect(),
                Rerank::Lexical => {
                    let candidates: Vec<(&str, f32)> =
                        retrieved.hits.iter().map(|h| (h.text.as_str(), h.score)).collect();
                    rerank_lexical(&request.question, &candidates, top_k as usize)
                        .into_iter()
                        .map(|(i, s)| (i, Some(s)))
                        .collect()
                }
                Rerank::Model => {
                    let (reranker, model) = self.providers.check_reranker(&config.rerank_model.value).map_err(|e| {
                        AppError::Invalid(format!("the tenant's answer configuration cannot be used: {}", e.reason()))
                    })?;
                    let texts: Vec<&str> = retrieved.hits.iter().map(|h| h.text.as_str()).collect();
                    if texts.is_empty() {
                        Vec::new()
                    } else {
                        let ranked = reranker
                            .rerank(&model, &request.question, &texts, top_k as usize)
                            .await
                            .map_err(AppError::Provider)?;
                        let mut seen = std::collections::BTreeSet::new();
                        ranked
                            .into_iter()
                            .filter(|(i, _)| *i < texts.len() && seen.insert(*i))
                            .take(top_k as usize)
                            .map(|(i, s)| (i, Some(s)))
                            .collect()
                    }
                }
            };
            let rerank_ms = ms(t);

            let t = Instant::now();
            let hits: Vec<_> = chosen.iter().map(|(i, s)| (&retrieved.hits[*i], *s)).collect();
            let chunks: Vec<PromptChunk> = hits
                .iter()
                .map(|(h, _)| PromptChunk {
                    document_id: h.document_id.as_str().to_owned(),
                    title: h.title.clone(),
                    text: h.text.clone(),
                    score: h.score,
                })
                .collect();
            let date = self.clock.now().date().to_string();
            let prompt = PromptTemplate::compile(&config.template.value)
                .and_then(|t| {
                    t.render(&PromptInputs {
                        question: &request.question,
                        chunks: &chunks,
                        tenant_name: &tenant.name,
                        date: &date,
                    })
                })
                .map_err(|e: Invalid| {
                    AppError::Invalid(format!("the tenant's prompt template cannot be rendered: {}", e.reason()))
                })?;
            let prompt_ms = ms(t);

            let generation = GenerationRequest {
                model: config.model.value.clone(),
                prompt,
                temperature: config.temperature.value,
                max_tokens: config.max_tokens.value,
                question: request.question.clone(),
                passages: hits
                    .iter()
                    .enumerate()
                    .map(|(i, (h, _))| Passage { n: i + 1, title: h.title.clone(), text: h.text.clone() })
                    .collect(),
            };
            let t = Instant::now();
            let generated = provider.generate(&generation, stream.as_ref()).await.map_err(AppError::Provider)?;
            let generate_ms = ms(t);

            let label = config.model_label();
            // the generation's tokens, and an HTTP request's API call (the shell then bills none)
            let usage = OperationUsage::new(tenant.id.clone(), operation_id()?, self.clock.now()).add(
                Meter::ApiCalls,
                u64::from(in_request),
                None,
            )?;
            let generation_usage = generated.meter(usage, &label)?.into_events();

            let (answer, truncated) = cut(&generated.text, config.max_answer_chars.value as usize);
            let texts: Vec<&str> = hits.iter().map(|(h, _)| h.text.as_str()).collect();
            let retrieval_coverage = tenantry_domain::rag::coverage(&request.question, &texts);
            let citations: Vec<Citation> = hits
                .iter()
                .enumerate()
                .map(|(i, (h, rerank))| Citation {
                    n: i + 1,
                    document_id: h.document_id.as_str().to_owned(),
                    title: h.title.clone(),
                    chunk: h.chunk_index,
                    score: h.score,
                    rerank_score: *rerank,
                })
                .collect();
            let cost = self.cost(book.as_ref(), &label, u64::from(retrieved.tokens), &retrieved.model, &generated);
            let answer = Answer {
                answer,
                truncated,
                citations,
                model: label,
                embedding_tokens: u64::from(retrieved.tokens),
                input_tokens: generated.input_tokens,
                output_tokens: generated.output_tokens,
                cost,
                config_version: config.version,
                retrieval_coverage,
                timings: Timings { retrieve_ms, rerank_ms, prompt_ms, generate_ms, total_ms: ms(started) },
            };
            let audit = AuditRecord::tenant(scope, self.clock.now(), AuditOp::AnswerAsk)
                .change(None, Some(audit_detail(&answer, &request.question, config)));
            Ok::<_, AppError>((answer, generation_usage, audit))
        }
        .await;
        let (answer, generation_usage, audit) = match outcome {
            Ok(done) => done,
            Err(e) => {
                // the retrieval was done and is billed even though the answer failed
                self.metering.meter(query_usage).await?;
                return Err(e);
            }
        };
        let mut events = query_usage;
        events.extend(generation_usage);
        self.store.record_usage_with_audit(scope, &events, &audit).await?;
        if in_request {
            crate::metering::note_call_billed();
        }
        Ok(answer)
    }

    /// The answer's cost from the price book: the query's embedding tokens and vector search,
    /// and the generation's tokens, with the meters it used that have no price. `None` without
    /// prices.
    fn cost(
        &self,
        book: Option<&PriceBook>,
        label: &str,
        embedding_tokens: u64,
        embedding_model: &str,
        generated: &crate::generation::Generated,
    ) -> Option<AnswerCost> {
        let book = book?;
        let currency = book.usual_currency()?.clone();
        let now = self.clock.now();
        let month = tenantry_domain::pricing::Month::of(now.date());
        let (llm, emb) = (model_label(label), model_label(embedding_model));
        let mut total = rust_decimal::Decimal::ZERO;
        let mut unpriced = Vec::new();
        for (meter, model, quantity) in [
            (Meter::EmbeddingTokens, Some(&emb), embedding_tokens),
            (Meter::VectorQueries, None, 1),
            (Meter::LlmInputTokens, Some(&llm), generated.input_tokens),
            (Meter::LlmOutputTokens, Some(&llm), generated.output_tokens),
        ] {
            if quantity == 0 {
                continue;
            }
            match book.price_for(meter, model, now.date(), &currency) {
                Some(p) => total += p.amount(quantity, month)?,
                None => unpriced.push(meter.as_str()),
            }
        }
        Some(AnswerCost {
            amount: total.round_dp(6).normalize().to_string(),
            currency: currency.as_str().to_owned(),
            unpriced,
        })
    }
}

/// What the audit log records of an answer: the question as a digest and a length (never its
/// text), the cited documents, model, usage and the configuration that answered.
fn audit_detail(answer: &Answer, question: &str, config: &RagConfig) -> Value {
    json!({
        "question_sha256": hex(&Sha256::digest(question.as_bytes())),
        "question_chars": question.chars().count(),
        "documents": answer.citations.iter().map(|c| c.document_id.as_str()).collect::<Vec<_>>(),
        "model": answer.model,
        "usage": {
            "embedding_tokens": answer.embedding_tokens,
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
        },
        "config_version": answer.config_version,
        "levels": {"model": config.model.level.as_str(), "template": config.template.level.as_str()},
    })
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn author(actor: &tenantry_domain::Actor) -> String {
    format!("{}:{}", actor.kind.as_str(), actor.id)
}

fn version_list(versions: &[ConfigVersion]) -> String {
    match (versions.first(), versions.last()) {
        (Some(a), Some(b)) => format!("versions {}-{}", a.version, b.version),
        _ => "no versions".to_owned(),
    }
}

fn check_question(question: &str) -> Result<(), AppError> {
    if question.trim().is_empty() {
        return Err(AppError::Invalid("the question must not be empty".to_owned()));
    }
    if question.len() > 8192 {
        return Err(AppError::Invalid(format!("the question is {} bytes; at most 8192 are allowed", question.len())));
    }
    Ok(())
}

fn check_reason(reason: Option<&str>) -> Result<(), AppError> {
    match reason {
        Some(r) if r.len() > 500 => Err(AppError::Invalid("the reason is longer than 500 bytes".to_owned())),
        _ => Ok(()),
    }
}

/// `text` cut at `max` characters (on a character boundary), and whether it was cut.
fn cut(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((i, _)) => (text[..i].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

/// A version as JSON.
pub fn version_json(v: &ConfigVersion) -> Value {
    json!({
        "scope": v.scope.label(),
        "version": v.version,
        "settings": v.settings.to_json(),
        "author": v.author,
        "reason": v.reason,
        "created_at": tenantry_domain::tenant::format_time(v.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_on_character_boundaries() {
        assert_eq!(cut("héllo", 2), ("hé".to_owned(), true));
        assert_eq!(cut("hi", 5), ("hi".to_owned(), false));
    }
}
