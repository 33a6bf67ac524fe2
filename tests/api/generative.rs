//! Generative answers through an OpenAI-compatible chat engine (the fake one from kb-testkit).

use crate::helpers::{TestApp, app_with_chat};
use kb_testkit::{FakeEngine, Fault, PromptSource, Route};
use serde_json::{Value, json};

/// Every document the locker questions retrieve: the harness's `lockers.md` and the two of
/// [`ingest_more_lockers`], as (document, first sentence).
pub(crate) const LOCKER_DOCUMENTS: [(&str, &str); 3] = [
    (
        "lockers.md",
        "Every employee gets a personal locker on the second floor.",
    ),
    (
        "locker-keys.md",
        "A lost locker key is replaced by reception for a fee of ten euros.",
    ),
    (
        "locker-cleaning.md",
        "Empty your locker on your last working day; the facilities team cleans every locker in August.",
    ),
];

/// Ingest two more documents about lockers beside the harness's `lockers.md`, so that a locker
/// question retrieves several sources and "only the cited source is listed" can fail. The
/// folder must live as long as the test.
pub(crate) async fn ingest_more_lockers(app: &TestApp) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("locker-keys.md"),
        format!("# Locker keys\n\n{}\n", LOCKER_DOCUMENTS[1].1),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("locker-cleaning.md"),
        format!("# Locker cleaning\n\n{}\n", LOCKER_DOCUMENTS[2].1),
    )
    .unwrap();
    app.ingest(&[dir.path().to_path_buf()]).await;
    dir
}

/// The sources of an answer request to the fake engine (its last message), checked to be the
/// three locker documents, each once.
#[track_caller]
pub(crate) fn locker_sources(request: &Value) -> Vec<PromptSource> {
    crate::helpers::checked_prompt_sources(request, &LOCKER_DOCUMENTS.map(|(d, _)| d))
}

/// The first sentence of a locker document's text: what the fake model quotes (after the
/// document's heading) when it cites it.
#[track_caller]
pub(crate) fn first_sentence(document: &str) -> &'static str {
    LOCKER_DOCUMENTS
        .iter()
        .find(|(d, _)| *d == document)
        .unwrap_or_else(|| panic!("{document} is not a locker document"))
        .1
}

/// `citations` (an answer's, or a facade's `sources`) name exactly `source`, by its number,
/// document and title.
#[track_caller]
pub(crate) fn assert_cites_only(citations: &Value, source: &PromptSource) {
    let cited: Vec<(u64, &str, &str)> = citations
        .as_array()
        .unwrap_or_else(|| panic!("not a citations array: {citations}"))
        .iter()
        .map(|c| {
            (
                c["n"].as_u64().unwrap(),
                c["document"].as_str().unwrap(),
                c["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cited,
        [(
            u64::from(source.n),
            source.document.as_str(),
            source.title.as_str()
        )],
        "{citations:#}"
    );
}

#[tokio::test]
async fn generated_answers_keep_valid_citations_and_report_usage() {
    // Arrange: three locker documents; the model cites the second source only.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_cited_source(2);

    // Act
    let answer = app.ask("Where is my locker?").await;

    // Assert: the model saw every locker document; the answer cites the one it saw as [2].
    assert_eq!(answer["mode"], "generative", "{answer}");
    assert_eq!(engine.calls(Route::Chat), 1);
    let sources = locker_sources(&engine.last_request(Route::Chat).unwrap());
    let second = &sources[1];
    let quoted = format!("{} [2]", first_sentence(&second.document));
    assert!(
        answer["answer"].as_str().unwrap().ends_with(&quoted),
        "expected an answer ending {quoted:?}: {answer}"
    );
    assert_cites_only(&answer["citations"], second);
    assert_eq!(answer["removed_citations"], 0, "{answer}");
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

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
async fn a_miscited_answer_cites_the_passage_it_quotes_in_ask_stream_and_facade() {
    // Arrange: three locker documents; the model quotes the second source but writes [3].
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_cited_source(2);
    engine.set_miscited_as(Some(3));
    let question = "Where is my locker?";

    // Act
    let answer = app.ask(question).await;
    let (status, _, events) =
        crate::stream::stream_as(&app, crate::helpers::ADMIN_TOKEN, question).await;
    let completion = app
        .post_request("/v1/chat/completions", crate::helpers::ADMIN_TOKEN)
        .json(&json!({"model": "kb", "messages": [{"role": "user", "content": question}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(completion.status(), 200);
    let completion: Value = completion.json().await.unwrap();

    // Assert: every route cites the source the sentence was quoted from, as [2].
    let sources = locker_sources(&engine.last_request(Route::Chat).unwrap());
    let second = &sources[1];
    let quoted = format!("{} [2]", first_sentence(&second.document));
    assert!(
        answer["answer"].as_str().unwrap().ends_with(&quoted),
        "expected an answer ending {quoted:?}: {answer}"
    );
    assert_cites_only(&answer["citations"], second);
    assert_eq!(answer["moved_citations"], 1, "{answer}");
    assert_eq!(answer["unsupported_sentences"], json!([]), "{answer}");

    assert_eq!(status, 200);
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    assert_cites_only(&done["citations"], second);
    assert_eq!(done["moved_citations"], 1, "{done}");

    assert_cites_only(&completion["sources"], second);
    let content = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(content.contains(&quoted), "{content}");
    assert!(app.metrics().await.contains("kb_citations_moved_total"));
}

#[tokio::test]
async fn a_sentence_no_source_supports_is_flagged_and_cites_nothing() {
    // Arrange: the model adds a claim of its own and cites a locker source for it.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_chat_reply(Some(
        "Employees may keep a bicycle in the locker room overnight [1].".into(),
    ));

    // Act
    let answer = app.ask("Where is my locker?").await;

    // Assert
    assert_eq!(
        answer["answer"], "Employees may keep a bicycle in the locker room overnight.",
        "{answer}"
    );
    assert_eq!(answer["citations"], json!([]), "{answer}");
    assert_eq!(
        answer["unsupported_sentences"],
        json!(["Employees may keep a bicycle in the locker room overnight."]),
        "{answer}"
    );
    assert_eq!(answer["removed_citations"], 1, "{answer}");
}

#[tokio::test]
async fn citations_naming_no_retrieved_source_are_removed_and_counted() {
    // Arrange: three sources retrieved; the model cites [2] and a [9] that names none.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_chat_reply(Some(
        "Lockers are on the second floor [2]. Also see [9].".into(),
    ));

    // Act
    let answer = app.ask("Where is my locker?").await;

    // Assert
    let sources = locker_sources(&engine.last_request(Route::Chat).unwrap());
    assert_eq!(
        answer["answer"], "Lockers are on the second floor [2]. Also see.",
        "{answer}"
    );
    assert_eq!(answer["removed_citations"], 1, "{answer}");
    assert_cites_only(&answer["citations"], &sources[1]);
}

#[tokio::test]
async fn an_unavailable_engine_gives_503_with_retry_after() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    engine.set_failure_rate(Route::Chat, 1.0, Fault::Status(503));

    let response = app
        .post_request("/v1/ask", crate::helpers::ADMIN_TOKEN)
        .json(&json!({"question": "Where is my locker?"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.unwrap();
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
