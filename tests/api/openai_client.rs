//! The OpenAI-compatible facade: the official `openai` Python package calls kb (non-streamed,
//! streamed, an unknown model), and follow-ups through `messages` are rewritten.

use crate::generative::{assert_cites_only, first_sentence, ingest_more_lockers, locker_sources};
use crate::helpers::{TestApp, app_with_chat, workspace_root};
use kb_testkit::{FakeEngine, Route};
use serde_json::{Value, json};

/// Whether `python3` can import `openai`; the reason when not.
async fn python_with_openai() -> Result<(), String> {
    let output = tokio::process::Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .await
        .map_err(|e| format!("python3 could not be started: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 cannot import openai: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[tokio::test]
async fn the_official_openai_client_gets_answers_citations_and_sources() {
    if let Err(reason) = python_with_openai().await {
        assert!(
            std::env::var("KB_REQUIRE_OPENAI").as_deref() != Ok("1"),
            "KB_REQUIRE_OPENAI=1 but {reason}"
        );
        eprintln!("skipped: {reason} (pip install openai, or set KB_REQUIRE_OPENAI=1)");
        return;
    }
    // Three locker documents are retrieved; the model cites the second source only.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_cited_source(2);

    let output = tokio::process::Command::new("python3")
        .arg(workspace_root().join("tests/openai_client.py"))
        .env("KB_BASE_URL", &app.address)
        // A reader key, as an employee's client would have (the documents are readable by `all`).
        .env("KB_API_KEY", app.create_key("openai-client", "reader", ""))
        .env("KB_QUESTION", "Where is my locker?")
        .env("KB_EXPECT_N", "2")
        .output()
        .await
        .expect("python3 runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/openai_client.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("ok"), "{stdout}");
    // Three answers asked (completion, stream, and none for the unknown model) ...
    assert_eq!(engine.calls(Route::Chat), 2);
    // ... and each cites the document the model was shown as [2], with its first sentence.
    let cited: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("cited: "))
        .map(|json| serde_json::from_str(json).expect("the cited line is JSON"))
        .unwrap_or_else(|| panic!("no cited line: {stdout}"));
    let requests = engine.requests(Route::Chat);
    assert_eq!(requests.len(), 2);
    for (request, kind) in requests.iter().zip(["completion", "stream"]) {
        let second = &locker_sources(request)[1];
        let seen = &cited[kind];
        assert_eq!(
            (&seen["document"], &seen["title"]),
            (&json!(second.document), &json!(second.title)),
            "{kind}: {stdout}"
        );
        let quoted = format!("{} [2]", first_sentence(&second.document));
        assert!(
            seen["answer"].as_str().unwrap().ends_with(&quoted),
            "{kind}: expected an answer ending {quoted:?}: {stdout}"
        );
    }
}

async fn complete(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .post_request("/v1/chat/completions", crate::helpers::ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn earlier_messages_make_the_last_one_a_rewritten_follow_up() {
    // Arrange: three locker documents; the model cites the second source only.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let _more = ingest_more_lockers(&app).await;
    engine.set_cited_source(2);
    engine.push_chat_reply("Where is my personal locker?");

    // Act
    let (status, body) = complete(
        &app,
        json!({"model": "kb", "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Do employees get lockers?"},
            {"role": "assistant", "content": "Yes, every employee gets one. [1]"},
            {"role": "user", "content": "and where?"},
        ]}),
    )
    .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    let rewrite = &engine.requests(Route::Chat)[0]["messages"][1]["content"];
    let rewrite = rewrite.as_str().unwrap();
    assert!(
        rewrite.contains("User: Do employees get lockers?"),
        "{rewrite}"
    );
    assert!(rewrite.contains("Last question: and where?"), "{rewrite}");
    assert!(
        !rewrite.contains("Answer briefly"),
        "system messages are not kb's: {rewrite}"
    );
    let answer_prompt = engine.last_request(Route::Chat).unwrap()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        answer_prompt.ends_with("Question: Where is my personal locker?"),
        "{answer_prompt}"
    );
    // The answer cites [2] only: in its text, in the `Sources:` list and in `sources`.
    let second = &locker_sources(&engine.last_request(Route::Chat).unwrap())[1];
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let (answer, footer) = content
        .split_once("\n\nSources:\n")
        .unwrap_or_else(|| panic!("no Sources list: {content:?}"));
    let quoted = format!("{} [2]", first_sentence(&second.document));
    assert!(
        answer.ends_with(&quoted),
        "expected an answer ending {quoted:?}: {content:?}"
    );
    assert_eq!(
        footer,
        format!(
            "[2] {} ({}, {})",
            second.title, second.document, second.title
        ),
        "one line for the one cited source (its section is its title): {content:?}"
    );
    assert_cites_only(&body["sources"], second);
}

#[tokio::test]
async fn bad_requests_get_openai_style_errors() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;

    let (unknown_model, model_error) = complete(
        &app,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let (ends_with_assistant, role_error) = complete(
        &app,
        json!({"model": "kb", "messages": [{"role": "assistant", "content": "hi"}]}),
    )
    .await;
    let (not_json, body_error) = complete(&app, json!({"model": "kb"})).await;

    assert_eq!(unknown_model, 404);
    assert_eq!(model_error["error"]["code"], "model_not_found");
    assert_eq!(model_error["error"]["type"], "invalid_request_error");
    assert_eq!(ends_with_assistant, 400);
    assert_eq!(role_error["error"]["type"], "invalid_request_error");
    assert_eq!(role_error["error"]["code"], "invalid_request");
    assert_eq!(not_json, 400, "{body_error}");
    assert!(
        body_error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages")
    );
    assert_eq!(engine.calls(Route::Chat), 0);
}

#[tokio::test]
async fn the_model_list_names_kb() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;

    let (status, body) = app
        .get("/v1/models", Some(crate::helpers::ADMIN_TOKEN))
        .await;

    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "kb");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}
