//! The language-model port. Answers (`ask`, the customization issue) generate through it; what a
//! generation used is metered as `llm_input_tokens` and `llm_output_tokens` by model, from the
//! token counts the provider reports. No adapter is built yet: the port fixes what an adapter
//! must report so that the ledger's meters, prices and reports already cover it.

use async_trait::async_trait;

use tenantry_domain::Invalid;
use tenantry_domain::cost::Meter;

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

/// A language model behind a provider (OpenAI-compatible, Anthropic, …).
#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// `provider/model`, as the price book names it.
    fn model(&self) -> &str;
    async fn generate(&self, prompt: &str, max_tokens: u32) -> Result<Generated, anyhow::Error>;
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
}
