//! A local stand-in for paid providers, for tests and benchmarks: it speaks OpenAI's
//! `/v1/chat/completions` and Anthropic's `/v1/messages`, whole and streamed, with their usage
//! reports and error bodies. What it does is chosen by the model name:
//! - `echo-*`: answers `"Answer: "` + the last 40 characters of the user message; usage counts
//!   whitespace-separated words of the prompt (input) and the answer (output);
//! - `flaky-*`: the first request of each model answers 429 with `Retry-After: 0`, then echoes;
//! - `overloaded-*`: always 503 (OpenAI) or 529 `overloaded_error` (Anthropic);
//! - `refuse-*`: 400 with the API's error body;
//! - `slow-*`: waits 2 s before echoing.
//!
//! `/v1/rerank` speaks the Cohere-style rerank API: each document's relevance is the share of the
//! query's words (3+ letters, lowercased) it contains; `refuse-*` models answer 400.
//!
//! It records every request body and header it saw, and the most requests it had in flight.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

/// What the stand-in saw.
#[derive(Default)]
pub struct Seen {
    pub requests: Mutex<Vec<(HeaderMap, Value)>>,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    flaked: Mutex<HashSet<String>>,
}

/// A running stand-in: its base URL (`http://127.0.0.1:<port>/v1`) and what it saw.
pub struct StandIn {
    pub base_url: String,
    pub seen: Arc<Seen>,
}

/// Starts the stand-in on a free loopback port.
pub async fn start() -> std::io::Result<StandIn> {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .route("/v1/rerank", post(rerank))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(StandIn { base_url: format!("http://{addr}/v1"), seen })
}

struct InFlight(Arc<Seen>);

impl InFlight {
    fn enter(seen: &Arc<Seen>) -> Self {
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(seen.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Mode {
    Echo,
    Limited,
    Overloaded,
    Refuse,
}

async fn mode(seen: &Seen, model: &str) -> Mode {
    if model.starts_with("slow-") {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if model.starts_with("flaky-") && seen.flaked.lock().unwrap().insert(model.to_owned()) {
        return Mode::Limited;
    }
    if model.starts_with("overloaded-") {
        return Mode::Overloaded;
    }
    if model.starts_with("refuse-") {
        return Mode::Refuse;
    }
    Mode::Echo
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn echo(user: &str) -> String {
    let tail: String = user.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    format!("Answer: {tail}")
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid response")
}

fn sse(events: Vec<String>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .body(Body::from(events.concat()))
        .expect("a valid response")
}

/// The answer in three pieces, as a stream would deliver it.
fn pieces(answer: &str) -> Vec<String> {
    let chars: Vec<char> = answer.chars().collect();
    let third = chars.len().div_ceil(3).max(1);
    chars.chunks(third).map(|c| c.iter().collect()).collect()
}

async fn openai(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let _in = InFlight::enter(&seen);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.requests.lock().unwrap().push((headers, v.clone()));
    let model = v["model"].as_str().unwrap_or("").to_owned();
    let error = |status: StatusCode, kind: &str, message: &str| {
        json_response(status, json!({"error": {"message": message, "type": kind, "code": null}}))
    };
    match mode(&seen, &model).await {
        Mode::Limited => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", "Rate limit reached");
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
            return r;
        }
        Mode::Overloaded => return error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "The server is overloaded"),
        Mode::Refuse => return error(StatusCode::BAD_REQUEST, "invalid_request_error", "Unsupported parameter"),
        Mode::Echo => {}
    }
    let messages = v["messages"].as_array().cloned().unwrap_or_default();
    let prompt: String = messages.iter().filter_map(|m| m["content"].as_str()).collect::<Vec<_>>().join(" ");
    let user = messages.last().and_then(|m| m["content"].as_str()).unwrap_or("");
    let answer = echo(user);
    let usage = json!({"prompt_tokens": words(&prompt), "completion_tokens": words(&answer), "total_tokens": words(&prompt) + words(&answer)});
    if v["stream"].as_bool() == Some(true) {
        let mut events: Vec<String> = pieces(&answer)
            .into_iter()
            .map(|p| {
                let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]});
                format!("data: {chunk}\n\n")
            })
            .collect();
        if v.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
            let last = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage});
            events.push(format!("data: {last}\n\n"));
        }
        events.push("data: [DONE]\n\n".to_owned());
        return sse(events);
    }
    json_response(
        StatusCode::OK,
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": model,
               "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
               "usage": usage}),
    )
}

async fn anthropic(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let _in = InFlight::enter(&seen);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.requests.lock().unwrap().push((headers, v.clone()));
    let model = v["model"].as_str().unwrap_or("").to_owned();
    let error = |status: StatusCode, kind: &str, message: &str| {
        json_response(status, json!({"type": "error", "error": {"type": kind, "message": message}}))
    };
    match mode(&seen, &model).await {
        Mode::Limited => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "Rate limited");
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
            return r;
        }
        Mode::Overloaded => {
            return error(StatusCode::from_u16(529).unwrap(), "overloaded_error", "Overloaded");
        }
        Mode::Refuse => return error(StatusCode::BAD_REQUEST, "invalid_request_error", "max_tokens: too large"),
        Mode::Echo => {}
    }
    let system = v["system"].as_str().unwrap_or("");
    let user = v.pointer("/messages/0/content").and_then(Value::as_str).unwrap_or("");
    let answer = echo(user);
    let (input, output) = (words(system) + words(user), words(&answer));
    if v["stream"].as_bool() == Some(true) {
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut events = vec![event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                   "content": [], "usage": {"input_tokens": input, "output_tokens": 1}}}),
        )];
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ));
        for p in pieces(&answer) {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
            ));
        }
        events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
        events.push(event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": output}}),
        ));
        events.push(event("message_stop", json!({"type": "message_stop"})));
        return sse(events);
    }
    json_response(
        StatusCode::OK,
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
               "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
               "usage": {"input_tokens": input, "output_tokens": output}}),
    )
}

fn words_of(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 3).map(str::to_lowercase).collect()
}

async fn rerank(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let _in = InFlight::enter(&seen);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.requests.lock().unwrap().push((headers, v.clone()));
    if v["model"].as_str().unwrap_or("").starts_with("refuse-") {
        return json_response(StatusCode::BAD_REQUEST, json!({"message": "invalid request: model not found"}));
    }
    let query = words_of(v["query"].as_str().unwrap_or(""));
    let documents: Vec<&str> =
        v["documents"].as_array().map(|d| d.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let mut results: Vec<(usize, f64)> = documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let have = words_of(d);
            let score = if query.is_empty() {
                0.0
            } else {
                query.iter().filter(|w| have.contains(*w)).count() as f64 / query.len() as f64
            };
            (i, score)
        })
        .collect();
    results.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    results.truncate(v["top_n"].as_u64().map_or(results.len(), |n| n as usize));
    json_response(
        StatusCode::OK,
        json!({"id": "rerank-1", "results": results.iter().map(|(i, s)| json!({"index": i, "relevance_score": s})).collect::<Vec<_>>(),
               "meta": {"billed_units": {"search_units": 1}}}),
    )
}
