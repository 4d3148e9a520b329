//! Language-model providers for answers: any OpenAI-compatible `/chat/completions` endpoint
//! (OpenAI, vLLM, Ollama, LiteLLM, …) and the Anthropic Messages API, each configured once by
//! the platform with its key.
//!
//! Every request has a timeout; failures that may pass (connection errors, timeouts, 429, 5xx,
//! Anthropic's 529) are retried with exponential backoff honouring `Retry-After`, but never once
//! streamed text has been passed on (a retry would repeat it); other 4xx fail at once with the
//! provider's message. A semaphore caps the requests in flight per provider. Token counts are
//! the provider's reported usage (streams ask for it: `stream_options.include_usage` on OpenAI,
//! `message_start`/`message_delta` on Anthropic).

#[cfg(feature = "standin")]
pub mod standin;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use tenantry_app::{Generated, GenerationRequest, Provider, ProviderError};

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST {base_url}/chat/completions`, bearer key.
    Openai,
    /// `POST {base_url}/messages`, `x-api-key` and `anthropic-version: 2023-06-01`.
    Anthropic,
}

/// One provider, as the platform configures it (a JSON file of these: `--llm-providers`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The name tenant configurations use (`openai`, `anthropic`, `vllm`, …).
    pub name: String,
    pub api: Api,
    /// e.g. `https://api.openai.com/v1` or `https://api.anthropic.com/v1`.
    pub base_url: String,
    /// The environment variable holding the key (never the key itself in the file).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The models tenants may choose.
    #[serde(default)]
    pub models: Vec<String>,
    /// Reranking models served at `{base_url}/rerank` (the Cohere-style API: `{model, query,
    /// documents, top_n}` → `{results: [{index, relevance_score}]}`, as Cohere, vLLM and other
    /// gateways serve it).
    #[serde(default)]
    pub rerank_models: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
}

fn default_timeout() -> u64 {
    60
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> u64 {
    250
}
fn default_concurrency() -> usize {
    16
}

/// Reads a JSON array of provider configurations and builds them; keys are read from the
/// environment variables they name.
pub fn load(path: &std::path::Path) -> Result<Vec<HttpProvider>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let configs: Vec<ProviderConfig> =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a list of providers: {e}", path.display()))?;
    configs
        .into_iter()
        .map(|c| {
            let key = match &c.api_key_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    format!("provider {}: environment variable {var} (its API key) is not set", c.name)
                })?),
                None => None,
            };
            HttpProvider::new(c, key)
        })
        .collect()
}

/// A provider reached over HTTP.
pub struct HttpProvider {
    config: ProviderConfig,
    key: Option<String>,
    url: String,
    rerank_url: String,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
}

/// Why one attempt failed, and whether another may succeed.
enum Attempt {
    Retry(String, Option<Duration>, bool),
    Fail(ProviderError),
}

impl HttpProvider {
    pub fn new(config: ProviderConfig, key: Option<String>) -> Result<Self, String> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(format!("provider {}: base_url must start with http:// or https://", config.name));
        }
        if config.models.is_empty() && config.rerank_models.is_empty() {
            return Err(format!("provider {}: list at least one model or rerank model", config.name));
        }
        if config.max_concurrency == 0 || config.timeout_secs == 0 {
            return Err(format!("provider {}: max_concurrency and timeout_secs must be at least 1", config.name));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| format!("build the HTTP client: {e}"))?;
        let path = match config.api {
            Api::Openai => "chat/completions",
            Api::Anthropic => "messages",
        };
        let url = format!("{}/{path}", config.base_url.trim_end_matches('/'));
        let rerank_url = format!("{}/rerank", config.base_url.trim_end_matches('/'));
        let permits = Arc::new(Semaphore::new(config.max_concurrency));
        Ok(Self { config, key, url, rerank_url, client, permits })
    }

    fn body(&self, r: &GenerationRequest, stream: bool) -> Value {
        match self.config.api {
            Api::Openai => {
                let mut body = json!({
                    "model": r.model,
                    "messages": [
                        {"role": "system", "content": r.prompt.system},
                        {"role": "user", "content": r.prompt.user},
                    ],
                    "temperature": r.temperature,
                    "max_tokens": r.max_tokens,
                    "stream": stream,
                });
                if stream {
                    body["stream_options"] = json!({"include_usage": true});
                }
                body
            }
            Api::Anthropic => json!({
                "model": r.model,
                "system": r.prompt.system,
                "messages": [{"role": "user", "content": r.prompt.user}],
                "temperature": r.temperature,
                "max_tokens": r.max_tokens,
                "stream": stream,
            }),
        }
    }

    fn failed(&self, detail: impl Into<String>) -> ProviderError {
        ProviderError::Failed { provider: self.config.name.clone(), detail: detail.into() }
    }

    /// Posts `body` to `url` with the API's key headers; a failed status is an `Attempt` error.
    async fn post(&self, url: &str, body: String) -> Result<reqwest::Response, Attempt> {
        let mut request = self.client.post(url).header("content-type", "application/json");
        request = match (self.config.api, &self.key) {
            (Api::Openai, Some(k)) => request.bearer_auth(k),
            (Api::Anthropic, Some(k)) => request.header("x-api-key", k),
            (_, None) => request,
        };
        if self.config.api == Api::Anthropic {
            request = request.header("anthropic-version", "2023-06-01");
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => return Err(Attempt::Retry(format!("request failed: {e}"), None, e.is_timeout())),
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let detail = response.text().await.unwrap_or_default();
            let detail = error_message(&detail);
            if status.as_u16() == 429 || status.is_server_error() {
                return Err(Attempt::Retry(format!("answered {status}: {detail}"), retry_after, false));
            }
            return Err(Attempt::Fail(self.failed(format!("refused the request ({status}): {detail}"))));
        }
        Ok(response)
    }

    async fn attempt(
        &self,
        r: &GenerationRequest,
        stream: Option<&mpsc::Sender<String>>,
    ) -> Result<Generated, Attempt> {
        let response = self.post(&self.url, self.body(r, stream.is_some()).to_string()).await?;
        match stream {
            None => {
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| Attempt::Retry(format!("reading the answer failed: {e}"), None, e.is_timeout()))?;
                let v: Value =
                    serde_json::from_slice(&body).map_err(|_| Attempt::Fail(self.failed("the answer is not JSON")))?;
                self.parse_whole(&v).map_err(Attempt::Fail)
            }
            Some(tx) => self.read_stream(response, tx).await,
        }
    }

    fn parse_whole(&self, v: &Value) -> Result<Generated, ProviderError> {
        let (text, input, output) = match self.config.api {
            Api::Openai => (
                v.pointer("/choices/0/message/content").and_then(Value::as_str),
                v.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
                v.pointer("/usage/completion_tokens").and_then(Value::as_u64),
            ),
            Api::Anthropic => {
                let text = v.get("content").and_then(Value::as_array).map(|blocks| {
                    blocks
                        .iter()
                        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .collect::<String>()
                });
                return match (
                    text,
                    v.pointer("/usage/input_tokens").and_then(Value::as_u64),
                    v.pointer("/usage/output_tokens").and_then(Value::as_u64),
                ) {
                    (Some(text), Some(input_tokens), Some(output_tokens)) => {
                        Ok(Generated { text, input_tokens, output_tokens })
                    }
                    _ => Err(self.failed("the answer lacks its text or its usage")),
                };
            }
        };
        match (text, input, output) {
            (Some(text), Some(input_tokens), Some(output_tokens)) => {
                Ok(Generated { text: text.to_owned(), input_tokens, output_tokens })
            }
            _ => Err(self.failed("the answer lacks its text or its usage")),
        }
    }

    /// Reads a server-sent-event stream, passing text on as it comes.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        tx: &mpsc::Sender<String>,
    ) -> Result<Generated, Attempt> {
        let mut buffer = Vec::<u8>::new();
        let mut out = Generated { text: String::new(), input_tokens: 0, output_tokens: 0 };
        let mut usage_seen = false;
        let mut done = false;
        while !done {
            let chunk = match response.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if out.text.is_empty() => {
                    return Err(Attempt::Retry(format!("the stream broke: {e}"), None, e.is_timeout()));
                }
                Err(e) => return Err(Attempt::Fail(self.failed(format!("the stream broke mid-answer: {e}")))),
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = find_event_end(&buffer) {
                let event: Vec<u8> = buffer.drain(..end.0 + end.1).collect();
                let event = String::from_utf8_lossy(&event[..end.0]).into_owned();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect::<Vec<_>>()
                    .join("\n");
                if data.is_empty() {
                    continue;
                }
                if data == "[DONE]" {
                    done = true;
                    break;
                }
                let v: Value = serde_json::from_str(&data)
                    .map_err(|_| Attempt::Fail(self.failed("a stream event is not JSON")))?;
                let delta = match self.config.api {
                    Api::Openai => {
                        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                            out.input_tokens = u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
                            out.output_tokens = u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0);
                            usage_seen = true;
                        }
                        if let Some(e) = v.get("error") {
                            return Err(Attempt::Fail(
                                self.failed(format!("stream error: {}", error_message(&e.to_string()))),
                            ));
                        }
                        v.pointer("/choices/0/delta/content").and_then(Value::as_str).map(str::to_owned)
                    }
                    Api::Anthropic => match v.get("type").and_then(Value::as_str) {
                        Some("message_start") => {
                            out.input_tokens =
                                v.pointer("/message/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
                            None
                        }
                        Some("content_block_delta") => {
                            v.pointer("/delta/text").and_then(Value::as_str).map(str::to_owned)
                        }
                        Some("message_delta") => {
                            if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                                out.output_tokens = n;
                                usage_seen = true;
                            }
                            None
                        }
                        Some("message_stop") => {
                            done = true;
                            None
                        }
                        Some("error") => {
                            let detail = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("unknown");
                            let overloaded =
                                v.pointer("/error/type").and_then(Value::as_str) == Some("overloaded_error");
                            if overloaded && out.text.is_empty() {
                                return Err(Attempt::Retry(format!("overloaded: {detail}"), None, false));
                            }
                            return Err(Attempt::Fail(self.failed(format!("stream error: {detail}"))));
                        }
                        _ => None,
                    },
                };
                if let Some(d) = delta.filter(|d| !d.is_empty()) {
                    out.text.push_str(&d);
                    let _ = tx.send(d).await;
                }
            }
        }
        if !done {
            return Err(Attempt::Fail(self.failed("the stream ended before the answer was complete")));
        }
        if !usage_seen {
            return Err(Attempt::Fail(self.failed("the stream did not report token usage")));
        }
        Ok(out)
    }
}

impl HttpProvider {
    async fn rerank_attempt(&self, body: &str, count: usize) -> Result<Vec<(usize, f32)>, Attempt> {
        let response = self.post(&self.rerank_url, body.to_owned()).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Attempt::Retry(format!("reading the ranking failed: {e}"), None, e.is_timeout()))?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|_| Attempt::Fail(self.failed("the ranking is not JSON")))?;
        let results = v
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| Attempt::Fail(self.failed("the ranking has no results")))?;
        results
            .iter()
            .map(|r| {
                let index = r.get("index").and_then(Value::as_u64).map(|i| i as usize).filter(|i| *i < count);
                let score = r.get("relevance_score").and_then(Value::as_f64);
                match (index, score) {
                    (Some(i), Some(s)) => Ok((i, s as f32)),
                    _ => Err(Attempt::Fail(self.failed("a ranking result lacks a valid index or relevance_score"))),
                }
            })
            .collect()
    }

    /// Runs `attempt` under the concurrency limit, retrying what may pass.
    async fn with_retries<T, F, Fut>(&self, attempt: F) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let name = self.config.name.clone();
        let wait = Duration::from_secs(self.config.timeout_secs);
        let _permit = match tokio::time::timeout(wait, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err(ProviderError::Unavailable {
                    provider: name,
                    detail: format!("all {} concurrent requests stayed busy", self.config.max_concurrency),
                });
            }
        };
        let mut delay = Duration::from_millis(self.config.backoff_ms);
        let mut last = String::new();
        let mut timed_out = false;
        for n in 0..=self.config.max_retries {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(detail, retry_after, timeout)) => {
                    last = detail;
                    timed_out = timeout;
                    if n < self.config.max_retries {
                        let pause = retry_after.unwrap_or(delay).min(Duration::from_secs(30));
                        tracing::warn!(provider = %name, attempt = n + 1, wait_ms = pause.as_millis() as u64, error = %last, "retrying the provider");
                        tokio::time::sleep(pause).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        if timed_out {
            return Err(ProviderError::Timeout { provider: name, secs: self.config.timeout_secs });
        }
        Err(ProviderError::Unavailable {
            provider: name,
            detail: format!("{last} (after {} attempts)", self.config.max_retries + 1),
        })
    }
}

/// The end of the first complete SSE event in `buffer`: (its length, the separator's length).
fn find_event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The provider's error message (`{"error": {"message": …}}` in both APIs), else the text cut short.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[async_trait]
impl Provider for HttpProvider {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn models(&self) -> Vec<String> {
        self.config.models.clone()
    }

    async fn generate(
        &self,
        request: &GenerationRequest,
        stream: Option<&mpsc::Sender<String>>,
    ) -> Result<Generated, ProviderError> {
        self.with_retries(|| self.attempt(request, stream)).await
    }

    fn rerank_models(&self) -> Vec<String> {
        self.config.rerank_models.clone()
    }

    async fn rerank(
        &self,
        model: &str,
        query: &str,
        documents: &[&str],
        top_n: usize,
    ) -> Result<Vec<(usize, f32)>, ProviderError> {
        let body = json!({"model": model, "query": query, "documents": documents, "top_n": top_n}).to_string();
        let mut ranked = self.with_retries(|| self.rerank_attempt(&body, documents.len())).await?;
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranked)
    }
}
