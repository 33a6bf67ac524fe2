//! `POST /v1/ask/stream`: server-sent events.

use crate::helpers::{TestApp, app_with_chat, shared_app};
use kb_testkit::{FakeEngine, Fault, Route};
use serde_json::{Value, json};

/// (event name, parsed data) of every event in the response body, asked with the admin token.
async fn stream(app: &TestApp, question: &str) -> (u16, String, Vec<(String, Value)>) {
    stream_as(app, crate::helpers::ADMIN_TOKEN, question).await
}

/// [`stream`] with `credential` as the bearer token.
pub async fn stream_as(
    app: &TestApp,
    credential: &str,
    question: &str,
) -> (u16, String, Vec<(String, Value)>) {
    let response = app
        .post_request("/v1/ask/stream", credential)
        .json(&json!({ "question": question }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    (status, content_type, parse_events(&body))
}

/// (event name, parsed data) of every event of a server-sent event body.
pub fn parse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).unwrap_or(Value::String(d.into())));
                }
            }
            Some((name?, data.unwrap_or(Value::Null)))
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

#[tokio::test]
async fn extractive_answers_stream_sources_then_text_then_the_checked_answer() {
    let app = shared_app().app();

    let (status, content_type, events) =
        stream(&app, "How many vacation days do new employees get?").await;

    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(names(&events), ["sources", "delta", "done"], "{events:?}");
    let sources = events[0].1["sources"].as_array().unwrap();
    assert!(sources.iter().any(|s| s["document"] == "leave-policy.md"));
    let done = &events[2].1;
    assert_eq!(done["mode"], "extractive");
    assert_eq!(events[1].1["text"], done["answer"]);
    assert!(
        done["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["document"] == "leave-policy.md")
    );
}

#[tokio::test]
async fn generated_answers_stream_deltas_and_end_with_citations_and_usage() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;

    let (status, _, events) = stream(&app, "Where is my locker?").await;

    assert_eq!(status, 200);
    let names = names(&events);
    assert_eq!(names.first(), Some(&"sources"));
    assert_eq!(names.last(), Some(&"done"), "{events:?}");
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().filter(|n| **n == "delta").count() > 1,
        "{events:?}"
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["mode"], "generative");
    assert_eq!(done["answer"], deltas.trim());
    assert_eq!(done["citations"][0]["document"], "lockers.md");
    assert!(done["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_stream_cut_after_the_first_token_ends_with_an_error_event() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    engine.push_fault(Route::Chat, Fault::CutStream { after_chunks: 2 });

    let (status, _, events) = stream(&app, "Where is my locker?").await;

    assert_eq!(status, 200);
    let names = names(&events);
    assert_eq!(names.last(), Some(&"error"), "{events:?}");
    assert!(!names.contains(&"done"));
    let error = &events.last().unwrap().1["error"];
    assert_eq!(error["code"], "upstream_unavailable");
    assert!(
        error["message"].as_str().unwrap().contains("incomplete"),
        "{error}"
    );
}

#[tokio::test]
async fn an_engine_down_before_the_first_byte_is_a_plain_503() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    engine.set_failure_rate(Route::Chat, 1.0, Fault::Status(502));

    let (status, _, _) = stream(&app, "Where is my locker?").await;

    assert_eq!(status, 503);
}
