//! The language-model port. Answers generate through a [`Provider`] (OpenAI-compatible chat
//! completions, the Anthropic Messages API — adapters in `tenantry-llm` — or the built-in
//! [`Extractive`] answerer); what a generation used is metered as `llm_input_tokens` and
//! `llm_output_tokens` by `provider/model`, from the token counts the provider reports.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use tenantry_domain::Invalid;
use tenantry_domain::cost::Meter;
use tenantry_domain::prompt::Prompt;
use tenantry_domain::rag::{EXTRACTIVE_MODEL, LOCAL_PROVIDER, terms_of};

use crate::metering::OperationUsage;

/// One generation's answer and what the provider counted for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub text: String,
    /// Prompt tokens, as the provider reported them (what it bills).
    pub input_tokens: u64,
    /// Completion tokens, as the provider reported them.
    pub output_tokens: u64,
}

/// A retrieved passage, for answerers that work on passages rather than a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The citation number (1-based, as in the prompt).
    pub n: usize,
    pub title: String,
    pub text: String,
}

/// What one generation is asked.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    pub model: String,
    pub prompt: Prompt,
    pub temperature: f64,
    pub max_tokens: u32,
    pub question: String,
    pub passages: Vec<Passage>,
}

/// Why a provider failed; each maps onto its own problem code.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or is overloaded (after retries): 503.
    #[error("provider {provider} is unavailable: {detail}")]
    Unavailable { provider: String, detail: String },
    /// The provider did not answer in time: 504.
    #[error("provider {provider} did not answer within {secs} s")]
    Timeout { provider: String, secs: u64 },
    /// The provider answered with an error or something unreadable: 502.
    #[error("provider {provider} failed: {detail}")]
    Failed { provider: String, detail: String },
}

/// A language-model provider, configured once by the platform.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The name configurations refer to (`openai`, `anthropic`, `local`, …).
    fn name(&self) -> &str;
    /// The models it offers.
    fn models(&self) -> Vec<String>;
    /// Generates an answer. With `stream`, text is sent there as it is produced (the returned
    /// `Generated` still carries the whole text and the usage).
    async fn generate(
        &self,
        request: &GenerationRequest,
        stream: Option<&mpsc::Sender<String>>,
    ) -> Result<Generated, ProviderError>;

    /// The reranking models it offers (a Cohere-style `/rerank` endpoint); none by default.
    fn rerank_models(&self) -> Vec<String> {
        Vec::new()
    }

    /// Scores `documents` against `query` with `model`: `(index, relevance)` for the best
    /// `top_n`, best first.
    async fn rerank(
        &self,
        model: &str,
        _query: &str,
        _documents: &[&str],
        _top_n: usize,
    ) -> Result<Vec<(usize, f32)>, ProviderError> {
        Err(ProviderError::Failed {
            provider: self.name().to_owned(),
            detail: format!("it offers no reranker {model}"),
        })
    }
}

/// The configured providers, by name. `local` (the extractive answerer) is always there.
#[derive(Clone)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
}

impl Default for Providers {
    fn default() -> Self {
        let mut by_name: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
        by_name.insert(LOCAL_PROVIDER.to_owned(), Arc::new(Extractive));
        Self { by_name }
    }
}

impl Providers {
    /// Adds `provider`; a second one with a taken name is refused.
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Result<Self, Invalid> {
        let name = provider.name().to_owned();
        if self.by_name.contains_key(&name) {
            return Err(Invalid::new(format!("provider {name:?} is configured twice")));
        }
        self.by_name.insert(name, provider);
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    /// The provider and model of a `provider/model` reranker, if a configured provider offers it.
    pub fn check_reranker(&self, label: &str) -> Result<(&Arc<dyn Provider>, String), Invalid> {
        let Some((provider, model)) = label.split_once('/') else {
            return Err(Invalid::new(format!("rerank_model {label:?} must be provider/model")));
        };
        let p = self.by_name.get(provider).ok_or_else(|| {
            Invalid::new(format!(
                "rerank_model {label}: provider {provider:?} is not configured: configured are {}",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let offered = p.rerank_models();
        if !offered.iter().any(|m| m == model) {
            return Err(Invalid::new(format!(
                "provider {provider} offers no reranker {model:?}{}",
                if offered.is_empty() { String::new() } else { format!(": it offers {}", offered.join(", ")) }
            )));
        }
        Ok((p, model.to_owned()))
    }

    /// `(provider, models)` for every provider.
    pub fn catalogue(&self) -> Vec<(String, Vec<String>)> {
        self.by_name.iter().map(|(n, p)| (n.clone(), p.models())).collect()
    }

    /// Whether `provider` is configured and offers `model`; the sentence says what is.
    pub fn check(&self, provider: &str, model: &str) -> Result<(), Invalid> {
        let Some(p) = self.by_name.get(provider) else {
            return Err(Invalid::new(format!(
                "provider {provider:?} is not configured: configured are {}",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let models = p.models();
        if !models.iter().any(|m| m == model) {
            return Err(Invalid::new(format!(
                "provider {provider} does not offer model {model:?}: it offers {}",
                models.join(", ")
            )));
        }
        Ok(())
    }
}

impl Generated {
    /// Adds this generation's tokens to an operation's usage, by `model`.
    pub fn meter(&self, usage: OperationUsage, model: &str) -> Result<OperationUsage, Invalid> {
        usage.add(Meter::LlmInputTokens, self.input_tokens, Some(model))?.add(
            Meter::LlmOutputTokens,
            self.output_tokens,
            Some(model),
        )
    }
}

/// The offline answerer: no model, no key. It quotes the sentences of the retrieved passages
/// that share the most terms with the question (at most three, best first, each cited), and
/// says that it is extractive. It reports no tokens: nothing is billed for it.
pub struct Extractive;

/// What the extractive answer starts with, so nobody mistakes it for a generated one.
pub const EXTRACTIVE_PREFIX: &str = "Extractive answer (quoted from your documents; no language model was used):";

impl Extractive {
    pub fn answer(question: &str, passages: &[Passage]) -> String {
        let terms = terms_of(question);
        let mut scored: Vec<(usize, usize, usize, &str)> = Vec::new(); // (overlap, passage order, sentence order, text)
        for (p_order, p) in passages.iter().enumerate() {
            for (s_order, sentence) in sentences(&p.text).into_iter().enumerate() {
                let have = terms_of(sentence);
                let overlap = terms.iter().filter(|t| have.contains(*t)).count();
                if overlap > 0 {
                    scored.push((overlap, p_order, s_order, sentence));
                }
            }
        }
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        if scored.is_empty() {
            return "I cannot find this in the documents (extractive answer: no retrieved passage shares a term with the question)."
                .to_owned();
        }
        let mut out = String::from(EXTRACTIVE_PREFIX);
        for (_, p_order, _, sentence) in scored.into_iter().take(3) {
            out.push_str(&format!("\n- \"{}\" [{}]", sentence.trim(), passages[p_order].n));
        }
        out
    }
}

/// Sentences of `text` (split after `.`, `!`, `?` or a newline), trimmed, non-empty.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?' | '\n') {
            let end = i + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[async_trait]
impl Provider for Extractive {
    fn name(&self) -> &str {
        LOCAL_PROVIDER
    }

    fn models(&self) -> Vec<String> {
        vec![EXTRACTIVE_MODEL.to_owned()]
    }

    async fn generate(
        &self,
        request: &GenerationRequest,
        stream: Option<&mpsc::Sender<String>>,
    ) -> Result<Generated, ProviderError> {
        let text = Extractive::answer(&request.question, &request.passages);
        if let Some(tx) = stream {
            for line in text.split_inclusive('\n') {
                let _ = tx.send(line.to_owned()).await;
            }
        }
        Ok(Generated { text, input_tokens: 0, output_tokens: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_is_metered_by_model_with_the_reported_tokens() {
        let g = Generated { text: "42".into(), input_tokens: 1_200, output_tokens: 85 };
        let tenant = tenantry_domain::TenantId::parse("acme").unwrap();
        let at = time::macros::datetime!(2026-11-05 10:00 UTC);
        let events =
            g.meter(OperationUsage::new(tenant, "op-1".into(), at), "openai/gpt-4o-mini").unwrap().into_events();
        let got: Vec<(Meter, u64, String, String)> = events
            .iter()
            .map(|e| (e.meter, e.quantity, e.model.as_ref().unwrap().to_string(), e.key.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (Meter::LlmInputTokens, 1_200, "openai/gpt-4o-mini".into(), "op-1:llm_input_tokens".into()),
                (Meter::LlmOutputTokens, 85, "openai/gpt-4o-mini".into(), "op-1:llm_output_tokens".into()),
            ]
        );
    }

    #[test]
    fn the_extractive_answer_quotes_the_best_sentences_and_says_what_it_is() {
        let passages = vec![
            Passage { n: 1, title: "Menu".into(), text: "Lunch is served at noon. The cafe closes at 3.".into() },
            Passage {
                n: 2,
                title: "Refunds".into(),
                text: "Refunds are issued within 30 days. A refund needs the receipt.".into(),
            },
        ];
        let a = Extractive::answer("How many days until refunds are issued?", &passages);
        assert!(a.starts_with(EXTRACTIVE_PREFIX), "{a}");
        let first = a.lines().nth(1).unwrap();
        assert_eq!(first, "- \"Refunds are issued within 30 days.\" [2]");
        assert!(!a.contains("Lunch"));
        let none = Extractive::answer("zebra migration", &passages);
        assert!(none.starts_with("I cannot find"), "{none}");
    }

    #[test]
    fn a_model_must_be_offered_by_a_configured_provider() {
        let p = Providers::default();
        assert!(p.check("local", "extractive").is_ok());
        assert!(p.check("local", "gpt-4o").unwrap_err().reason().contains("offers extractive"));
        assert!(p.check("openai", "gpt-4o").unwrap_err().reason().contains("not configured"));
        assert!(Providers::default().with(Arc::new(Extractive)).is_err());
    }
}
