//! Follow-up questions: prior `messages` make the question a follow-up, rewritten into a
//! standalone question (by the chat model, or without one by joining it to the previous user
//! question) that retrieval and the answer use.

use crate::generative::{assert_cites_only, first_sentence, ingest_more_lockers, locker_sources};
use crate::helpers::{TestApp, app_with_fake_engine, shared_app};
use kb_testkit::{FakeEngine, Route};
use serde_json::{Value, json};

/// A server whose embeddings and answers both come from the fake engine, so that the test sees
/// what was embedded for retrieval; three documents about lockers are ingested (the folder of
/// the last two is the third item), and the model cites the second source only.
async fn app_with_fake_models(
    engine: &FakeEngine,
) -> (TestApp, tempfile::TempDir, tempfile::TempDir) {
    let (app, dir) = app_with_fake_engine(engine, |s| {
        s.engine.endpoints[0].embed_model = Some("fake-embed".into());
        s.embedder.provider = kb_config::EmbedderProvider::Engine;
        s.embedder.engine.dimensions = 384;
        // The fake embedder is a bag of words: a short question shares few of a passage's.
        s.answer.min_score = 0.1;
    })
    .await;
    let more = ingest_more_lockers(&app).await;
    engine.set_cited_source(2);
    (app, dir, more)
}

fn conversation() -> Value {
    json!([
        {"role": "user", "content": "Where is my locker?"},
        {"role": "assistant", "content": "Every employee gets a personal locker on the second floor. [1]"},
    ])
}

#[tokio::test]
async fn a_follow_up_is_rewritten_by_the_chat_model_and_retrieval_uses_the_rewrite() {
    // Arrange
    let engine = FakeEngine::start().await;
    let (app, _dir, _more) = app_with_fake_models(&engine).await;
    engine.reset_counters();
    let embeds_before = engine.requests(Route::Embeddings).len();
    let chats_before = engine.requests(Route::Chat).len();
    engine.push_chat_reply("Standalone question: \"Who issues the locker keys?\"");

    // Act
    let (status, answer) = app
        .post(
            "/v1/ask",
            &json!({"question": "and who hands out the keys?", "messages": conversation()}),
        )
        .await;

    // Assert: the rewrite request shows the conversation and the follow-up ...
    assert_eq!(status, 200, "{answer}");
    let chats = &engine.requests(Route::Chat)[chats_before..];
    assert_eq!(chats.len(), 2, "one rewrite, one answer: {chats:?}");
    let rewrite = &chats[0]["messages"];
    assert_eq!(rewrite[0]["role"], "system");
    assert!(
        rewrite[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You turn the last question of a conversation"),
        "{rewrite}"
    );
    let prompt = rewrite[1]["content"].as_str().unwrap();
    assert!(prompt.contains("User: Where is my locker?"), "{prompt}");
    assert!(
        prompt.contains("Assistant: Every employee gets a personal locker"),
        "{prompt}"
    );
    assert!(
        prompt.contains("Last question: and who hands out the keys?"),
        "{prompt}"
    );
    // ... retrieval embedded the rewritten question, not the follow-up ...
    let embedded: Vec<Value> = engine.requests(Route::Embeddings)[embeds_before..]
        .iter()
        .map(|r| r["input"].clone())
        .collect();
    assert_eq!(
        embedded,
        [json!(["Who issues the locker keys?"])],
        "what retrieval embedded"
    );
    // ... the answer prompt asks it, and the response reports it.
    let answer_prompt = chats[1]["messages"][1]["content"].as_str().unwrap();
    assert!(
        answer_prompt.ends_with("Question: Who issues the locker keys?"),
        "{answer_prompt}"
    );
    assert_eq!(answer["rewrite"]["question"], "Who issues the locker keys?");
    assert_eq!(answer["rewrite"]["method"], "model");
    let sources = locker_sources(&chats[1]);
    let quoted = format!("{} [2]", first_sentence(&sources[1].document));
    assert!(
        answer["answer"].as_str().unwrap().ends_with(&quoted),
        "expected an answer ending {quoted:?}: {answer}"
    );
    assert_cites_only(&answer["citations"], &sources[1]);
    assert!(answer["timings"]["rewrite_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn a_streamed_follow_up_reports_the_rewrite_first_and_counts_its_tokens() {
    // Arrange
    let engine = FakeEngine::start().await;
    let (app, _dir, _more) = app_with_fake_models(&engine).await;
    engine.push_chat_reply("Who issues the locker keys?");

    // Act
    let body = app
        .post_request("/v1/ask/stream", crate::helpers::ADMIN_TOKEN)
        .json(&json!({"question": "and the keys?", "messages": conversation()}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // Assert
    let events = crate::stream::parse_events(&body);
    let (first, sources) = &events[0];
    assert_eq!(first, "sources", "{body}");
    assert_eq!(
        sources["rewrite"]["question"],
        "Who issues the locker keys?"
    );
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done", "{body}");
    assert_eq!(done["rewrite"]["method"], "model");
    // Every source retrieved for the rewrite is listed; the answer cites [2] only.
    let prompt_sources = locker_sources(&engine.last_request(Route::Chat).unwrap());
    let listed: Vec<&str> = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["document"].as_str().unwrap())
        .collect();
    let shown: Vec<&str> = prompt_sources.iter().map(|s| s.document.as_str()).collect();
    assert_eq!(listed, shown, "{sources:#}");
    assert_cites_only(&done["citations"], &prompt_sources[1]);
    assert_eq!(
        done["citations"],
        json!([sources["sources"][1]]),
        "{done:#}"
    );
    // Rewrite prompt and answer prompt both count: more than the answer prompt alone.
    let answer_prompt_words = engine.last_request(Route::Chat).unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| kb_testkit::word_count(m["content"].as_str().unwrap()) as u64)
        .sum::<u64>();
    assert!(
        done["usage"]["prompt_tokens"].as_u64().unwrap() > answer_prompt_words,
        "{done}"
    );
}

#[tokio::test]
async fn without_a_chat_model_the_previous_question_and_the_follow_up_are_retrieved_together() {
    // Arrange: the shared server answers extractively (no chat model).
    let app = shared_app().app();

    // Act
    let (status, answer) = app
        .post(
            "/v1/ask",
            &json!({
                "question": "and after six years of service?",
                "messages": [
                    {"role": "user", "content": "How many vacation days do new employees get?"},
                    {"role": "assistant", "content": "25 days per calendar year. [1]"},
                ],
            }),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["mode"], "extractive");
    assert_eq!(answer["rewrite"]["method"], "concatenated");
    assert_eq!(
        answer["rewrite"]["question"],
        "How many vacation days do new employees get? and after six years of service?"
    );
    assert!(
        answer["rewrite"]["note"]
            .as_str()
            .unwrap()
            .contains("no chat model"),
        "{answer}"
    );
    assert_eq!(
        answer["citations"][0]["document"], "leave-policy.md",
        "{answer}"
    );
}

#[tokio::test]
async fn a_question_without_messages_is_not_rewritten() {
    let app = shared_app().app();

    let answer = app
        .ask("How many vacation days do new employees get?")
        .await;

    assert!(answer.get("rewrite").is_none(), "{answer}");
}

#[tokio::test]
async fn too_many_prior_messages_or_a_bad_role_are_refused() {
    let app = shared_app().app();
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"role": "user", "content": format!("question {i}")}))
        .collect();

    let (too_many, body) = app
        .post(
            "/v1/ask",
            &json!({"question": "and then?", "messages": many}),
        )
        .await;
    let (bad_role, _) = app
        .post(
            "/v1/ask",
            &json!({"question": "and then?", "messages": [{"role": "system", "content": "x"}]}),
        )
        .await;

    assert_eq!(too_many, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("21 prior messages"),
        "{body}"
    );
    assert_eq!(bad_role, 400);
}
