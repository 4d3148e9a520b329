//! The answers contract: configuration layers resolve per field with the deciding level, every
//! change is a version with author and reason, rollback and optimistic concurrency work, a bad
//! configuration is refused whole; `ask` retrieves only the asking tenant's documents with its
//! configuration, meters the provider's reported tokens by model, is audited, and is refused for
//! an inactive tenant.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::mpsc;

use tenantry_app::ports::Store;
use tenantry_app::{
    AskRequest, ErrorCode, Generated, GenerationRequest, Provider, ProviderError, Providers, TenantScope,
};
use tenantry_domain::cost::Meter;
use tenantry_domain::pricing::Price;
use tenantry_domain::rag::{ConfigLevel, ConfigScope, RagSettings, Rerank};
use tenantry_domain::{Currency, Label, NewDocument, NewTenant, TenantStatus};

use crate::{Wiring, build_app, tid, tier};

/// A provider that answers with the prompt it got and counts tokens as words.
struct Recorder {
    prompts: std::sync::Mutex<Vec<String>>,
    calls: AtomicU64,
}

#[async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn models(&self) -> Vec<String> {
        vec!["echo-1".into(), "unpriced-1".into(), "broken-1".into()]
    }
    async fn generate(
        &self,
        r: &GenerationRequest,
        stream: Option<&mpsc::Sender<String>>,
    ) -> Result<Generated, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if r.model == "broken-1" {
            return Err(ProviderError::Failed { provider: "recorder".into(), detail: "broken".into() });
        }
        self.prompts.lock().unwrap().push(r.prompt.user.clone());
        let text = format!("Answer from {} passages", r.passages.len());
        if let Some(tx) = stream {
            let _ = tx.send(text.clone()).await;
        }
        let words = (r.prompt.system.split_whitespace().count() + r.prompt.user.split_whitespace().count()) as u64;
        Ok(Generated { text, input_tokens: words, output_tokens: 4 })
    }
}

struct World {
    app: tenantry_app::App,
    admin: tenantry_app::PlatformScope,
    recorder: Arc<Recorder>,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        let recorder = Arc::new(Recorder { prompts: Default::default(), calls: AtomicU64::new(0) });
        let providers = Providers::default().with(recorder.clone()).unwrap();
        let clock = Arc::new(crate::ManualClock::new());
        let app = build_app(store, clock, Wiring { providers, ..Wiring::local() }).await;
        let admin = app.operator("contract");
        Self { app, admin, recorder }
    }

    fn scope(&self, t: &str) -> TenantScope {
        self.admin.act_in(tid(t))
    }

    async fn tenant(&self, id: &str, tier_name: &str) {
        self.app
            .registry
            .create_tenant(&self.admin, NewTenant::minimal(tid(id), format!("Tenant {id}"), tier(tier_name)))
            .await
            .unwrap();
    }

    async fn ingest(&self, t: &str, title: &str, text: &str) {
        let doc = NewDocument::new(title, text.to_owned(), &json!({"owner": t}), None).unwrap();
        self.app.data.ingest(&self.scope(t), vec![doc]).await.unwrap();
    }

    async fn price_recorder(&self) {
        for (meter, model) in [Meter::LlmInputTokens, Meter::LlmOutputTokens]
            .into_iter()
            .flat_map(|m| [(m, "recorder/echo-1"), (m, "recorder/broken-1")])
        {
            let price = Price::new(
                meter,
                Some(Label::parse(model).unwrap()),
                Label::parse("recorder").unwrap(),
                Currency::parse("USD").unwrap(),
                "2".parse().unwrap(),
                time::macros::date!(2020 - 01 - 01),
            )
            .unwrap();
            self.app.costs.set_price(&self.admin, price).await.unwrap();
        }
    }
}

fn layer(v: serde_json::Value) -> RagSettings {
    RagSettings::from_json(&v).unwrap()
}

pub async fn configuration_resolves_per_level_is_versioned_and_rolls_back(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.tenant("cfg-co", "gold").await;
    let scope = w.scope("cfg-co");
    let answers = &w.app.answers;
    answers
        .set_default_config(&w.admin, ConfigScope::Platform, layer(json!({"max_tokens": 300})), None, None)
        .await
        .unwrap();
    answers
        .set_default_config(&w.admin, ConfigScope::Tier(tier("gold")), layer(json!({"rerank": "lexical"})), None, None)
        .await
        .unwrap();
    let (v1, _) = answers
        .set_tenant_config(&scope, layer(json!({"top_k": 3})), Some(0), Some("fewer chunks".into()))
        .await
        .unwrap();
    assert_eq!(v1, 1);
    let c = answers.config(&scope).await.unwrap();
    assert_eq!((c.top_k.value, c.top_k.level), (3, ConfigLevel::Tenant));
    assert_eq!((c.rerank.value, c.rerank.level), (Rerank::Lexical, ConfigLevel::Tier));
    assert_eq!((c.max_tokens.value, c.max_tokens.level), (300, ConfigLevel::Platform));
    assert_eq!(c.model.level, ConfigLevel::Default);
    assert_eq!(c.version, 1);

    // a stale expected version is refused, and nothing is written
    let stale = answers.set_tenant_config(&scope, layer(json!({"top_k": 9})), Some(0), None).await.unwrap_err();
    assert_eq!(stale.code(), ErrorCode::VersionConflict, "{stale}");
    // a model the provider does not offer, and a model without prices, are refused whole
    let unknown = answers
        .set_tenant_config(&scope, layer(json!({"provider": "recorder", "model": "gpt-9"})), None, None)
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("does not offer model"), "{unknown}");
    let unpriced = answers
        .set_tenant_config(&scope, layer(json!({"provider": "recorder", "model": "unpriced-1"})), None, None)
        .await
        .unwrap_err();
    assert!(unpriced.to_string().contains("no input and output token prices"), "{unpriced}");
    assert_eq!(answers.tenant_versions(&scope).await.unwrap().len(), 1, "refusals wrote nothing");

    w.price_recorder().await;
    let (v2, c2) = answers
        .set_tenant_config(&scope, layer(json!({"provider": "recorder", "model": "echo-1", "top_k": 2})), None, None)
        .await
        .unwrap();
    assert_eq!((v2, c2.model_label()), (2, "recorder/echo-1".to_owned()));
    let (v3, c3) = answers.rollback_tenant(&scope, 1, None).await.unwrap();
    assert_eq!((v3, c3.top_k.value, c3.model.level), (3, 3, ConfigLevel::Default));
    let history = answers.tenant_versions(&scope).await.unwrap();
    assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(history[0].reason.as_deref(), Some("fewer chunks"));
    assert_eq!(history[2].reason.as_deref(), Some("rollback to version 1"));
    assert_eq!(history[0].author, "operator:contract");
    let audited: Vec<String> =
        w.app.registry.tenant_audit(&scope, 100).await.unwrap().into_iter().map(|e| e.entry.record.operation).collect();
    assert_eq!(audited.iter().filter(|o| o.starts_with("config.")).count(), 3, "{audited:?}");
    let platform = answers.default_versions(&w.admin, &ConfigScope::Platform).await.unwrap();
    assert_eq!(platform.len(), 1);
}

pub async fn a_tenant_sees_only_its_own_configuration(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.tenant("cfg-a", "gold").await;
    w.tenant("cfg-b", "gold").await;
    w.app.answers.set_tenant_config(&w.scope("cfg-a"), layer(json!({"top_k": 7})), None, None).await.unwrap();
    let b = w.scope("cfg-b");
    assert!(store.tenant_config_versions(&b).await.unwrap().is_empty());
    let layers = store.config_layers(&b, &tier("gold")).await.unwrap();
    assert_eq!((layers.tenant.top_k, layers.tenant_version), (None, 0));
    assert_eq!(w.app.answers.config(&b).await.unwrap().top_k.value, 5);
}

pub async fn ask_answers_from_the_tenants_own_documents_meters_and_audits(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.tenant("ask-a", "gold").await;
    w.tenant("ask-b", "gold").await;
    w.ingest("ask-a", "Refunds", "Refunds are issued within 30 days of purchase. Keep the receipt.").await;
    w.ingest("ask-b", "Refunds at B", "Refunds at B take 90 days and need a manager signature.").await;
    let a = w.scope("ask-a");

    // the offline default: extractive, from A's documents only
    let answer = w
        .app
        .answers
        .ask(&a, AskRequest { question: "How many days until refunds are issued?".into(), ..Default::default() }, None)
        .await
        .unwrap();
    assert!(answer.answer.contains("30 days"), "{}", answer.answer);
    assert!(!answer.answer.contains("90 days"), "another tenant's text: {}", answer.answer);
    assert!(answer.answer.starts_with("Extractive answer"), "{}", answer.answer);
    assert_eq!(answer.model, "local/extractive");
    assert!(!answer.citations.is_empty() && answer.citations.iter().all(|c| c.title == "Refunds"));
    assert_eq!((answer.input_tokens, answer.output_tokens), (0, 0));

    // a provider: the prompt holds A's passages only, tokens are metered by model, the cost priced
    w.price_recorder().await;
    w.app
        .answers
        .set_tenant_config(&a, layer(json!({"provider": "recorder", "model": "echo-1", "top_k": 2})), None, None)
        .await
        .unwrap();
    let answer = w
        .app
        .answers
        .ask(&a, AskRequest { question: "refund receipt".into(), ..Default::default() }, None)
        .await
        .unwrap();
    assert_eq!(answer.model, "recorder/echo-1");
    assert_eq!(answer.config_version, 1);
    assert!(answer.input_tokens > 0 && answer.output_tokens == 4);
    let prompt = w.recorder.prompts.lock().unwrap().last().cloned().unwrap();
    assert!(prompt.contains("30 days") && !prompt.contains("90 days"), "{prompt}");
    let cost = answer.cost.clone().unwrap();
    let (amount, currency) = (cost.amount, cost.currency);
    assert_eq!(cost.unpriced, vec!["embedding_tokens", "vector_queries"], "only the model is priced");
    assert_eq!(currency, "USD");
    let expected = rust_decimal::Decimal::from(answer.input_tokens + answer.output_tokens)
        * rust_decimal::Decimal::from(2)
        / rust_decimal::Decimal::from(1_000);
    assert_eq!(amount.parse::<rust_decimal::Decimal>().unwrap(), expected.normalize());
    let usage = store
        .tenant_usage_rollups(&a, time::macros::date!(2000 - 01 - 01), time::macros::date!(2100 - 01 - 01))
        .await
        .unwrap();
    let llm_in: u64 = usage
        .iter()
        .filter(|(k, _)| {
            k.meter == Meter::LlmInputTokens && k.model.as_ref().map(|m| m.as_str()) == Some("recorder/echo-1")
        })
        .map(|(_, q)| *q)
        .sum();
    assert_eq!(llm_in, answer.input_tokens);
    let audited: Vec<_> = w.app.registry.tenant_audit(&a, 100).await.unwrap();
    let asks: Vec<_> = audited.iter().filter(|e| e.entry.record.operation == "answer.ask").collect();
    assert_eq!(asks.len(), 2);
    let after = asks[0].entry.record.after.clone().unwrap();
    assert!(after["question_sha256"].as_str().is_some_and(|h| h.len() == 64));
    assert!(!after.to_string().contains("refund receipt"), "the question is recorded as a digest");

    // a suspended tenant cannot ask, and the provider is not called
    let calls = w.recorder.calls.load(Ordering::SeqCst);
    w.app.registry.transition(&a, TenantStatus::Suspended, "test", None, None).await.unwrap();
    let refused =
        w.app.answers.ask(&a, AskRequest { question: "refund?".into(), ..Default::default() }, None).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::TenantInactive);
    assert_eq!(w.recorder.calls.load(Ordering::SeqCst), calls);
}

/// Usage of `tenant` by meter, from the rollups.
async fn usage(store: &Arc<dyn Store>, scope: &TenantScope) -> std::collections::BTreeMap<&'static str, u64> {
    let rollups = store
        .tenant_usage_rollups(scope, time::macros::date!(2000 - 01 - 01), time::macros::date!(2100 - 01 - 01))
        .await
        .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for (k, q) in rollups {
        *out.entry(k.meter.as_str()).or_insert(0) += q;
    }
    out
}

/// As the HTTP shell runs an answer (inside `metering::collect`): the answer bills its own API
/// call, the query and the tokens in the commit of its audit entry, and leaves nothing for the
/// shell; an answer whose provider fails still bills the retrieval it did.
pub async fn an_answer_bills_its_call_query_and_tokens_once(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.tenant("bill-co", "gold").await;
    w.ingest("bill-co", "Refunds", "Refunds are issued within 30 days.").await;
    w.price_recorder().await;
    let scope = w.scope("bill-co");
    w.app
        .answers
        .set_tenant_config(&scope, layer(json!({"provider": "recorder", "model": "echo-1"})), None, None)
        .await
        .unwrap();
    let before = usage(&store, &scope).await;
    let request = AskRequest { question: "refunds?".into(), ..Default::default() };
    let (answer, collected) = tenantry_app::metering::collect(w.app.answers.ask(&scope, request, None)).await;
    let answer = answer.unwrap();
    assert!(collected.events.is_empty() && collected.call_billed, "nothing left for the shell: {collected:?}");
    let after = usage(&store, &scope).await;
    let delta = |m: &str| after.get(m).copied().unwrap_or(0) - before.get(m).copied().unwrap_or(0);
    assert_eq!((delta("api_calls"), delta("vector_queries")), (1, 1));
    assert_eq!((delta("llm_input_tokens"), delta("llm_output_tokens")), (answer.input_tokens, 4));

    w.app
        .answers
        .set_tenant_config(&scope, layer(json!({"provider": "recorder", "model": "broken-1"})), None, None)
        .await
        .unwrap();
    let before = usage(&store, &scope).await;
    let request = AskRequest { question: "refunds?".into(), ..Default::default() };
    let (failed, collected) = tenantry_app::metering::collect(w.app.answers.ask(&scope, request, None)).await;
    assert_eq!(failed.unwrap_err().code(), ErrorCode::ProviderFailed);
    assert!(!collected.call_billed, "the shell bills a failed request's call as it does any other");
    assert_eq!(
        collected.events.iter().filter(|e| e.meter == Meter::VectorQueries).count(),
        1,
        "the retrieval is billed"
    );
    assert_eq!(usage(&store, &scope).await, before, "nothing of the failed answer was recorded by the answer itself");

    // the one-commit write refuses usage or an audit entry of another tenant, and writes nothing
    w.tenant("bill-other", "gold").await;
    let other = w.scope("bill-other");
    let at = time::OffsetDateTime::now_utc();
    let theirs =
        tenantry_domain::cost::UsageEvent::new(tid("bill-other"), Meter::ApiCalls, 1, None, at, "forged").unwrap();
    let mine = tenantry_app::AuditRecord::tenant(&scope, at, tenantry_app::AuditOp::AnswerAsk);
    let foreign_audit = tenantry_app::AuditRecord::tenant(&other, at, tenantry_app::AuditOp::AnswerAsk);
    let (before_mine, before_theirs) = (usage(&store, &scope).await, usage(&store, &other).await);
    assert!(store.record_usage_with_audit(&scope, std::slice::from_ref(&theirs), &mine).await.is_err());
    assert!(store.record_usage_with_audit(&scope, &[], &foreign_audit).await.is_err());
    assert_eq!((usage(&store, &scope).await, usage(&store, &other).await), (before_mine, before_theirs));
}

#[macro_export]
macro_rules! answers_suite {
    ($make:expr) => {
        $crate::answers_suite!(@cases $make;
            configuration_resolves_per_level_is_versioned_and_rolls_back,
            a_tenant_sees_only_its_own_configuration,
            ask_answers_from_the_tenants_own_documents_meters_and_audits,
            an_answer_bills_its_call_query_and_tokens_once,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make else { return };
                $crate::answers::$case(store).await;
            }
        )*
    };
}
