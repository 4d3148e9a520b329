//! An `Embedder` for any OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure-style gateways,
//! vLLM, Ollama's OpenAI API, …): texts are sent in batches; each request has a timeout; failures
//! that can pass (connection errors, timeouts, 429, 5xx) are retried with exponential backoff,
//! honouring `Retry-After`; other 4xx fail at once with the provider's message. Token counts per
//! text come from tiktoken (the model's encoding, `cl100k_base` for unknown models), so cost can
//! be attributed per document even when the provider only reports a batch total.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use serde::Deserialize;

use tenantry_app::{Embedded, Embedder};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// e.g. `https://api.openai.com/v1`; `/embeddings` is appended.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// The model's output size; every returned vector is checked against it.
    pub dimensions: usize,
    /// Texts per request.
    pub batch_size: usize,
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubled on every retry (capped at 30 s).
    pub backoff: Duration,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "text-embedding-3-small".to_owned(),
            api_key: None,
            dimensions: 1536,
            batch_size: 64,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    url: String,
    client: reqwest::Client,
    bpe: &'static tiktoken_rs::CoreBPE,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    index: usize,
}

/// Why one attempt failed, and whether another may succeed.
enum Attempt {
    Retry(anyhow::Error, Option<Duration>),
    Fail(anyhow::Error),
}

impl OpenAiEmbedder {
    pub fn new(config: OpenAiConfig) -> Result<Self, String> {
        if config.batch_size == 0 || config.batch_size > 2048 {
            return Err("the embedding batch size must be between 1 and 2048".to_owned());
        }
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(format!("embedding URL {:?} must start with http:// or https://", config.base_url));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("build the HTTP client: {e}"))?;
        let bpe = tiktoken_rs::bpe_for_model(&config.model).unwrap_or_else(|_| tiktoken_rs::cl100k_base_singleton());
        let url = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        Ok(Self { config, url, client, bpe })
    }

    /// Tokens of `text` in the model's encoding.
    pub fn count_tokens(&self, text: &str) -> u32 {
        self.bpe.encode_ordinary(text).len() as u32
    }

    async fn attempt(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Attempt> {
        let body = serde_json::json!({"model": self.config.model, "input": texts, "encoding_format": "float"});
        let mut request = self.client.post(&self.url).header("content-type", "application/json").body(body.to_string());
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(Attempt::Retry(anyhow!(e).context("embedding request failed"), None)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(Attempt::Retry(anyhow!(e).context("reading the embedding response failed"), None)),
        };
        if status.as_u16() == 429 || status.is_server_error() {
            let detail = String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>();
            return Err(Attempt::Retry(anyhow!("embedding provider answered {status}: {detail}"), retry_after));
        }
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>();
            return Err(Attempt::Fail(anyhow!("embedding provider refused the request ({status}): {detail}")));
        }
        let parsed: EmbeddingResponse = serde_json::from_slice(&bytes)
            .context("the embedding response is not the expected JSON")
            .map_err(Attempt::Fail)?;
        if parsed.data.len() != texts.len() {
            return Err(Attempt::Fail(anyhow!(
                "the provider returned {} embeddings for {} texts",
                parsed.data.len(),
                texts.len()
            )));
        }
        let mut vectors = vec![Vec::new(); texts.len()];
        for item in parsed.data {
            if item.index >= texts.len() || !vectors[item.index].is_empty() {
                return Err(Attempt::Fail(anyhow!("the provider returned an embedding with index {}", item.index)));
            }
            if item.embedding.len() != self.config.dimensions {
                return Err(Attempt::Fail(anyhow!(
                    "the provider returned {} dimensions; {} are configured",
                    item.embedding.len(),
                    self.config.dimensions
                )));
            }
            vectors[item.index] = item.embedding;
        }
        Ok(vectors)
    }

    async fn batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut delay = self.config.backoff;
        for attempt in 0..=self.config.max_retries {
            match self.attempt(texts).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(e, retry_after)) if attempt < self.config.max_retries => {
                    let wait = retry_after.unwrap_or(delay).min(Duration::from_secs(30));
                    tracing::warn!(attempt = attempt + 1, wait_ms = wait.as_millis() as u64, error = %e, "retrying the embedding request");
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(Attempt::Retry(e, _)) => {
                    return Err(e.context(format!("gave up after {} attempts", self.config.max_retries + 1)));
                }
            }
        }
        bail!("unreachable: the retry loop always returns")
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.config.model
    }
    fn dimensions(&self) -> usize {
        self.config.dimensions
    }
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Embedded>, anyhow::Error> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            let vectors = self.batch(batch).await?;
            for (text, vector) in batch.iter().zip(vectors) {
                out.push(Embedded { vector, tokens: self.count_tokens(text) });
            }
        }
        Ok(out)
    }
}
