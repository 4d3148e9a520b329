//! The OpenAI-compatible provider against a local stand-in server (a real HTTP server on a free
//! port): batching, bearer auth, retries with backoff on 5xx/429, no retry on other 4xx, timeouts,
//! malformed answers, and token counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use tenantry_app::Embedder;
use tenantry_embed::{OpenAiConfig, OpenAiEmbedder};

/// How the stand-in behaves on each request.
#[derive(Clone, Copy)]
enum Mode {
    Ok,
    /// 500 on the first `n` requests, then OK.
    FailFirst(usize),
    /// 429 with Retry-After: 0 on the first request.
    RateLimitedOnce,
    BadRequest,
    Slow,
    WrongDimensions,
}

struct Standin {
    mode: Mode,
    requests: AtomicUsize,
    batch_sizes: std::sync::Mutex<Vec<usize>>,
}

async fn embeddings(State(s): State<Arc<Standin>>, headers: HeaderMap, body: String) -> Response {
    let n = s.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
        return (StatusCode::UNAUTHORIZED, "missing key").into_response();
    }
    let req: Value = serde_json::from_str(&body).unwrap();
    let inputs = req["input"].as_array().unwrap().clone();
    s.batch_sizes.lock().unwrap().push(inputs.len());
    match s.mode {
        Mode::FailFirst(k) if n < k => return (StatusCode::INTERNAL_SERVER_ERROR, "overloaded").into_response(),
        Mode::RateLimitedOnce if n == 0 => {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response();
        }
        Mode::BadRequest => return (StatusCode::BAD_REQUEST, "{\"error\":\"bad model\"}").into_response(),
        Mode::Slow => tokio::time::sleep(Duration::from_secs(5)).await,
        _ => {}
    }
    let dims = if matches!(s.mode, Mode::WrongDimensions) { 3 } else { 4 };
    // answer out of order, as the API allows: `index` says which input
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| {
            let len = t.as_str().unwrap().len() as f32;
            json!({"object": "embedding", "index": i, "embedding": vec![len; dims]})
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": req["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
        .into_response()
}

async fn start(mode: Mode) -> (Arc<Standin>, String) {
    let state = Arc::new(Standin { mode, requests: AtomicUsize::new(0), batch_sizes: Default::default() });
    let app = Router::new().route("/v1/embeddings", post(embeddings)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, format!("http://{addr}/v1"))
}

fn embedder(url: String) -> OpenAiEmbedder {
    OpenAiEmbedder::new(OpenAiConfig {
        base_url: url,
        model: "text-embedding-3-small".into(),
        api_key: Some("sk-test".into()),
        dimensions: 4,
        batch_size: 2,
        timeout: Duration::from_millis(500),
        max_retries: 2,
        backoff: Duration::from_millis(10),
    })
    .unwrap()
}

#[tokio::test]
async fn batches_keep_order_and_count_tokens() {
    let (s, url) = start(Mode::Ok).await;
    let e = embedder(url);
    let texts = ["a", "bb", "ccc", "dddd", "hello world"];
    let out = e.embed(&texts).await.unwrap();
    assert_eq!(out.len(), 5);
    for (t, emb) in texts.iter().zip(&out) {
        assert_eq!(emb.vector, vec![t.len() as f32; 4], "{t}");
    }
    assert_eq!(*s.batch_sizes.lock().unwrap(), vec![2, 2, 1]);
    assert_eq!(out[4].tokens, 2, "cl100k: 'hello world' is two tokens");
    assert_eq!(e.dimensions(), 4);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() {
    let (s, url) = start(Mode::FailFirst(2)).await;
    assert_eq!(embedder(url).embed(&["x"]).await.unwrap().len(), 1);
    assert_eq!(s.requests.load(Ordering::SeqCst), 3, "two failures, then success");

    let (s, url) = start(Mode::RateLimitedOnce).await;
    assert_eq!(embedder(url).embed(&["x"]).await.unwrap().len(), 1);
    assert_eq!(s.requests.load(Ordering::SeqCst), 2);

    let (s, url) = start(Mode::FailFirst(10)).await;
    let err = embedder(url).embed(&["x"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("gave up after 3 attempts"), "{err:#}");
    assert_eq!(s.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn client_errors_fail_at_once_with_the_providers_message() {
    let (s, url) = start(Mode::BadRequest).await;
    let err = embedder(url).embed(&["x"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("bad model"), "{err:#}");
    assert_eq!(s.requests.load(Ordering::SeqCst), 1, "a 400 is not retried");

    let (s, url) = start(Mode::Ok).await;
    let no_key =
        OpenAiEmbedder::new(OpenAiConfig { base_url: url, api_key: None, dimensions: 4, ..Default::default() })
            .unwrap();
    assert!(format!("{:#}", no_key.embed(&["x"]).await.unwrap_err()).contains("401"));
    assert_eq!(s.requests.load(Ordering::SeqCst), 1, "a 401 is not retried");
}

#[tokio::test]
async fn timeouts_and_wrong_dimensions_are_errors() {
    let (s, url) = start(Mode::Slow).await;
    let err = embedder(url).embed(&["x"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("gave up"), "{err:#}");
    assert_eq!(s.requests.load(Ordering::SeqCst), 3, "each timed-out attempt is retried");

    let (_, url) = start(Mode::WrongDimensions).await;
    let err = embedder(url).embed(&["x"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("3 dimensions"), "{err:#}");
}

#[test]
fn configuration_is_checked() {
    assert!(OpenAiEmbedder::new(OpenAiConfig { batch_size: 0, ..Default::default() }).is_err());
    assert!(OpenAiEmbedder::new(OpenAiConfig { base_url: "ftp://x".into(), ..Default::default() }).is_err());
}
