//! Deployment hardening: file modes of the data folder, the catalog and `server.json`; the
//! cap on filter lists; the Host check of a loopback server (DNS rebinding); engine error
//! bodies kept out of API responses (but in the log).

use crate::helpers::{ADMIN_TOKEN, app_with_fake_engine, shared_app, spawn_app_with};
use crate::served::KbServe;
use kb_testkit::{CapturedLogs, FakeEngine, Fault, Route};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[track_caller]
fn assert_mode(path: &Path, expected: u32) {
    let found = mode(path);
    assert_eq!(
        found,
        expected,
        "{}: mode {found:o}, expected {expected:o}",
        path.display()
    );
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A folder with one small document, to ingest.
fn one_document() -> tempfile::TempDir {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("lockers.md"),
        "# Lockers\n\nEvery employee gets a personal locker on the second floor.\n",
    )
    .unwrap();
    docs
}

#[tokio::test]
async fn a_new_data_folder_is_0700_and_the_catalog_and_its_wal_and_shm_are_0600() {
    // Arrange: a data folder that does not exist yet (the temporary folder itself is 0700).
    let app = spawn_app_with(|s| s.data_dir = s.data_dir.join("data")).await;
    let data = app.data_dir.join("data");
    let docs = one_document();

    // Act
    app.ingest(&[docs.path().to_path_buf()]).await;

    // Assert
    assert_mode(&data, 0o700);
    assert_mode(&data.join("index"), 0o700);
    for file in ["kb.db", "kb.db-wal", "kb.db-shm"] {
        assert_mode(&data.join(file), 0o600);
    }
}

#[tokio::test]
async fn an_existing_world_readable_catalog_is_made_private_and_an_open_folder_is_reported() {
    // Arrange: a folder the admin made (0755) holding a catalog an older kb left 0644 (an
    // empty file is an empty SQLite database).
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    std::fs::create_dir(&data).unwrap();
    set_mode(&data, 0o755);
    std::fs::write(data.join("kb.db"), b"").unwrap();
    set_mode(&data.join("kb.db"), 0o644);

    // Act
    let configured = data.clone();
    let app = spawn_app_with(move |s| s.data_dir = configured).await;
    let (status, _) = app.get("/healthz", None).await;

    // Assert: the files are kb's and are tightened; the folder is the admin's and only reported.
    assert_eq!(status, 200);
    assert_mode(&data.join("kb.db"), 0o600);
    assert_mode(&data, 0o755);
    let logged = logs.text();
    assert!(
        logged.contains("the catalog's folder is open to other users"),
        "{logged}"
    );
}

#[tokio::test]
async fn server_json_is_0600_even_with_a_stale_world_readable_temporary_file_beside_it() {
    // Arrange: the temporary name `kb serve` used to write through, left 0644 by a crash.
    let data = tempfile::tempdir().unwrap();
    let stale = data.path().join("server.json.tmp");
    std::fs::write(&stale, b"{}").unwrap();
    set_mode(&stale, 0o644);

    // Act
    let _server = KbServe::start(data.path(), None).await;
    let info = data.path().join("server.json");

    // Assert
    assert_mode(&info, 0o600);
    let written: Value = serde_json::from_slice(&std::fs::read(&info).unwrap()).unwrap();
    assert!(
        written["admin_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("kbadm_")),
        "{written}"
    );
}

#[tokio::test]
async fn a_filter_listing_too_many_documents_is_refused_naming_the_field_and_the_cap() {
    // Arrange
    let app = shared_app().app();
    let ids = |n: usize| -> Vec<String> { (0..n).map(|i| format!("doc-{i}.md")).collect() };

    let request = |path: &str, n: usize| {
        let text = if path == "/v1/search" {
            "query"
        } else {
            "question"
        };
        let mut body = json!({"filter": {"documents": ids(n)}});
        body[text] = json!("vacation days");
        body
    };

    for path in ["/v1/search", "/v1/ask"] {
        // Act
        let (over, body) = app.post(path, &request(path, 1_001)).await;
        let (at_cap, at_cap_body) = app.post(path, &request(path, 1_000)).await;

        // Assert
        assert_eq!(over, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("filter.documents") && message.contains("1000"),
            "{path}: {message}"
        );
        assert_eq!(at_cap, 200, "{path}: {at_cap_body}");
    }
}

#[tokio::test]
async fn a_loopback_server_refuses_a_host_header_naming_another_server() {
    // Arrange
    let app = shared_app().app();
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let send = |path: &'static str, host: String| {
        let request = app
            .client
            .get(format!("{}{path}", app.address))
            .header("host", host)
            .bearer_auth(ADMIN_TOKEN);
        async move {
            let response = request.send().await.expect("request failed");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };

    for path in ["/metrics", "/readyz", "/v1/documents", "/"] {
        // Act
        let (refused, body) = send(path, format!("attacker.example:{port}")).await;

        // Assert
        assert_eq!(refused, 421, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(
            body["error"]["code"], "misdirected_request",
            "{path}: {body}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        let (status, body) = send("/readyz", host.clone()).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
}

const MARKER: &str = "ENGINE-SAYS-7f3a9c";

#[tokio::test]
async fn engine_error_bodies_are_logged_but_never_sent_to_callers() {
    // Arrange: every chat call fails with the engine's own words, which carry a marker.
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _docs) = app_with_fake_engine(&engine, |s| {
        // Every request reaches the engine (no breaker opening between them).
        s.engine.breaker.failures = 1_000;
    })
    .await;
    let question = "Where is my locker?";
    let cases = [
        // (engine status, engine message, kb status)
        (503, format!("backend pool exhausted {MARKER}"), 503),
        (429, format!("quota of org-123 exceeded {MARKER}"), 503),
        (
            400,
            format!("This model's maximum context length is 512 tokens {MARKER}"),
            400,
        ),
        (400, format!("unknown parameter {MARKER}"), 502),
        (
            500,
            format!("Traceback (most recent call last) {MARKER}"),
            503,
        ),
    ];

    for (engine_status, message, expected) in cases {
        engine.set_failure_rate(
            Route::Chat,
            1.0,
            Fault::ErrorBody {
                status: engine_status,
                message,
            },
        );
        for (path, body) in [
            ("/v1/ask", json!({ "question": question })),
            ("/v1/ask/stream", json!({ "question": question })),
            (
                "/v1/chat/completions",
                json!({"model": "kb", "messages": [{"role": "user", "content": question}]}),
            ),
            (
                "/v1/chat/completions",
                json!({"model": "kb", "stream": true,
                       "messages": [{"role": "user", "content": question}]}),
            ),
        ] {
            // Act
            let response = app
                .post_request(path, ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();

            // Assert
            let case = format!("engine {engine_status} on {path} {body}");
            assert_eq!(status, expected, "{case}: {text}");
            assert!(!text.contains(MARKER), "{case}: {text}");
            assert!(!text.contains("fake"), "{case}: endpoint named in {text}");
        }
    }
    let logged = logs.text();
    assert!(
        logged
            .lines()
            .any(|l| l.contains(MARKER) && l.contains("engine call failed")),
        "the engine's words are in the log: {logged}"
    );
}
