//! The configuration comparison (seed 003's tenant D/E/F table): for one tenant, its documents'
//! count and size, and for its current configuration and a grid of candidates (every model the
//! price book prices and a configured provider offers, plus the extractive answerer; top_k 3, 5
//! and 10; rerank off and lexical) the measured p50 latency, tokens and cost per query and the
//! retrieval-quality proxy, over real answers to the given questions; the recommendation is the
//! cheapest candidate within a quality tolerance of the best, with its projected monthly cost.
//!
//! Every trial is a real, metered and audited answer: a comparison against paid providers costs
//! what its answers cost.

use rust_decimal::Decimal;

use tenantry_domain::rag::{EXTRACTIVE_MODEL, LOCAL_PROVIDER, RagConfig, Rerank, Trial, recommend};
use tenantry_domain::{Permission, TenantId};

use crate::access::TenantScope;
use crate::answers::{Answers, AskRequest};
use crate::error::AppError;

pub const TOP_KS: [u32; 3] = [3, 5, 10];
pub const RERANKS: [Rerank; 2] = [Rerank::Off, Rerank::Lexical];

/// One tenant's comparison.
#[derive(Debug, Clone)]
pub struct TenantComparison {
    pub tenant: TenantId,
    pub name: String,
    pub documents: i64,
    pub avg_bytes: f64,
    /// Embedding tokens per document (the embedder's count).
    pub avg_tokens: f64,
    pub monthly_queries: u64,
    /// Where `monthly_queries` came from.
    pub volume_source: String,
    pub trials: Vec<Trial>,
    pub current: usize,
    pub recommended: Option<usize>,
}

impl TenantComparison {
    /// The recommended trial's cost per query × the monthly volume.
    pub fn projected_monthly(&self, trial: usize) -> Option<Decimal> {
        self.trials[trial].cost_per_query.map(|c| (c * Decimal::from(self.monthly_queries)).round_dp(2))
    }
}

impl Answers {
    /// `(provider, model)` pairs the comparison tries: the extractive answerer, and every model
    /// priced for input and output tokens that a configured provider offers.
    pub async fn candidate_models(&self) -> Result<Vec<(String, String)>, AppError> {
        let mut out = vec![(LOCAL_PROVIDER.to_owned(), EXTRACTIVE_MODEL.to_owned())];
        let (book, day) = (self.price_book().await?, self.clock_today());
        for (provider, models) in self.providers().catalogue() {
            for model in models {
                let label = crate::metering::model_label(&format!("{provider}/{model}"));
                if book.prices_model(&label, day) && !out.contains(&(provider.clone(), model.clone())) {
                    out.push((provider.clone(), model));
                }
            }
        }
        Ok(out)
    }

    /// Compares the tenant's configuration with the candidate grid over `questions` (each asked
    /// `repeats` times per configuration). `monthly_queries`: the volume to project with; `None`:
    /// the tenant's vector queries over the last 30 days, from the ledger.
    pub async fn compare(
        &self,
        scope: &TenantScope,
        questions: &[String],
        repeats: u32,
        tolerance: f64,
        monthly_queries: Option<u64>,
    ) -> Result<TenantComparison, AppError> {
        scope.require(Permission::QueryDocuments)?;
        if questions.is_empty() || repeats == 0 {
            return Err(AppError::Invalid("give at least one question and one repeat".to_owned()));
        }
        let (tenant, layers) = self.layers(scope).await?;
        let (documents, avg_bytes, avg_tokens) = self.document_sizes(scope).await?;
        let (monthly_queries, volume_source) = match monthly_queries {
            Some(n) => (n, "given".to_owned()),
            None => (self.recent_queries(scope).await?, "vector queries in the last 30 days (ledger)".to_owned()),
        };
        let current = layers.resolve();
        let mut configs: Vec<(RagConfig, bool)> = vec![(current.clone(), true)];
        for (provider, model) in self.candidate_models().await? {
            for top_k in TOP_KS {
                for rerank in RERANKS {
                    let mut c = current.clone();
                    c.provider.value = provider.clone();
                    c.model.value = model.clone();
                    c.top_k.value = top_k;
                    c.rerank.value = rerank;
                    if rerank != Rerank::Off && c.rerank_depth.value < top_k {
                        c.rerank_depth.value = top_k;
                    }
                    let same_as_current = c.provider.value == current.provider.value
                        && c.model.value == current.model.value
                        && c.top_k.value == current.top_k.value
                        && c.rerank.value == current.rerank.value;
                    if !same_as_current {
                        configs.push((c, false));
                    }
                }
            }
        }
        let mut trials = Vec::with_capacity(configs.len());
        for (config, is_current) in configs {
            trials.push(self.trial(scope, &tenant, &config, is_current, questions, repeats).await?);
        }
        let recommended = recommend(&trials, tolerance);
        Ok(TenantComparison {
            tenant: tenant.id,
            name: tenant.name,
            documents,
            avg_bytes,
            avg_tokens,
            monthly_queries,
            volume_source,
            trials,
            current: 0,
            recommended,
        })
    }

    async fn trial(
        &self,
        scope: &TenantScope,
        tenant: &tenantry_domain::Tenant,
        config: &RagConfig,
        current: bool,
        questions: &[String],
        repeats: u32,
    ) -> Result<Trial, AppError> {
        let mut latencies = Vec::new();
        let (mut input, mut output, mut embedding, mut quality) = (0u64, 0u64, 0u64, 0f64);
        let mut cost = Some(Decimal::ZERO);
        for question in questions {
            for _ in 0..repeats {
                let request = AskRequest { question: question.clone(), ..Default::default() };
                let answer = loop {
                    match self.ask_candidate(scope, tenant, request.clone(), config).await {
                        Err(AppError::RateLimited { retry_after_secs, .. }) => {
                            tokio::time::sleep(std::time::Duration::from_secs(retry_after_secs.clamp(1, 60))).await;
                        }
                        other => break other?,
                    }
                };
                latencies.push(answer.timings.total_ms);
                input += answer.input_tokens;
                output += answer.output_tokens;
                embedding += answer.embedding_tokens;
                quality += answer.retrieval_coverage;
                cost = match (cost, &answer.cost) {
                    (Some(sum), Some(c)) => c.amount.parse::<Decimal>().ok().map(|a| sum + a),
                    _ => None,
                };
            }
        }
        let n = latencies.len() as f64;
        latencies.sort_by(f64::total_cmp);
        let p50 = latencies[(latencies.len() - 1) / 2];
        let runs = Decimal::from(latencies.len() as u64);
        Ok(Trial {
            provider: config.provider.value.clone(),
            model: config.model.value.clone(),
            top_k: config.top_k.value,
            rerank: config.rerank.value,
            current,
            p50_ms: p50,
            input_tokens: input as f64 / n,
            output_tokens: output as f64 / n,
            embedding_tokens: embedding as f64 / n,
            cost_per_query: cost.map(|c| (c / runs).round_dp(6).normalize()),
            quality: quality / n,
        })
    }
}
