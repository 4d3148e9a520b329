//! Both provider APIs against the stand-in server: whole and streamed answers with the reported
//! usage, keys and headers as each API wants them, retries honouring Retry-After, refusals not
//! retried, overload and timeouts mapped to their errors, and the concurrency limit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tenantry_app::{GenerationRequest, Provider, ProviderError};
use tenantry_domain::prompt::Prompt;
use tenantry_llm::standin::{self, StandIn};
use tenantry_llm::{Api, HttpProvider, ProviderConfig};

fn provider(s: &StandIn, api: Api, timeout_secs: u64, max_concurrency: usize) -> HttpProvider {
    let config = ProviderConfig {
        name: format!("{api:?}").to_lowercase(),
        api,
        base_url: s.base_url.clone(),
        api_key_env: None,
        models: vec!["echo-1".into()],
        rerank_models: vec!["rank-1".into()],
        timeout_secs,
        max_retries: 2,
        backoff_ms: 10,
        max_concurrency,
    };
    HttpProvider::new(config, Some("sk-test".into())).unwrap()
}

fn request(model: &str) -> GenerationRequest {
    GenerationRequest {
        model: model.into(),
        prompt: Prompt {
            system: "platform rules".into(),
            user: "<question>\nwhat is the refund window?\n</question>".into(),
        },
        temperature: 0.1,
        max_tokens: 64,
        question: "what is the refund window?".into(),
        passages: vec![],
    }
}

#[tokio::test]
async fn both_apis_answer_whole_with_the_reported_usage_and_their_own_headers() {
    let s = standin::start().await.unwrap();
    for api in [Api::Openai, Api::Anthropic] {
        let g = provider(&s, api, 5, 4).generate(&request("echo-1"), None).await.unwrap();
        assert!(g.text.starts_with("Answer: "), "{api:?}: {}", g.text);
        assert_eq!(g.input_tokens, 9, "{api:?}: words of system + user");
        assert_eq!(g.output_tokens, g.text.split_whitespace().count() as u64);
    }
    let seen = s.seen.requests.lock().unwrap();
    let (oa_headers, oa_body) = &seen[0];
    assert_eq!(oa_headers["authorization"], "Bearer sk-test");
    assert_eq!(oa_body["messages"][0]["role"], "system");
    assert_eq!(oa_body["messages"][0]["content"], "platform rules");
    assert_eq!(oa_body["max_tokens"], 64);
    let (an_headers, an_body) = &seen[1];
    assert_eq!(an_headers["x-api-key"], "sk-test");
    assert_eq!(an_headers["anthropic-version"], "2023-06-01");
    assert_eq!(an_body["system"], "platform rules");
    assert_eq!(an_body["messages"][0]["role"], "user");
}

#[tokio::test]
async fn both_apis_stream_text_as_it_comes_and_still_report_usage() {
    let s = standin::start().await.unwrap();
    for api in [Api::Openai, Api::Anthropic] {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let g = provider(&s, api, 5, 4).generate(&request("echo-1"), Some(&tx)).await.unwrap();
        drop(tx);
        let mut pieces = Vec::new();
        while let Some(p) = rx.recv().await {
            pieces.push(p);
        }
        assert!(pieces.len() >= 2, "{api:?} streamed {pieces:?}");
        assert_eq!(pieces.concat(), g.text);
        assert_eq!(g.input_tokens, 9, "{api:?}");
        assert!(g.output_tokens > 0, "{api:?}");
    }
    let seen = s.seen.requests.lock().unwrap();
    assert_eq!(seen[0].1["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_a_400_is_not() {
    let s = standin::start().await.unwrap();
    for (i, api) in [Api::Openai, Api::Anthropic].into_iter().enumerate() {
        let p = provider(&s, api, 5, 4);
        let g = p.generate(&request(&format!("flaky-{i}")), None).await.unwrap();
        assert!(g.text.starts_with("Answer: "));
        let before = s.seen.requests.lock().unwrap().len();
        let e = p.generate(&request("refuse-1"), None).await.unwrap_err();
        assert!(matches!(&e, ProviderError::Failed { detail, .. } if detail.contains("400")), "{e}");
        assert_eq!(s.seen.requests.lock().unwrap().len(), before + 1, "a refusal is not retried");
    }
    assert_eq!(s.seen.requests.lock().unwrap().len(), 6, "two attempts for each flaky model, one per refusal");
}

#[tokio::test]
async fn overload_after_every_retry_is_unavailable_and_a_slow_provider_times_out() {
    let s = standin::start().await.unwrap();
    for api in [Api::Openai, Api::Anthropic] {
        let before = s.seen.requests.lock().unwrap().len();
        let e = provider(&s, api, 5, 4).generate(&request("overloaded-1"), None).await.unwrap_err();
        assert!(matches!(&e, ProviderError::Unavailable { detail, .. } if detail.contains("after 3 attempts")), "{e}");
        assert_eq!(s.seen.requests.lock().unwrap().len(), before + 3);
    }
    let e = provider(&s, Api::Openai, 1, 4).generate(&request("slow-1"), None).await.unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { secs: 1, .. }), "{e}");
}

#[tokio::test]
async fn requests_in_flight_never_exceed_the_concurrency_limit() {
    let s = standin::start().await.unwrap();
    let p = Arc::new(provider(&s, Api::Anthropic, 10, 2));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move { p.generate(&request("slow-ok"), None).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.seen.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_cohere_style_rerank_endpoint_orders_documents_best_first() {
    let s = standin::start().await.unwrap();
    let p = provider(&s, Api::Openai, 5, 4);
    assert_eq!(p.rerank_models(), vec!["rank-1".to_owned()]);
    let docs = ["the cafeteria menu", "refund window is 30 days", "refund policy"];
    let ranked = p.rerank("rank-1", "refund window", &docs, 2).await.unwrap();
    assert_eq!(ranked.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2]);
    assert!(ranked[0].1 > ranked[1].1);
    let seen = s.seen.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.1["top_n"], 2);
    assert_eq!(seen.1["documents"][0], "the cafeteria menu");
    drop(seen);
    let e = p.rerank("refuse-1", "q", &docs, 2).await.unwrap_err();
    assert!(matches!(&e, ProviderError::Failed { detail, .. } if detail.contains("400")), "{e}");
}
