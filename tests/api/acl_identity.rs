//! Ingest-side access holes around files and identities (issue 13, items 2 and 3): symbolic
//! links that leave the ingest root, the sidecar of a linked file, and document ids that
//! depend on the folder named, each through the real server and `POST /v1/admin/ingest`.

use crate::helpers::{ADMIN_TOKEN, TestApp, spawn_app};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn canonical(path: &Path) -> String {
    path.canonicalize().unwrap().display().to_string()
}

/// Ingest `paths` with extra body fields; the report (the run must succeed).
async fn ingest(app: &TestApp, paths: &[&Path], extra: Value) -> Value {
    let mut body = json!({ "paths": paths });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, report) = app.post("/v1/admin/ingest", &body).await;
    assert_eq!(status, 200, "ingest {body} failed: {report}");
    report
}

/// The texts `credential` finds for `query`.
async fn search_as(app: &TestApp, credential: &str, query: &str) -> Vec<String> {
    let (status, body) = app
        .post_as(
            credential,
            "/v1/search",
            &json!({ "query": query, "top_k": 20 }),
        )
        .await;
    assert_eq!(status, 200, "search failed: {body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Catalogued documents (admin): (id, groups).
async fn documents(app: &TestApp) -> Vec<(String, Value)> {
    let (status, body) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap().to_owned(), d["groups"].clone()))
        .collect()
}

fn mentions(texts: &[String], word: &str) -> bool {
    texts.iter().any(|t| t.contains(word))
}

#[tokio::test]
async fn a_link_leaving_the_ingest_root_is_skipped_and_its_target_stays_unreadable() {
    let app = spawn_app().await;
    let reader = app.create_key("everyone", "reader", "");
    let (root, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let secret = outside.path().join("salaries.md");
    write(
        &secret,
        "# Salaries\n\nThe salary band codeword is KESTREL and every salary is listed here.\n",
    );
    write(
        &root.path().join("canteen.md"),
        "# Canteen\n\nThe canteen serves lunch from noon to two.\n",
    );
    let link = root.path().join("salaries.md");
    std::os::unix::fs::symlink(&secret, &link).unwrap();

    let report = ingest(&app, &[root.path()], json!({})).await;

    assert_eq!(report["stats"]["added"], 1, "{report}");
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report}");
    assert_eq!(failures[0]["path"], link.display().to_string());
    assert_eq!(
        failures[0]["reason"],
        format!(
            "symbolic link to {} leaves the ingest root {}; set ingest.follow_symlinks = true or `kb ingest --follow-symlinks` to follow it",
            canonical(&secret),
            canonical(root.path())
        )
    );
    let found = search_as(&app, &reader, "salary band codeword").await;
    assert!(!mentions(&found, "KESTREL"), "{found:?}");
    let found = search_as(&app, ADMIN_TOKEN, "salary band codeword").await;
    assert!(
        !mentions(&found, "KESTREL"),
        "not indexed at all: {found:?}"
    );
}

#[tokio::test]
async fn a_link_inside_the_root_takes_the_sidecar_beside_the_real_file() {
    let app = spawn_app().await;
    let reader = app.create_key("everyone", "reader", "");
    let hr = app.create_key("hr", "reader", "hr");
    let root = tempfile::tempdir().unwrap();
    let real = root.path().join("hr/reviews.md");
    write(
        &real,
        "# Performance reviews\n\nThe review codeword is PLOVER; reviews happen in March.\n",
    );
    write(
        &root.path().join("hr/reviews.md.meta.yaml"),
        "groups: [hr]\n",
    );
    std::os::unix::fs::symlink(&real, root.path().join("all-reviews.md")).unwrap();

    let report = ingest(&app, &[root.path()], json!({})).await;

    assert_eq!(report["failures"], json!([]), "{report}");
    assert_eq!(
        documents(&app).await,
        [("hr/reviews.md".to_owned(), json!(["hr"]))],
        "one document, with the real file's sidecar"
    );
    let found = search_as(&app, &reader, "performance review codeword").await;
    assert!(!mentions(&found, "PLOVER"), "{found:?}");
    let found = search_as(&app, &hr, "performance review codeword").await;
    assert!(mentions(&found, "PLOVER"), "{found:?}");
}

#[tokio::test]
async fn ingesting_the_parent_after_a_subfolder_keeps_one_restricted_copy() {
    let app = spawn_app().await;
    let reader = app.create_key("everyone", "reader", "");
    let root = tempfile::tempdir().unwrap();
    let finance = root.path().join("finance");
    let budget = finance.join("budget.md");
    write(
        &budget,
        "# Budget\n\nThe budget codeword is BITTERN; next year's budget is approved in May.\n",
    );
    write(
        &root.path().join("canteen.md"),
        "# Canteen\n\nThe canteen serves lunch from noon to two.\n",
    );
    ingest(&app, &[&finance], json!({ "groups": ["finance"] })).await;

    let report = ingest(&app, &[root.path()], json!({})).await;

    assert_eq!(report["stats"]["added"], 1, "only the canteen: {report}");
    assert_eq!(report["stats"]["unchanged"], 1, "{report}");
    assert_eq!(
        documents(&app).await,
        [
            ("budget.md".to_owned(), json!(["finance"])),
            ("canteen.md".to_owned(), json!(["all"]))
        ]
    );
    let found = search_as(&app, &reader, "budget codeword").await;
    assert!(!mentions(&found, "BITTERN"), "{found:?}");
    let (status, shown) = app.get("/v1/documents/budget.md", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["document"]["source"],
        json!({
            "path": canonical(&budget),
            "root": canonical(root.path()),
            "cli_groups": ["finance"],
        })
    );
    let (status, _) = app.get("/v1/documents/budget.md", Some(&reader)).await;
    assert_eq!(status, 403, "readers never see server paths");
}

#[tokio::test]
async fn a_file_with_the_id_of_another_roots_document_is_refused_and_the_original_kept() {
    let app = spawn_app().await;
    let reader = app.create_key("everyone", "reader", "");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(
        &a.path().join("letter.md"),
        "# Letter\n\nThe dismissal letter codeword is GANNET; the contract ends in June.\n",
    );
    write(
        &b.path().join("letter.md"),
        "# Letter\n\nThe welcome letter codeword is PUFFIN; the contract starts in June.\n",
    );
    ingest(&app, &[a.path()], json!({ "groups": ["hr"] })).await;

    let report = ingest(&app, &[b.path()], json!({})).await;

    assert_eq!(report["stats"]["updated"], 0, "{report}");
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report}");
    let reason = failures[0]["reason"].as_str().unwrap();
    for part in [
        canonical(&a.path().join("letter.md")),
        canonical(&b.path().join("letter.md")),
        "kb docs delete letter.md".to_owned(),
    ] {
        assert!(reason.contains(&part), "{part} in {reason}");
    }
    assert_eq!(
        documents(&app).await,
        [("letter.md".to_owned(), json!(["hr"]))]
    );
    let found = search_as(&app, ADMIN_TOKEN, "letter codeword contract").await;
    assert!(mentions(&found, "GANNET"), "the original stays: {found:?}");
    assert!(!mentions(&found, "PUFFIN"), "{found:?}");
    let found = search_as(&app, &reader, "letter codeword contract").await;
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test]
async fn pruning_a_subfolder_removes_nothing_of_its_parent_or_another_folder() {
    let app = spawn_app().await;
    let (root, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let finance: PathBuf = root.path().join("finance");
    write(
        &finance.join("budget.md"),
        "# Budget\n\nThe budget is approved in May.\n",
    );
    write(
        &root.path().join("canteen.md"),
        "# Canteen\n\nThe canteen serves lunch from noon to two.\n",
    );
    write(
        &other.path().join("travel.md"),
        "# Travel\n\nBook trains, not planes.\n",
    );
    ingest(&app, &[root.path()], json!({})).await;
    ingest(&app, &[other.path()], json!({})).await;
    let before = documents(&app).await;

    let report = ingest(&app, &[&finance], json!({ "prune": true })).await;

    assert_eq!(report["stats"]["removed"], 0, "{report}");
    assert_eq!(report["stats"]["unchanged"], 1, "{report}");
    assert_eq!(documents(&app).await, before);
    assert_eq!(before.len(), 3, "{before:?}");
}

#[tokio::test]
async fn an_empty_groups_list_is_refused() {
    let app = spawn_app().await;
    let root = tempfile::tempdir().unwrap();
    write(&root.path().join("a.md"), "# A\n\nSome text.\n");

    for (groups, says) in [(json!([]), "never means everyone"), (json!([""]), "\"\"")] {
        let (status, body) = app
            .post(
                "/v1/admin/ingest",
                &json!({ "paths": [root.path()], "groups": groups }),
            )
            .await;

        assert_eq!(status, 400, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert!(documents(&app).await.is_empty());
}
