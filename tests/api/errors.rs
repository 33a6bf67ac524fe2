//! Error responses: one JSON shape with stable codes; requests cut after
//! `server.request_timeout_secs`; the headers that protect the chat page.

use crate::helpers::{ADMIN_TOKEN, app_with_fake_engine, shared_app, spawn_app_with};
use kb_testkit::{FakeEngine, Route};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn bad_requests_get_invalid_request_with_a_message_naming_the_field() {
    let app = shared_app().app();

    let (status, body) = app.post("/v1/ask", &json!({"question": "   "})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("question")
    );

    let (status, body) = app
        .post("/v1/ask", &json!({"question": "leave?", "top_k": 10_000}))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("top_k"));

    let (status, body) = app.post("/v1/ask", &json!({"query": "wrong field"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");

    let r = app
        .post_request("/v1/ask", ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let app = shared_app().app();

    let (status, body) = app.get("/v1/documents", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");

    let (status, _) = app.get("/v1/documents", Some("wrong")).await;
    assert_eq!(status, 401);

    let (status, body) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert!(body["documents"].as_array().unwrap().len() >= 20);
}

#[tokio::test]
async fn unknown_routes_and_probes() {
    let app = shared_app().app();

    let (status, body) = app.get("/v1/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert!(
        body.get("points").is_none(),
        "an open probe carries no counts: {body}"
    );
    let (_, docs) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    assert!(docs["index_points"].as_u64().unwrap() > 100, "{docs}");
}

#[tokio::test]
async fn ask_search_and_the_facade_are_cut_with_408_after_the_request_timeout() {
    // Arrange: embeddings come from the fake engine, which then takes far longer than the
    // server allows a request (1 s), so every route that embeds the question is slow.
    let engine = FakeEngine::start().await;
    let (app, _dir) = app_with_fake_engine(&engine, |s| {
        s.engine.endpoints[0].embed_model = Some("fake-embed".into());
        s.embedder.provider = kb_config::EmbedderProvider::Engine;
        s.embedder.engine.dimensions = 384;
        s.server.request_timeout_secs = 1;
    })
    .await;
    let latency = Duration::from_secs(20);
    engine.set_embedding_latency(latency);
    let question = "Where is my locker?";
    let messages = json!([{"role": "user", "content": question}]);

    for (path, body) in [
        ("/v1/search", json!({ "query": question })),
        ("/v1/ask", json!({ "question": question })),
        ("/v1/ask/stream", json!({ "question": question })),
        (
            "/v1/chat/completions",
            json!({"model": "kb", "messages": messages}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "kb", "stream": true, "messages": messages}),
        ),
    ] {
        let embeddings_before = engine.calls(Route::Embeddings);
        let started = Instant::now();

        // Act
        let (status, error) = app.post(path, &body).await;

        // Assert
        let waited = started.elapsed();
        assert_eq!(
            (status, &error["error"]["code"]),
            (408, &json!("request_timeout")),
            "{path} {body}: {error}"
        );
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("server.request_timeout_secs"),
            "{path}: the message names the setting: {error}"
        );
        assert!(
            engine.calls(Route::Embeddings) > embeddings_before,
            "{path}: the request reached the slow engine"
        );
        // Generous: the point is that the server does not wait for the engine's 20 s.
        assert!(
            waited < latency / 2,
            "{path}: answered after {waited:?}, not cut after about 1 s"
        );
    }
}

#[tokio::test]
async fn readiness_is_cut_with_408_when_the_index_does_not_answer() {
    // Arrange: the index is a Qdrant "server" that accepts connections and never answers, so
    // the probe's index check hangs (the client's own timeout is far longer than 1 s).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let app = spawn_app_with(move |s| {
        s.index.url = Some(url);
        s.server.request_timeout_secs = 1;
    })
    .await;
    let started = Instant::now();

    // Act
    let (status, error) = app.get("/readyz", None).await;

    // Assert
    let waited = started.elapsed();
    assert_eq!(
        (status, &error["error"]["code"]),
        (408, &json!("request_timeout")),
        "{error}"
    );
    // Generous: the point is that the probe does not wait for the index client's timeout.
    assert!(
        waited < Duration::from_secs(15),
        "answered after {waited:?}"
    );
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");
}

#[tokio::test]
async fn the_chat_page_is_served_with_a_strict_content_security_policy() {
    let app = shared_app().app();

    let response = app
        .client
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("request failed");

    assert_eq!(response.status(), 200);
    let policy = response
        .headers()
        .get("content-security-policy")
        .expect("GET / carries a Content-Security-Policy")
        .to_str()
        .unwrap()
        .to_owned();
    let directives: BTreeMap<&str, Vec<&str>> = policy
        .split(';')
        .filter_map(|directive| {
            let mut words = directive.split_whitespace();
            Some((words.next()?, words.collect()))
        })
        .collect();
    for (directive, sources) in [
        ("default-src", vec!["'none'"]),
        ("script-src", vec!["'self'"]),
        ("style-src", vec!["'self'"]),
        ("connect-src", vec!["'self'"]),
        ("img-src", vec!["'self'", "data:"]),
        ("base-uri", vec!["'none'"]),
        ("form-action", vec!["'none'"]),
        ("frame-ancestors", vec!["'none'"]),
    ] {
        assert_eq!(
            directives.get(directive),
            Some(&sources),
            "{directive} in {policy}"
        );
    }
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"),
        "{policy}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let page = response.text().await.unwrap();
    // Under `script-src 'self'` an inline script or event handler would not run: the page
    // must load all of its script from this server.
    let scripts: Vec<&str> = page
        .match_indices("<script")
        .map(|(at, _)| &page[at..])
        .collect();
    assert!(!scripts.is_empty(), "the page loads its script: {page}");
    for script in scripts {
        let tag = &script[..script.find("</script>").expect("closed script tag")];
        assert!(
            (tag.contains("src=\"/assets/app.js\"") || tag.contains("src=\"/assets/markdown.js\""))
                && tag.ends_with('>'),
            "only external scripts from this server: {tag}"
        );
    }
    let handlers = regex::Regex::new(r"(?i)<[^>]*\son[a-z]+\s*=").unwrap();
    assert!(
        !handlers.is_match(&page),
        "no inline event handlers: {page}"
    );
}
