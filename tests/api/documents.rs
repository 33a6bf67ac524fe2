//! Citations a reader can check: `GET /v1/documents/{id}/chunks/{n}` returns the cited passage
//! with its neighbours and its place in the file, under the access rule of searches (a document
//! the key may not read is answered exactly like a missing one), and no response to a reader
//! names a path on the server's disk: readers get titles, locations and, where
//! `answer.source_urls` configures one, a link to the source system. Admins keep `path`.

use crate::helpers::{ADMIN_TOKEN, TestApp, spawn_app_with, workspace_root};
use crate::stream::stream_as;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The source link template the tests configure for the ingested folder.
const WIKI: &str = "https://wiki.example.com/kb/{path}?view=1";

/// A folder with the travel-policy PDF (three pages), a Markdown document in a subfolder, and
/// a finance-only document; and a server whose chunks are small (so that each PDF page holds
/// several) with a source link for the folder. Returns the app, the folder and its real path.
async fn app_with_documents() -> (TestApp, tempfile::TempDir, PathBuf) {
    let docs = tempfile::tempdir().unwrap();
    let root = docs.path().canonicalize().unwrap();
    std::fs::copy(
        workspace_root().join("tests/fixtures/travel-policy.pdf"),
        root.join("travel-policy.pdf"),
    )
    .unwrap();
    std::fs::create_dir(root.join("HR team")).unwrap();
    std::fs::write(
        root.join("HR team/leave #2.md"),
        "# Leave\n\n## Vacation\n\nEmployees get 25 vacation days a year.\n\n\
         | Years of service | Extra days |\n| --- | --- |\n| 5 | 2 |\n| 10 | 5 |\n",
    )
    .unwrap();
    std::fs::write(
        root.join("budget.md"),
        "# Budget 2026\n\nThe marketing budget for 2026 is 1.2 million EUR, codeword KESTREL.\n",
    )
    .unwrap();
    std::fs::write(root.join("budget.md.meta.yaml"), "groups: [finance]\n").unwrap();

    let rule_root = root.clone();
    let app = spawn_app_with(move |s| {
        s.ingest.chunk_tokens = 16;
        s.answer.source_urls = serde_json::from_value(json!([{ "root": rule_root, "url": WIKI }]))
            .expect("a valid source_urls rule");
    })
    .await;
    app.ingest(std::slice::from_ref(&root)).await;
    (app, docs, root)
}

/// `GET /v1/documents/{id}/chunks/{n}` (the id percent-encoded) with `credential`.
async fn chunk(app: &TestApp, credential: &str, id: &str, n: &str, query: &str) -> (u16, Value) {
    app.get(
        &format!("/v1/documents/{}/chunks/{n}{query}", encode(id)),
        Some(credential),
    )
    .await
}

/// `id` as one path segment: every byte but ASCII letters, digits and `-._~` percent-encoded.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The chunks of document `id` as the catalog holds them (admin).
async fn catalogued_chunks(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/v1/documents/{}", encode(id)), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    body["chunks"].as_array().unwrap().clone()
}

/// Fails if `text` names the folder on the server (as given, or its real path).
#[track_caller]
fn assert_no_server_path(text: &str, root: &Path, what: &str) {
    let name = root.file_name().unwrap().to_str().unwrap();
    assert!(
        !text.contains(name) && !text.contains(root.to_str().unwrap()),
        "{what} names the server folder {}: {text}",
        root.display()
    );
}

#[tokio::test]
async fn a_reader_gets_a_pdf_passage_with_its_neighbours_and_page() {
    // Arrange
    let (app, _docs, root) = app_with_documents().await;
    let reader = app.create_key("reader", "reader", "");
    let chunks = catalogued_chunks(&app, "travel-policy.pdf").await;
    let cited = chunks
        .iter()
        .find(|c| {
            c["chunk"]["text"]
                .as_str()
                .unwrap()
                .contains("Trips longer than five days")
        })
        .expect("a chunk holds the approval rule");
    let n = cited["chunk"]["ordinal"].as_u64().unwrap();
    assert!(
        n >= 1 && (n as usize) < chunks.len() - 1,
        "the cited chunk has neighbours on both sides: {n} of {}",
        chunks.len()
    );

    // Act
    let (status, body) = chunk(&app, &reader, "travel-policy.pdf", &n.to_string(), "").await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["document"], "travel-policy.pdf");
    assert_eq!(body["title"], "Travel Policy");
    assert_eq!(body["chunk_count"], chunks.len());
    assert_eq!(body["chunk"]["n"], n);
    assert!(
        body["chunk"]["text"]
            .as_str()
            .unwrap()
            .contains("Trips longer than five days"),
        "{body}"
    );
    assert_eq!(
        body["chunk"]["location"],
        json!({"kind": "pages", "first": 2, "last": 2}),
        "{body}"
    );
    assert_eq!(body["chunk"]["location_label"], "p. 2");
    let before: Vec<u64> = numbers(&body["before"]);
    let after: Vec<u64> = numbers(&body["after"]);
    assert_eq!(before, vec![n - 1], "{body}");
    assert_eq!(after, vec![n + 1], "{body}");
    for neighbour in [&body["before"][0], &body["after"][0]] {
        let label = neighbour["location_label"].as_str().unwrap();
        assert!(["p. 1", "p. 2", "p. 3"].contains(&label), "{neighbour}");
        assert_eq!(
            neighbour["text"],
            chunks[neighbour["n"].as_u64().unwrap() as usize]["chunk"]["text"]
        );
    }
    assert_eq!(
        body["source_url"],
        "https://wiki.example.com/kb/travel-policy.pdf?view=1"
    );
    assert!(body.get("path").is_none(), "a reader got the path: {body}");
    assert_no_server_path(&body.to_string(), &root, "the chunk route");

    // More context, up to the limit; the first chunk has nothing before it.
    let (status, wide) = chunk(&app, &reader, "travel-policy.pdf", "0", "?context=3").await;
    assert_eq!(status, 200, "{wide}");
    assert_eq!(numbers(&wide["before"]), Vec::<u64>::new());
    assert_eq!(numbers(&wide["after"]), vec![1, 2, 3]);
    assert_eq!(wide["chunk"]["location_label"], "p. 1");
    let (status, none) = chunk(&app, &reader, "travel-policy.pdf", "1", "?context=0").await;
    assert_eq!(status, 200, "{none}");
    assert!(none["before"].as_array().unwrap().is_empty());
    assert!(none["after"].as_array().unwrap().is_empty());
}

fn numbers(passages: &Value) -> Vec<u64> {
    passages
        .as_array()
        .unwrap_or_else(|| panic!("an array of passages: {passages}"))
        .iter()
        .map(|p| p["n"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn ids_with_slashes_and_hashes_work_percent_encoded_and_bad_numbers_are_refused() {
    // Arrange
    let (app, _docs, _root) = app_with_documents().await;
    let reader = app.create_key("reader", "reader", "");
    let id = "HR team/leave #2.md";

    // Act
    let (status, body) = chunk(&app, &reader, id, "0", "?context=2").await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["document"], id);
    assert_eq!(body["title"], "Leave");
    assert_eq!(
        body["source_url"],
        "https://wiki.example.com/kb/HR%20team/leave%20%232.md?view=1"
    );
    assert!(body["chunk"].get("location").is_none(), "{body}");
    let count = body["chunk_count"].as_u64().unwrap();

    let (status, missing) = chunk(&app, &reader, id, &count.to_string(), "").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "chunk_not_found");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("numbered from 0 to {}", count - 1)),
        "{missing}"
    );
    for (n, query, field) in [
        ("-1", "", "chunk number"),
        ("first", "", "chunk number"),
        ("0", "?context=4", "context: at most 3"),
        ("0", "?context=many", "query"),
        ("0", "?around=1", "query"),
    ] {
        let (status, body) = chunk(&app, &reader, id, n, query).await;
        assert_eq!(status, 400, "{n}{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{n}{query}: {body}"
        );
    }
    let (status, _) = app
        .get(&format!("/v1/documents/{}/chunks/0", encode(id)), None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_document_the_reader_may_not_read_is_answered_like_a_missing_one() {
    // Arrange
    let (app, _docs, _root) = app_with_documents().await;
    let outsider = app.create_key("outsider", "reader", "hr");
    let finance = app.create_key("finance", "reader", "finance");

    // Act
    let (restricted_status, restricted) = chunk(&app, &outsider, "budget.md", "0", "").await;
    let (missing_status, missing) = chunk(&app, &outsider, "budget-2.md", "0", "").await;
    let (_, restricted_far) = chunk(&app, &outsider, "budget.md", "99", "").await;
    let (allowed_status, allowed) = chunk(&app, &finance, "budget.md", "1", "").await;

    // Assert: the same status, code and message, but for the id the caller sent itself.
    assert_eq!(restricted_status, 404, "{restricted}");
    assert_eq!(missing_status, 404, "{missing}");
    assert_eq!(restricted["error"]["code"], "document_not_found");
    assert_eq!(
        restricted.to_string().replace("budget.md", "ID"),
        missing.to_string().replace("budget-2.md", "ID")
    );
    assert_eq!(restricted_far, restricted, "no chunk count leaks");
    assert_eq!(allowed_status, 200, "{allowed}");
    // The passage or its neighbours (16-token chunks cut the sentence) hold the codeword.
    assert!(allowed.to_string().contains("KESTREL"), "{allowed}");
}

#[tokio::test]
async fn no_response_to_a_reader_names_a_server_path_and_admins_keep_it() {
    // Arrange
    let (app, _docs, root) = app_with_documents().await;
    let reader = app.create_key("reader", "reader", "");
    let question = "How many vacation days do employees get?";

    // Act: every route that cites a document, as the reader.
    let (_, search) = app
        .post_as(&reader, "/v1/search", &json!({ "query": question }))
        .await;
    let (_, answer) = app
        .post_as(&reader, "/v1/ask", &json!({ "question": question }))
        .await;
    let (_, _, events) = stream_as(&app, &reader, question).await;
    let (_, completion) = app
        .post_as(
            &reader,
            "/v1/chat/completions",
            &json!({ "model": "kb", "messages": [{"role": "user", "content": question}] }),
        )
        .await;

    // Assert
    let result = &search["results"][0];
    assert_eq!(result["document"], "HR team/leave #2.md", "{search}");
    assert!(result.get("path").is_none(), "{result}");
    assert_eq!(
        result["source_url"],
        "https://wiki.example.com/kb/HR%20team/leave%20%232.md?view=1"
    );
    let citation = &answer["citations"][0];
    assert_eq!(citation["document"], "HR team/leave #2.md", "{answer}");
    assert!(citation.get("path").is_none(), "{citation}");
    assert_eq!(citation["source_url"], result["source_url"]);
    let sources = &events
        .iter()
        .find(|(name, _)| name == "sources")
        .expect("a sources event")
        .1;
    assert!(
        !sources["sources"].as_array().unwrap().is_empty(),
        "{sources}"
    );
    for (what, text) in [
        ("/v1/search", search.to_string()),
        ("/v1/ask", answer.to_string()),
        ("/v1/ask/stream", format!("{events:?}")),
        ("/v1/chat/completions", completion.to_string()),
    ] {
        assert_no_server_path(&text, &root, what);
        assert!(text.contains("wiki.example.com"), "{what}: {text}");
    }

    // Admins keep the path, beside the link.
    let (_, admin_search) = app
        .post_as(ADMIN_TOKEN, "/v1/search", &json!({ "query": question }))
        .await;
    let path = admin_search["results"][0]["path"].as_str().unwrap();
    assert_eq!(Path::new(path), root.join("HR team/leave #2.md"));
    let admin_answer = app.ask(question).await;
    assert_eq!(admin_answer["citations"][0]["path"], path);
    let (status, admin_chunk) = chunk(&app, ADMIN_TOKEN, "HR team/leave #2.md", "0", "").await;
    assert_eq!(status, 200, "{admin_chunk}");
    assert_eq!(admin_chunk["path"], path);
    assert_eq!(admin_chunk["source_url"], result["source_url"]);
}

#[tokio::test]
async fn without_source_urls_readers_get_no_link_and_still_no_path() {
    // Arrange
    let docs = tempfile::tempdir().unwrap();
    let root = docs.path().canonicalize().unwrap();
    std::fs::write(
        root.join("lockers.md"),
        "# Lockers\n\nEvery employee gets a personal locker on the second floor.\n",
    )
    .unwrap();
    let app = spawn_app_with(|_| {}).await;
    app.ingest(std::slice::from_ref(&root)).await;
    let reader = app.create_key("reader", "reader", "");

    // Act
    let (_, answer) = app
        .post_as(
            &reader,
            "/v1/ask",
            &json!({ "question": "Where is my locker?" }),
        )
        .await;
    let (status, passage) = chunk(&app, &reader, "lockers.md", "0", "").await;

    // Assert
    let citation = &answer["citations"][0];
    assert_eq!(citation["document"], "lockers.md", "{answer}");
    assert!(citation.get("source_url").is_none(), "{citation}");
    assert_no_server_path(&answer.to_string(), &root, "/v1/ask");
    assert_eq!(status, 200, "{passage}");
    assert!(passage.get("source_url").is_none(), "{passage}");
    assert_no_server_path(&passage.to_string(), &root, "the chunk route");
}
