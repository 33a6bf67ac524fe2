//! Ingest through the admin API on servers of their own (they change the catalog).

use crate::helpers::spawn_app;
use serde_json::json;
use std::fs;

#[tokio::test]
async fn a_changed_file_replaces_its_chunks_without_leftovers() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bikes.md");
    fs::write(&file, "# Bicycle parking\n\nEmployees may park bicycles in the basement garage on level minus one.\n").unwrap();
    let first = app.ingest(&[dir.path().to_path_buf()]).await;
    assert_eq!(first["stats"]["added"], 1, "{first}");

    fs::write(
        &file,
        "# Bicycle parking\n\nBicycles now go in the courtyard racks next to the main entrance.\n",
    )
    .unwrap();
    let second = app.ingest(&[dir.path().to_path_buf()]).await;

    assert_eq!(second["stats"]["updated"], 1, "{second}");
    assert!(second["stats"]["embedding_calls"].as_u64().unwrap() >= 1);
    let (_, found) = app
        .post(
            "/v1/search",
            &json!({"query": "where do I park my bicycle", "top_k": 5}),
        )
        .await;
    let texts: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert!(texts.iter().any(|t| t.contains("courtyard")), "{texts:?}");
    assert!(
        !texts.iter().any(|t| t.contains("basement")),
        "old chunk still indexed: {texts:?}"
    );
    let (_, docs) = app
        .get("/v1/documents", Some(crate::helpers::ADMIN_TOKEN))
        .await;
    let catalog_chunks = crate::helpers::catalogued_chunks(&docs);
    assert_eq!(
        docs["index_points"].as_u64().unwrap(),
        catalog_chunks,
        "index and catalog disagree"
    );
}

#[tokio::test]
async fn broken_files_are_reported_and_skipped_while_the_rest_is_ingested() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("good.md"),
        "# Lockers\n\nEvery employee gets a locker on the second floor.\n",
    )
    .unwrap();
    fs::write(dir.path().join("empty.md"), "").unwrap();
    fs::write(dir.path().join("binary.txt"), b"PK\x03\x04\x00\x00binary").unwrap();
    fs::write(
        dir.path().join("latin1.txt"),
        b"Caf\xe9 opening hours are 8 to 5.",
    )
    .unwrap();
    fs::write(
        dir.path().join("broken.md"),
        "---\ntitle: [unclosed\n---\nbody\n",
    )
    .unwrap();
    fs::write(dir.path().join("archive.zip"), b"PK\x03\x04").unwrap();

    let report = app.ingest(&[dir.path().to_path_buf()]).await;

    // good.md, and latin1.txt: legacy encodings are detected and decoded (windows-1252 here).
    assert_eq!(report["stats"]["added"], 2, "{report}");
    let failures = report["failures"].as_array().unwrap();
    let reason = |name: &str| {
        failures
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {report}"))["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(reason("empty.md").contains("empty"));
    assert!(reason("binary.txt").contains("binary"));
    assert!(reason("broken.md").contains("front matter"));
    assert_eq!(
        failures.len(),
        3,
        "unsupported files are ignored, not failures: {report}"
    );
    assert_eq!(report["stats"]["failed"], 3);
    let (_, found) = app
        .post(
            "/v1/search",
            &json!({"query": "cafe opening hours", "top_k": 5}),
        )
        .await;
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["document"] == "latin1.txt" && r["text"].as_str().unwrap().contains("Café")),
        "{found}"
    );
}

#[tokio::test]
async fn deleted_and_pruned_documents_leave_the_index() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("canteen.md"),
        "# Canteen\n\nThe canteen serves lunch from noon to two.\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("parking.md"),
        "# Car parking\n\nCar parking spaces are assigned by facilities.\n",
    )
    .unwrap();
    app.ingest(&[dir.path().to_path_buf()]).await;

    let r = app
        .client
        .delete(format!("{}/v1/documents/canteen.md", app.address))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, docs) = app
        .get("/v1/documents", Some(crate::helpers::ADMIN_TOKEN))
        .await;
    assert_eq!(docs["index_points"], 1, "only parking.md is left");
    let (status, body) = app
        .get(
            "/v1/documents/canteen.md",
            Some(crate::helpers::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 404);

    fs::remove_file(dir.path().join("canteen.md")).unwrap();
    fs::remove_file(dir.path().join("parking.md")).unwrap();
    let (status, report) = app
        .post(
            "/v1/admin/ingest",
            &json!({"paths": [dir.path()], "prune": true}),
        )
        .await;

    assert_eq!(status, 200);
    assert_eq!(report["stats"]["removed"], 1, "{report}");
    let (_, docs) = app
        .get("/v1/documents", Some(crate::helpers::ADMIN_TOKEN))
        .await;
    assert_eq!(docs["index_points"], 0);
    assert_eq!(body["error"]["code"], "document_not_found");
}
