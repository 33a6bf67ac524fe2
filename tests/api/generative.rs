//! Generative answers through an OpenAI-compatible chat engine (the fake one from kb-testkit).

use crate::helpers::app_with_chat;
use kb_testkit::{FakeEngine, Fault, Route};
use serde_json::json;

#[tokio::test]
async fn generated_answers_keep_valid_citations_and_report_usage() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;

    let answer = app.ask("Where is my locker?").await;

    assert_eq!(answer["mode"], "generative", "{answer}");
    assert!(
        answer["answer"].as_str().unwrap().ends_with("[1]"),
        "{answer}"
    );
    assert_eq!(answer["citations"][0]["n"], 1);
    assert_eq!(answer["citations"][0]["document"], "lockers.md");
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(engine.calls(Route::Chat), 1);
    let prompt = engine.last_request(Route::Chat).unwrap().to_string();
    assert!(prompt.contains("[1] Lockers (lockers.md)"), "{prompt}");

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"kb_engine_calls_total{endpoint="fake",model="fake-chat",kind="chat",outcome="ok"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"kb_tokens_total{model="fake-chat",kind="chat",direction="out"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn citations_naming_no_retrieved_source_are_removed_and_counted() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    engine.set_chat_reply(Some(
        "Lockers are on the second floor [1]. Also see [7].".into(),
    ));

    let answer = app.ask("Where is my locker?").await;

    assert_eq!(
        answer["answer"],
        "Lockers are on the second floor [1]. Also see."
    );
    assert_eq!(answer["removed_citations"], 1);
    assert_eq!(answer["citations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unavailable_engine_gives_503_with_retry_after() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    engine.set_failure_rate(Route::Chat, 1.0, Fault::Status(503));

    let response = app
        .post_request("/v1/ask", crate::helpers::ADMIN_TOKEN)
        .json(&serde_json::json!({"question": "Where is my locker?"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_unavailable");
}

#[tokio::test]
async fn questions_with_no_relevant_source_never_reach_the_chat_model() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;

    let answer = app.ask("Who won the football world cup in 1998?").await;

    assert_eq!(answer["mode"], "not_found");
    assert_eq!(engine.calls(Route::Chat), 0);
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_a_json_408() {
    // Arrange: the chat model takes longer than the server allows.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = crate::helpers::app_with_fake_engine(&engine, |s| {
        s.server.request_timeout_secs = 1;
        s.engine.timeouts.request_ms = 10_000;
    })
    .await;
    engine.push_fault(Route::Chat, Fault::Delay(std::time::Duration::from_secs(4)));

    // Act
    let (status, body) = app
        .post("/v1/ask", &json!({"question": "Where is my locker?"}))
        .await;

    // Assert
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.request_timeout_secs"),
        "{body}"
    );
}
