//! The engine client against kb-testkit's fake engine: retries, failover, classification,
//! streaming and secrecy. Delays and timeouts are small so that each test takes well under 3 s;
//! the tests that say how long something takes run on a frozen clock (see `common`).

use futures::StreamExt;
use kb_core::{ChatDelta, ChatModel, Embedder, InputKind, ModelError};
use kb_engine::{EngineClient, EngineConfig, INTERRUPTED, RemoteEmbedderOptions};
use kb_testkit::{FakeEngine, Fault, Route, fake_embedding};
use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

mod common;
use common::*;

fn assert_close(got: &[f32], expected: &[f32], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    let off = got
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(off < 1e-5, "{what}: {got:?} != {expected:?}");
}

/// Collected stream items: text joined, then usage and errors in order.
async fn drain(
    mut stream: kb_core::ChatStream,
) -> (String, Vec<kb_core::Usage>, Vec<ModelError>, usize) {
    let (mut text, mut usage, mut errors, mut texts) = (String::new(), vec![], vec![], 0);
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatDelta::Text(t)) => {
                assert!(errors.is_empty(), "text after an error");
                texts += 1;
                text.push_str(&t);
            }
            Ok(ChatDelta::Usage(u)) => usage.push(u),
            Err(e) => errors.push(e),
        }
    }
    (text, usage, errors, texts)
}

#[tokio::test(start_paused = true)]
async fn retries_after_429_and_honours_retry_after() {
    // Arrange
    let clock = Frozen::hold();
    let fake = engine().await;
    fake.push_fault(
        Route::Embeddings,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        },
    );
    let client = client(vec![endpoint("only", &fake)]);
    let embedder = client.embedder(options());
    let resting = || client.health()[0].keys_cooling == 1;
    let inputs = texts(&["leave"]);

    // Act: the 429, then the clock up to 1 ms before the Retry-After is over, then to its end.
    let mut call = pin!(embedder.embed(&inputs, InputKind::Query));
    drive_until(&mut call, "the 429 came back and the key rests", || {
        fake.calls(Route::Embeddings) == 1 && resting()
    })
    .await;
    clock.advance(Duration::from_millis(999)).await;
    still_pending(&mut call, "retried before the Retry-After was over").await;
    let before_the_end = (fake.calls(Route::Embeddings), resting());
    clock.advance(Duration::from_millis(1)).await;
    let vectors = finish(&mut call).await;

    // Assert
    assert_eq!(
        before_the_end,
        (1, true),
        "1 ms before the Retry-After was over"
    );
    assert_eq!(vectors.expect("second attempt succeeds").len(), 1);
    assert_eq!(fake.calls(Route::Embeddings), 2);
    assert_eq!(
        clock.elapsed(),
        Duration::from_secs(1),
        "retried when the rest was over"
    );
}

#[tokio::test]
async fn retries_500_then_succeeds() {
    // Arrange
    let fake = engine().await;
    fake.push_fault(Route::Embeddings, Fault::Status(500));
    fake.push_fault(Route::Embeddings, Fault::Status(502));
    let client = client(vec![endpoint("only", &fake)]);
    let embedder = client.embedder(options());

    // Act
    let vectors = embedder.embed(&texts(&["leave"]), InputKind::Passage).await;

    // Assert
    assert!(vectors.is_ok(), "{vectors:?}");
    assert_eq!(fake.calls(Route::Embeddings), 3);
    let stats = client.stats();
    assert_eq!((stats.calls, stats.failures), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn slow_response_beyond_timeout_is_retried_then_fails_over() {
    // Arrange
    let clock = Frozen::hold();
    let slow = engine().await;
    let healthy = engine().await;
    slow.push_fault(Route::Embeddings, Fault::Delay(Duration::from_secs(2)));
    let embedder =
        client(vec![endpoint("slow", &slow), endpoint("healthy", &healthy)]).embedder(options());
    let inputs = texts(&["leave"]);

    // Act: the clock up to 1 ms before the request timeout, then to it.
    let mut call = pin!(embedder.embed(&inputs, InputKind::Query));
    drive_until(&mut call, "the slow engine has the request", || {
        slow.calls(Route::Embeddings) == 1
    })
    .await;
    clock.advance(TIMEOUT - Duration::from_millis(1)).await;
    still_pending(&mut call, "gave up on the slow engine before the timeout").await;
    let healthy_before = healthy.calls(Route::Embeddings);
    clock.advance(Duration::from_millis(1)).await;
    let vectors = finish(&mut call).await;

    // Assert
    assert!(vectors.is_ok(), "{vectors:?}");
    assert_eq!(slow.calls(Route::Embeddings), 1);
    assert_eq!(healthy_before, 0, "failed over before the timeout");
    assert_eq!(healthy.calls(Route::Embeddings), 1);
    assert_eq!(
        clock.elapsed(),
        TIMEOUT,
        "the request timeout cut the slow call"
    );
}

#[tokio::test]
async fn hanging_engine_times_out_and_the_call_gives_up_with_a_transient_error() {
    // Arrange
    let fake = engine().await;
    fake.set_failure_rate(Route::Embeddings, 1.0, Fault::Hang);
    let mut config = config(vec![endpoint("hangs", &fake)]);
    config.retry.max_attempts = 2;
    let embedder = EngineClient::new(config).unwrap().embedder(options());

    // Act
    let err = embedder
        .embed(&texts(&["leave"]), InputKind::Query)
        .await
        .unwrap_err();

    // Assert
    assert!(matches!(err, ModelError::Transient { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(fake.calls(Route::Embeddings), 2);
}

/// Embed one query through a client over a single fake engine (endpoint `name`) that first
/// answers with `faults`, in order.
async fn embed_after(
    name: &str,
    faults: &[Fault],
) -> (FakeEngine, Result<Vec<Vec<f32>>, ModelError>) {
    let fake = engine().await;
    for fault in faults {
        fake.push_fault(Route::Embeddings, fault.clone());
    }
    let embedder = client(vec![endpoint(name, &fake)]).embedder(options());
    let result = embedder.embed(&texts(&["leave"]), InputKind::Query).await;
    (fake, result)
}

#[tokio::test]
async fn malformed_json_is_retried() {
    // Arrange + Act
    let faults = [Fault::MalformedJson, Fault::CutStream { after_chunks: 0 }];
    let (fake, vectors) = embed_after("flaky", &faults).await;

    // Assert
    assert!(vectors.is_ok(), "{vectors:?}");
    assert_eq!(fake.calls(Route::Embeddings), 3);
}

#[tokio::test]
async fn invalid_request_400_is_not_retried() {
    // Arrange + Act
    let (fake, result) = embed_after("strict", &[Fault::Status(400)]).await;

    // Assert
    let err = result.unwrap_err();
    assert!(matches!(err, ModelError::InvalidRequest { .. }), "{err:?}");
    assert!(err.to_string().contains("strict"), "{err}");
    assert_eq!(fake.calls(Route::Embeddings), 1);
}

#[tokio::test]
async fn context_length_error_is_classified() {
    // Arrange
    let fake = engine().await;
    fake.push_fault(Route::Embeddings, Fault::ContextLengthExceeded);
    fake.push_fault(Route::Chat, Fault::ContextLengthExceeded);
    let client = client(vec![endpoint("small", &fake)]);

    // Act
    let embed_err = client
        .embedder(options())
        .embed(&texts(&["very long"]), InputKind::Passage)
        .await
        .unwrap_err();
    let chat_err = client.chat(None).complete(&question()).await.unwrap_err();

    // Assert
    assert!(
        matches!(embed_err, ModelError::ContextLengthExceeded { .. }),
        "{embed_err:?}"
    );
    assert!(
        matches!(chat_err, ModelError::ContextLengthExceeded { .. }),
        "{chat_err:?}"
    );
    assert_eq!(fake.calls(Route::Embeddings), 1);
    assert_eq!(fake.calls(Route::Chat), 1);
}

#[tokio::test]
async fn wrong_dimensions_is_a_clear_error() {
    // Arrange + Act
    let (fake, result) = embed_after("gpu-1", &[Fault::WrongDimensions(3)]).await;

    // Assert
    let err = result.unwrap_err();
    assert!(matches!(err, ModelError::Permanent { .. }), "{err:?}");
    let message = err.to_string();
    for part in [
        "gpu-1",
        "fake-embed",
        "3 dimensions",
        &format!("expected {DIMS}"),
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    assert_eq!(fake.calls(Route::Embeddings), 1);
}

#[tokio::test]
async fn fails_over_to_second_endpoint_when_first_is_down() {
    // Arrange: the first engine is stopped, so its port refuses connections.
    let down = engine().await;
    let down_endpoint = endpoint("down", &down);
    drop(down);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let up = engine().await;
    let embedder = client(vec![down_endpoint, endpoint("up", &up)]).embedder(options());

    // Act
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(embedder.embed(&texts(&["leave"]), InputKind::Query).await);
    }

    // Assert
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(up.calls(Route::Embeddings), 3);
}

#[tokio::test]
async fn disabled_key_after_401_moves_to_next_key() {
    // Arrange
    let fake = FakeEngine::builder()
        .dimensions(DIMS)
        .required_api_key("sk-good-key")
        .start()
        .await;
    let mut ep = endpoint("keyed", &fake);
    ep.api_keys = vec!["sk-revoked-key".into(), "sk-good-key".into()];
    let embedder = client(vec![ep]).embedder(options());

    // Act
    let first = embedder.embed(&texts(&["leave"]), InputKind::Query).await;
    let calls_after_first = fake.calls(Route::Embeddings);
    let second = embedder.embed(&texts(&["leave"]), InputKind::Query).await;

    // Assert
    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    assert_eq!(
        calls_after_first, 2,
        "revoked key tried once, then the good one"
    );
    assert_eq!(
        fake.calls(Route::Embeddings),
        3,
        "revoked key never tried again"
    );
}

#[tokio::test]
async fn every_key_refused_is_a_permanent_error() {
    // Arrange
    let fake = FakeEngine::builder()
        .dimensions(DIMS)
        .required_api_key("sk-right")
        .start()
        .await;
    let mut ep = endpoint("keyed", &fake);
    ep.api_keys = vec!["sk-wrong-1".into(), "sk-wrong-2".into()];
    let embedder = client(vec![ep]).embedder(options());

    // Act
    let err = embedder
        .embed(&texts(&["leave"]), InputKind::Query)
        .await
        .unwrap_err();

    // Assert
    assert!(matches!(err, ModelError::Permanent { .. }), "{err:?}");
    assert_eq!(fake.calls(Route::Embeddings), 2);
}

#[tokio::test(start_paused = true)]
async fn all_routes_failing_returns_retryable_error_with_retry_after() {
    // Arrange
    let clock = Frozen::hold();
    let a = engine().await;
    let b = engine().await;
    let limited = Fault::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    };
    a.set_failure_rate(Route::Embeddings, 1.0, limited.clone());
    b.set_failure_rate(Route::Embeddings, 1.0, limited);
    let embedder = client(vec![endpoint("a", &a), endpoint("b", &b)]).embedder(options());
    let inputs = texts(&["leave"]);

    // Act: the clock stands still: the call must not wait for a route.
    let err = finish(&mut pin!(embedder.embed(&inputs, InputKind::Query)))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(clock.elapsed(), Duration::ZERO, "waited for a route");
    assert!(matches!(err, ModelError::RateLimited { .. }), "{err:?}");
    let after = err.retry_after().expect("retry_after is set");
    assert_eq!(after, Duration::from_secs(30), "the engines' Retry-After");
    assert_eq!(
        (a.calls(Route::Embeddings), b.calls(Route::Embeddings)),
        (1, 1)
    );
}

#[tokio::test]
async fn persistent_server_errors_end_in_a_transient_error_after_max_attempts() {
    // Arrange
    let fake = engine().await;
    fake.set_failure_rate(Route::Chat, 1.0, Fault::Status(503));
    let chat = client(vec![endpoint("down", &fake)]).chat(None);

    // Act
    let err = chat.complete(&question()).await.unwrap_err();

    // Assert
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.to_string().contains("gave up after 5 attempts"),
        "{err}"
    );
    assert_eq!(fake.calls(Route::Chat), 5);
}

#[tokio::test]
async fn complete_returns_the_answer_and_usage() {
    // Arrange
    let fake = engine().await;
    let client = client(vec![endpoint("chat", &fake)]);

    // Act
    let response = client.chat(None).complete(&question()).await.unwrap();

    // Assert
    assert_eq!(response.content, expected_answer());
    assert_eq!(response.model, "fake-chat");
    assert!(response.usage.prompt_tokens > 0 && response.usage.completion_tokens > 0);
    let request = fake.last_request(Route::Chat).unwrap();
    assert_eq!(request["max_tokens"], 200);
    assert!(request.get("stream").is_none(), "{request}");
    assert_eq!(client.stats().prompt_tokens, response.usage.prompt_tokens);
}

#[tokio::test]
async fn stream_yields_text_and_usage() {
    // Arrange
    let fake = engine().await;
    let client = client(vec![endpoint("chat", &fake)]);

    // Act
    let stream = client.chat(None).stream(&question()).await.unwrap();
    let (text, usage, errors, pieces) = drain(stream).await;

    // Assert
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(text, expected_answer());
    assert!(pieces > 1, "the answer arrives in pieces");
    assert_eq!(usage.len(), 1);
    assert_eq!(
        usage[0].completion_tokens,
        text.split_whitespace().count() as u64
    );
    let request = fake.last_request(Route::Chat).unwrap();
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"]["include_usage"], true);
    assert_eq!(client.stats().completion_tokens, usage[0].completion_tokens);
}

#[tokio::test]
async fn stream_cut_before_first_token_fails_over() {
    // Arrange
    let broken = engine().await;
    let healthy = engine().await;
    broken.push_fault(Route::Chat, Fault::CutStream { after_chunks: 0 });
    let chat = client(vec![
        endpoint("broken", &broken),
        endpoint("healthy", &healthy),
    ])
    .chat(None);

    // Act
    let stream = chat.stream(&question()).await.unwrap();
    let (text, _, errors, _) = drain(stream).await;

    // Assert
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(text, expected_answer());
    assert_eq!(broken.calls(Route::Chat), 1);
    assert_eq!(healthy.calls(Route::Chat), 1);
}

#[tokio::test(start_paused = true)]
async fn stream_without_first_token_in_time_fails_over() {
    // Arrange
    let clock = Frozen::hold();
    let silent = engine().await;
    let healthy = engine().await;
    silent.push_fault(Route::Chat, Fault::StallStream { after_chunks: 0 });
    let chat = client(vec![
        endpoint("silent", &silent),
        endpoint("healthy", &healthy),
    ])
    .chat(None);
    let question = question();

    // Act: the clock up to 1 ms before the first-token timeout, then to it.
    let mut call = pin!(async { drain(chat.stream(&question).await.unwrap()).await });
    drive_until(&mut call, "the silent engine has the request", || {
        silent.calls(Route::Chat) == 1
    })
    .await;
    clock.advance(TIMEOUT - Duration::from_millis(1)).await;
    still_pending(&mut call, "gave up on the silent engine before the timeout").await;
    let healthy_before = healthy.calls(Route::Chat);
    clock.advance(Duration::from_millis(1)).await;
    let (text, _, errors, _) = finish(&mut call).await;

    // Assert
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(text, expected_answer());
    assert_eq!(healthy_before, 0, "failed over before the timeout");
    assert_eq!(
        clock.elapsed(),
        TIMEOUT,
        "the first-token timeout cut the silent stream"
    );
}

#[tokio::test]
async fn stream_cut_after_first_token_ends_with_incomplete_error() {
    // Arrange
    let broken = engine().await;
    let healthy = engine().await;
    broken.push_fault(Route::Chat, Fault::CutStream { after_chunks: 2 });
    let client = client(vec![
        endpoint("broken", &broken),
        endpoint("healthy", &healthy),
    ]);

    // Act
    let stream = client.chat(None).stream(&question()).await.unwrap();
    let (text, usage, errors, pieces) = drain(stream).await;

    // Assert
    assert_eq!(pieces, 2);
    assert!(expected_answer().starts_with(&text), "{text:?}");
    assert!(usage.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(&errors[0], ModelError::Transient { message, .. } if message == INTERRUPTED),
        "{:?}",
        errors[0]
    );
    assert_eq!(healthy.calls(Route::Chat), 0, "never splice two answers");
    assert_eq!(client.stats().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn stream_silent_after_first_token_ends_after_the_idle_timeout() {
    // Arrange
    let clock = Frozen::hold();
    let fake = engine().await;
    fake.push_fault(Route::Chat, Fault::StallStream { after_chunks: 1 });
    let chat = client(vec![endpoint("stalls", &fake)]).chat(None);

    // Act: the first token, then the clock up to 1 ms before the idle timeout, then to it.
    let mut stream = chat.stream(&question()).await.unwrap();
    let first = stream.next().await;
    let mut rest = pin!(drain(stream));
    still_pending(&mut rest, "the stream ended before the idle timeout").await;
    clock.advance(IDLE_TIMEOUT - Duration::from_millis(1)).await;
    still_pending(&mut rest, "the stream ended before the idle timeout").await;
    clock.advance(Duration::from_millis(1)).await;
    let (_, _, errors, more) = finish(&mut rest).await;

    // Assert
    assert!(matches!(first, Some(Ok(ChatDelta::Text(_)))), "{first:?}");
    assert_eq!(more, 0);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        clock.elapsed(),
        IDLE_TIMEOUT,
        "the idle timeout ended the stream"
    );
}

#[tokio::test]
async fn api_keys_never_appear_in_debug_or_errors() {
    // Arrange
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let fake = FakeEngine::builder()
        .dimensions(DIMS)
        .required_api_key("sk-live-GOOD-0123456789")
        .start()
        .await;
    let mut ep = endpoint("keyed", &fake);
    ep.api_keys = vec![
        "sk-live-BAD-9876543210".into(),
        "sk-live-GOOD-0123456789".into(),
    ];
    let config = config(vec![ep]);
    let client = EngineClient::new(config.clone()).unwrap();
    let embedder = client.embedder(options());
    fake.push_fault(Route::Chat, Fault::Status(400));

    // Act
    let ok = embedder.embed(&texts(&["leave"]), InputKind::Query).await;
    let chat_err = client.chat(None).complete(&question()).await.unwrap_err();
    let shown = format!(
        "{config:?} {client:?} {embedder:?} {:?} {chat_err} {chat_err:?} {}",
        client.chat(None),
        serde_json::to_string(&config).unwrap()
    );
    let logged = logs.text();

    // Assert
    assert!(ok.is_ok(), "{ok:?}");
    for key in ["sk-live-BAD", "sk-live-GOOD", "9876543210", "0123456789"] {
        assert!(!shown.contains(key), "{key} shown in {shown}");
        assert!(!logged.contains(key), "{key} logged in {logged}");
    }
    assert_eq!(logged.matches("the key is disabled").count(), 1, "{logged}");
    assert!(logged.contains("engine call"), "{logged}");
}

#[tokio::test]
async fn embeddings_are_normalised_and_in_input_order() {
    // Arrange
    let fake = FakeEngine::builder()
        .dimensions(DIMS)
        .reverse_embedding_order(true)
        .start()
        .await;
    let embedder = client(vec![endpoint("e5", &fake)]).embedder(RemoteEmbedderOptions {
        query_prefix: "query: ".to_owned(),
        passage_prefix: "passage: ".to_owned(),
        ..options()
    });
    let inputs = texts(&["annual leave", "remote work", "expense reports"]);

    // Act
    let vectors = embedder.embed(&inputs, InputKind::Passage).await.unwrap();

    // Assert
    for (text, vector) in inputs.iter().zip(&vectors) {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert_close(vector, &fake_embedding(text, DIMS), text);
    }
    let sent = fake.last_request(Route::Embeddings).unwrap();
    assert_eq!(sent["input"][0], "passage: annual leave");
    assert_eq!(sent["model"], "fake-embed");
}

#[tokio::test]
async fn batches_split_by_batch_size() {
    // Arrange
    let fake = engine().await;
    let embedder = client(vec![endpoint("e", &fake)]).embedder(RemoteEmbedderOptions {
        batch_size: 3,
        ..options()
    });
    let inputs: Vec<String> = (0..7).map(|i| format!("document number {i}")).collect();

    // Act
    let vectors = embedder.embed(&inputs, InputKind::Passage).await.unwrap();

    // Assert
    assert_eq!(fake.calls(Route::Embeddings), 3);
    assert_eq!(fake.embedded_inputs(), 7);
    assert_eq!(vectors.len(), inputs.len());
    for (text, vector) in inputs.iter().zip(&vectors) {
        assert_close(vector, &fake_embedding(text, DIMS), text);
    }
}

#[tokio::test]
async fn empty_input_makes_no_call() {
    // Arrange
    let fake = engine().await;
    let embedder = client(vec![endpoint("e", &fake)]).embedder(options());

    // Act
    let vectors = embedder.embed(&[], InputKind::Passage).await.unwrap();

    // Assert
    assert!(vectors.is_empty());
    assert_eq!(fake.calls(Route::Embeddings), 0);
}

#[tokio::test]
async fn weights_share_the_calls_between_endpoints() {
    // Arrange
    let heavy = engine().await;
    let light = engine().await;
    let mut heavy_ep = endpoint("heavy", &heavy);
    heavy_ep.weight = 3;
    let embedder = client(vec![heavy_ep, endpoint("light", &light)]).embedder(options());

    // Act
    for _ in 0..8 {
        embedder
            .embed(&texts(&["leave"]), InputKind::Query)
            .await
            .unwrap();
    }

    // Assert
    assert_eq!(heavy.calls(Route::Embeddings), 6);
    assert_eq!(light.calls(Route::Embeddings), 2);
}

#[tokio::test]
async fn endpoints_without_the_model_kind_are_not_used() {
    // Arrange
    let embed_only = engine().await;
    let chat_only = engine().await;
    let mut e = endpoint("embed-only", &embed_only);
    e.chat_model = None;
    let mut c = endpoint("chat-only", &chat_only);
    c.embed_model = None;
    let client = client(vec![e, c]);

    // Act
    for _ in 0..2 {
        client
            .embedder(options())
            .embed(&texts(&["leave"]), InputKind::Query)
            .await
            .unwrap();
        client.chat(None).complete(&question()).await.unwrap();
    }

    // Assert
    assert_eq!(embed_only.calls(Route::Chat), 0);
    assert_eq!(chat_only.calls(Route::Embeddings), 0);
    assert_eq!(embed_only.calls(Route::Embeddings), 2);
    assert_eq!(chat_only.calls(Route::Chat), 2);
}

#[tokio::test]
async fn no_endpoint_for_chat_is_a_permanent_error_naming_the_setting() {
    // Arrange
    let fake = engine().await;
    let mut e = endpoint("embed-only", &fake);
    e.chat_model = None;
    let client = client(vec![e]);

    // Act
    let err = client.chat(None).complete(&question()).await.unwrap_err();

    // Assert
    assert!(matches!(err, ModelError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("chat_model"), "{err}");
    assert!(!client.serves(kb_engine::ModelKind::Chat));
}

#[tokio::test]
async fn logical_model_names_send_each_endpoints_own_model_id() {
    // Arrange: "smart" is gpt-4o on one endpoint and a Qwen model on the other.
    let (openai, vllm) = (engine().await, engine().await);
    let mut ep_openai = endpoint("openai", &openai);
    ep_openai.models = BTreeMap::from([
        ("smart".to_owned(), "gpt-4o".to_owned()),
        ("e5".to_owned(), "intfloat/e5-small".to_owned()),
    ]);
    let mut ep_vllm = endpoint("vllm", &vllm);
    ep_vllm.embed_model = None;
    ep_vllm.models = BTreeMap::from([("smart".to_owned(), "Qwen2.5-72B".to_owned())]);
    let client = client(vec![ep_openai, ep_vllm]);
    let smart = client.chat(Some("smart".to_owned()));
    let embedder = client.embedder(RemoteEmbedderOptions {
        model_alias: Some("e5".to_owned()),
        ..options()
    });

    // Act
    for _ in 0..2 {
        smart.complete(&question()).await.unwrap();
    }
    embedder
        .embed(&texts(&["leave"]), InputKind::Query)
        .await
        .unwrap();

    // Assert
    let sent = |fake: &FakeEngine, route| fake.last_request(route).unwrap()["model"].clone();
    assert_eq!(sent(&openai, Route::Chat), "gpt-4o");
    assert_eq!(sent(&vllm, Route::Chat), "Qwen2.5-72B");
    assert_eq!(sent(&openai, Route::Embeddings), "intfloat/e5-small");
    assert_eq!(vllm.calls(Route::Embeddings), 0);
    assert_eq!(embedder.model_id(), "engine:intfloat/e5-small");
    assert!(client.serves_model("smart"));
}

#[tokio::test]
async fn a_logical_model_no_endpoint_serves_fails_at_once_naming_it() {
    // Arrange
    let fake = engine().await;
    let client = client(vec![endpoint("e", &fake)]);

    // Act
    let err = client
        .chat(Some("smart".to_owned()))
        .complete(&question())
        .await
        .unwrap_err();

    // Assert
    assert!(matches!(err, ModelError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("\"smart\""), "{err}");
    assert!(
        err.to_string().contains("engine.endpoints[].models"),
        "{err}"
    );
    assert_eq!(fake.calls(Route::Chat), 0);
    assert!(!client.serves_model("smart"));
}

#[tokio::test]
async fn token_budget_leaves_room_for_prefix_and_special_tokens() {
    // Arrange
    let fake = engine().await;
    let embedder = client(vec![endpoint("e", &fake)]).embedder(RemoteEmbedderOptions {
        max_input_tokens: 512,
        query_prefix: "query: ".to_owned(),
        passage_prefix: "passage: ".to_owned(),
        ..options()
    });

    // Act
    let budget = embedder.max_input_tokens();
    let count = embedder.count_tokens("Employees get 25 days of paid leave.");

    // Assert
    assert!(budget < 512 && budget > 500, "{budget}");
    assert!(count >= 9, "{count}");
}

#[test]
fn client_without_endpoints_is_refused_with_the_key_named() {
    // Act
    let err = EngineClient::new(EngineConfig::default()).unwrap_err();

    // Assert
    assert!(err.to_string().starts_with("engine.endpoints:"), "{err}");
}

#[tokio::test]
async fn input_type_is_sent_only_when_configured() {
    // Arrange
    let fake = engine().await;
    let plain = client(vec![endpoint("e", &fake)]).embedder(options());
    let typed = client(vec![endpoint("e", &fake)]).embedder(RemoteEmbedderOptions {
        send_input_type: true,
        ..options()
    });

    // Act + Assert
    plain
        .embed(&texts(&["leave"]), InputKind::Query)
        .await
        .unwrap();
    assert!(
        fake.last_request(Route::Embeddings)
            .unwrap()
            .get("input_type")
            .is_none()
    );
    typed
        .embed(&texts(&["leave"]), InputKind::Query)
        .await
        .unwrap();
    assert_eq!(
        fake.last_request(Route::Embeddings).unwrap()["input_type"],
        "query"
    );
    typed
        .embed(&texts(&["leave"]), InputKind::Passage)
        .await
        .unwrap();
    assert_eq!(
        fake.last_request(Route::Embeddings).unwrap()["input_type"],
        "passage"
    );
}
