//! `POST /v1/ask/stream`: server-sent events.

use crate::generative::{assert_cites_only, first_sentence, ingest_more_lockers, locker_sources};
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
    stream_body_as(app, credential, &json!({ "question": question })).await
}

/// [`stream_as`] with a whole request body (`question`, `retrieval`, `top_k`, ...).
pub async fn stream_body_as(
    app: &TestApp,
    credential: &str,
    body: &Value,
) -> (u16, String, Vec<(String, Value)>) {
    let response = app
        .post_request("/v1/ask/stream", credential)
        .json(body)
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
    // Arrange: three locker documents; the model cites the second source only.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_cited_source(2);

    // Act
    let (status, _, events) = stream(&app, "Where is my locker?").await;

    // Assert: `sources` lists every retrieved source, numbered as the model saw them ...
    assert_eq!(status, 200);
    let names = names(&events);
    assert_eq!(names.first(), Some(&"sources"));
    assert_eq!(names.last(), Some(&"done"), "{events:?}");
    let prompt_sources = locker_sources(&engine.last_request(Route::Chat).unwrap());
    let sources = events[0].1["sources"].as_array().unwrap();
    let listed: Vec<(u64, &str)> = sources
        .iter()
        .map(|s| (s["n"].as_u64().unwrap(), s["document"].as_str().unwrap()))
        .collect();
    let shown: Vec<(u64, &str)> = prompt_sources
        .iter()
        .map(|s| (u64::from(s.n), s.document.as_str()))
        .collect();
    assert_eq!(listed, shown, "{:#}", events[0].1);
    // ... the text arrives in pieces ...
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().filter(|n| **n == "delta").count() > 1,
        "{events:?}"
    );
    // ... and `done` cites [2] only: the very source listed second.
    let done = &events.last().unwrap().1;
    assert_eq!(done["mode"], "generative");
    assert_eq!(done["answer"], deltas.trim());
    let quoted = format!("{} [2]", first_sentence(&prompt_sources[1].document));
    assert!(
        deltas.trim().ends_with(&quoted),
        "expected an answer ending {quoted:?}: {deltas:?}"
    );
    assert_cites_only(&done["citations"], &prompt_sources[1]);
    assert_eq!(done["citations"], json!([sources[1]]), "{done:#}");
    assert_eq!(done["removed_citations"], 0, "{done}");
    assert!(done["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_streamed_answer_drops_markers_naming_no_source_and_counts_them() {
    // Arrange: three sources retrieved; the model cites [2] and a [9] that names none.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_chat_reply(Some(
        "Lockers are on the second floor [2]. Also see [9].".into(),
    ));

    // Act
    let (status, _, events) = stream(&app, "Where is my locker?").await;

    // Assert
    assert_eq!(status, 200);
    let prompt_sources = locker_sources(&engine.last_request(Route::Chat).unwrap());
    assert_eq!(
        events[0].1["sources"].as_array().unwrap().len(),
        3,
        "{:#}",
        events[0].1
    );
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done", "{events:?}");
    assert_eq!(
        done["answer"], "Lockers are on the second floor [2]. Also see.",
        "{done}"
    );
    assert_eq!(done["removed_citations"], 1, "{done}");
    assert_cites_only(&done["citations"], &prompt_sources[1]);
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
