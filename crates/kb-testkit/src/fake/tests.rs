use super::*;
use serde_json::json;
use std::time::Instant;

async fn post(engine: &FakeEngine, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", engine.base_url()))
        .json(&body)
        .send()
        .await
        .expect("request to the fake engine")
}

#[tokio::test]
async fn embeddings_answer_one_vector_per_input_and_count_them() {
    // Arrange
    let engine = FakeEngine::builder().dimensions(16).start().await;

    // Act
    let response = post(
        &engine,
        "/embeddings",
        json!({"model": "m", "input": ["a b", "c"]}),
    )
    .await;
    let body: Value = response.json().await.unwrap();

    // Assert
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["embedding"].as_array().unwrap().len(), 16);
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(engine.calls(Route::Embeddings), 1);
    assert_eq!(engine.embedded_inputs(), 2);
}

#[tokio::test]
async fn embedding_requests_are_logged_with_their_outcome_and_overlap_is_measured() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.set_embedding_latency(Duration::from_millis(100));
    engine.push_fault(Route::Embeddings, Fault::RateLimited { retry_after: None });
    let body = |text: &str| json!({"model": "m", "input": [text]});

    // Act
    let (limited, ok) = tokio::join!(
        post(&engine, "/embeddings", body("first")),
        post(&engine, "/embeddings", body("second")),
    );

    // Assert
    assert_eq!(limited.status(), 429);
    assert_eq!(ok.status(), 200);
    let mut log = engine.embedding_requests();
    log.sort_by(|a, b| a.inputs.cmp(&b.inputs));
    assert_eq!(
        log,
        [
            EmbeddingRequest {
                inputs: vec!["first".into()],
                succeeded: false
            },
            EmbeddingRequest {
                inputs: vec!["second".into()],
                succeeded: true
            },
        ]
    );
    assert_eq!(engine.max_embeddings_in_flight(), 2);
    engine.reset_counters();
    assert!(engine.embedding_requests().is_empty());
}

#[tokio::test]
async fn queued_faults_apply_once_in_order() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.push_fault(
        Route::Chat,
        Fault::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
        },
    );
    engine.push_fault(Route::Chat, Fault::Status(502));
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});

    // Act
    let first = post(&engine, "/chat/completions", body.clone()).await;
    let second = post(&engine, "/chat/completions", body.clone()).await;
    let third = post(&engine, "/chat/completions", body).await;

    // Assert
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "2");
    assert_eq!(second.status(), 502);
    assert_eq!(third.status(), 200);
    assert_eq!(engine.calls(Route::Chat), 3);
}

#[tokio::test]
async fn stream_ends_with_usage_and_done() {
    // Arrange
    let engine = FakeEngine::start().await;
    let body = json!({
        "model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "[1] Leave is 25 days. More text."}],
    });

    // Act
    let text = post(&engine, "/chat/completions", body)
        .await
        .text()
        .await
        .unwrap();

    // Assert
    assert!(text.contains("\"usage\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("\"content\":\"25 \""), "{text}");
}

#[tokio::test]
async fn cut_stream_closes_the_connection_without_done() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.push_fault(Route::Chat, Fault::CutStream { after_chunks: 1 });
    let body = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "[1] Leave is 25 days."}]});

    // Act
    let result = post(&engine, "/chat/completions", body).await.text().await;

    // Assert
    assert!(result.is_err(), "expected a broken body, got {result:?}");
}

#[tokio::test]
async fn one_shot_replies_come_first_and_every_request_is_recorded() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.push_chat_reply("first");
    let body = |q: &str| json!({"model": "m", "messages": [{"role": "user", "content": q}]});

    // Act
    let first: Value = post(&engine, "/chat/completions", body("a"))
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post(&engine, "/chat/completions", body("b"))
        .await
        .json()
        .await
        .unwrap();

    // Assert
    assert_eq!(first["choices"][0]["message"]["content"], "first");
    assert_eq!(second["choices"][0]["message"]["content"], "I don't know.");
    let contents: Vec<Value> = engine
        .requests(Route::Chat)
        .iter()
        .map(|r| r["messages"][0]["content"].clone())
        .collect();
    assert_eq!(contents, [json!("a"), json!("b")]);
}

#[tokio::test]
async fn the_cited_source_can_be_chosen() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.set_cited_source(2);
    let body = json!({"model": "m", "messages": [{"role": "user",
        "content": "[1] Leave is 25 days.\n[2] Lockers are upstairs. More.\nQuestion: x"}]});

    // Act
    let answer: Value = post(&engine, "/chat/completions", body)
        .await
        .json()
        .await
        .unwrap();

    // Assert
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Lockers are upstairs. [2]"
    );
}

#[tokio::test]
async fn a_miscited_answer_quotes_one_source_and_cites_another() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.set_cited_source(2);
    engine.set_miscited_as(Some(1));
    let body = json!({"model": "m", "messages": [{"role": "user",
        "content": "[1] Leave is 25 days.\n[2] Lockers are upstairs. More.\nQuestion: x"}]});

    // Act
    let answer: Value = post(&engine, "/chat/completions", body)
        .await
        .json()
        .await
        .unwrap();

    // Assert
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Lockers are upstairs. [1]"
    );
}

#[tokio::test]
async fn a_client_that_leaves_a_slow_stream_is_counted_as_abandoned() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.set_stream_chunk_delay(Duration::from_millis(50));
    engine.set_chat_reply(Some("word ".repeat(200)));
    let body = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "x"}]});
    let mut response = post(&engine, "/chat/completions", body).await;
    response.chunk().await.unwrap();

    // Act
    drop(response);
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Assert
    assert_eq!(engine.abandoned_streams(), 1);
    assert!(
        engine.streamed_chunks() < 50,
        "{}",
        engine.streamed_chunks()
    );
}

#[tokio::test]
async fn wrong_api_key_is_refused_with_401() {
    // Arrange
    let engine = FakeEngine::builder()
        .required_api_key("sk-right")
        .start()
        .await;

    // Act
    let response = reqwest::Client::new()
        .post(format!("{}/embeddings", engine.base_url()))
        .bearer_auth("sk-wrong")
        .json(&json!({"model": "m", "input": ["x"]}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 401);
    assert_eq!(engine.embedded_inputs(), 0);
}

#[tokio::test]
async fn hanging_request_is_released_when_the_engine_is_dropped() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.push_fault(Route::Embeddings, Fault::Hang);
    let url = format!("{}/embeddings", engine.base_url());
    let started = Instant::now();
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"model": "m", "input": ["x"]}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Act
    drop(engine);
    let outcome = tokio::time::timeout(Duration::from_secs(2), request).await;

    // Assert
    assert!(outcome.is_ok(), "request still hanging after the drop");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn failure_rate_one_fails_every_call_until_cleared() {
    // Arrange
    let engine = FakeEngine::start().await;
    engine.set_failure_rate(Route::Embeddings, 1.0, Fault::Status(503));
    let body = json!({"model": "m", "input": ["x"]});

    // Act
    let failed = post(&engine, "/embeddings", body.clone()).await.status();
    engine.clear_faults();
    let ok = post(&engine, "/embeddings", body).await.status();

    // Assert
    assert_eq!(failed, 503);
    assert_eq!(ok, 200);
}
