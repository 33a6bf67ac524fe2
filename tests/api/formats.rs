//! Company files beyond Markdown through a real ingest and the real server: e-mail with its
//! attachments and replies, spreadsheets, slides; every chunk located in its source.

use crate::helpers::{ADMIN_TOKEN, samples_dir, spawn_app, workspace_root};
use serde_json::{Value, json};
use std::fs;
use std::path::Path;

fn copy_into(dir: &Path, from: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
}

async fn search(app: &crate::helpers::TestApp, query: &str) -> Vec<Value> {
    let (status, found) = app
        .post_as(
            ADMIN_TOKEN,
            "/v1/search",
            &json!({"query": query, "top_k": 10}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    found["results"].as_array().unwrap().clone()
}

fn documents(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|r| r["document"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_message_its_attachment_and_its_replies_are_documents_and_quotes_are_indexed_once() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    copy_into(dir.path(), &samples_dir().join("mail"));

    let report = app.ingest(&[dir.path().to_path_buf()]).await;

    let ids: Vec<&str> = report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[0].as_str().unwrap())
        .collect();
    let original = "2026-11-16-hotel-caps-2027.eml";
    let attachment = "2026-11-16-hotel-caps-2027.eml#attachment/hotel-caps-2027.csv";
    let reply = "2026-11-16-re-hotel-caps-2027.eml";
    for id in [
        original,
        attachment,
        reply,
        "2026-11-16-re-re-hotel-caps-2027.eml",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert_eq!(report["stats"]["added"], 4, "{report}");
    assert!(
        report["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );

    // The attachment's rows are cited by sheet and row.
    let hits = search(&app, "hotel cap per night Singapore 2027").await;
    let row = hits
        .iter()
        .find(|h| h["document"] == attachment)
        .unwrap_or_else(|| panic!("attachment not found: {:?}", documents(&hits)));
    assert_eq!(row["location"]["kind"], "rows", "{row}");
    assert!(row["text"].as_str().unwrap().contains("Singapore"), "{row}");

    // The reply quotes the original, which is catalogued: its quotation is not indexed again.
    let quoted = search(
        &app,
        "the hotel cap for Paris and Singapore rises from EUR 180",
    )
    .await;
    let texts_of_reply: Vec<&str> = quoted
        .iter()
        .filter(|h| h["document"] == reply)
        .map(|h| h["text"].as_str().unwrap())
        .collect();
    assert!(
        texts_of_reply
            .iter()
            .all(|t| !t.contains("rises from EUR 180")),
        "{texts_of_reply:?}"
    );
    let import_expo = search(&app, "China International Import Expo hotel near Hongqiao").await;
    assert!(documents(&import_expo).contains(&reply), "{import_expo:?}");
}

#[tokio::test]
async fn an_attachment_taken_out_of_a_message_leaves_the_catalog() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let original = samples_dir().join("mail/2026-11-16-hotel-caps-2027.eml");
    fs::copy(&original, dir.path().join("caps.eml")).unwrap();
    let first = app.ingest(&[dir.path().to_path_buf()]).await;
    assert_eq!(first["stats"]["added"], 2, "{first}");

    // The same message without its attachment.
    let text = fs::read_to_string(&original).unwrap();
    let cut = text.rfind("\n--").unwrap();
    let attachment_start = text[..cut].rfind("\n--").unwrap();
    let without = format!("{}{}", &text[..attachment_start], &text[cut..]);
    fs::write(dir.path().join("caps.eml"), without).unwrap();
    let second = app.ingest(&[dir.path().to_path_buf()]).await;

    assert_eq!(second["stats"]["updated"], 1, "{second}");
    assert_eq!(second["stats"]["removed"], 1, "{second}");
    let (_, docs) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    let ids: Vec<&str> = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["caps.eml"], "{docs}");
    assert_eq!(
        docs["index_points"].as_u64().unwrap(),
        crate::helpers::catalogued_chunks(&docs)
    );
}

#[tokio::test]
async fn an_attachment_is_readable_only_by_the_groups_of_its_message() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        samples_dir().join("mail/2026-11-16-hotel-caps-2027.eml"),
        dir.path().join("caps.eml"),
    )
    .unwrap();
    fs::write(dir.path().join("caps.eml.meta.yaml"), "groups: [finance]\n").unwrap();
    let report = app.ingest(&[dir.path().to_path_buf()]).await;
    assert_eq!(report["stats"]["added"], 2, "{report}");

    let reader = app.create_key("reader", "reader", "all");
    let finance = app.create_key("fin", "reader", "finance");
    let query = json!({"query": "hotel cap per night Singapore", "top_k": 10});
    let (_, as_reader) = app.post_as(&reader, "/v1/search", &query).await;
    let (_, as_finance) = app.post_as(&finance, "/v1/search", &query).await;

    assert!(
        as_reader["results"].as_array().unwrap().is_empty(),
        "{as_reader}"
    );
    let found = documents(as_finance["results"].as_array().unwrap())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(
        found.contains(&"caps.eml#attachment/hotel-caps-2027.csv".to_owned()),
        "{found:?}"
    );
}

#[tokio::test]
async fn slides_are_cited_by_slide_number() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        workspace_root().join("tests/fixtures/office/quarterly-review.pptx"),
        dir.path().join("quarterly-review.pptx"),
    )
    .unwrap();
    let report = app.ingest(&[dir.path().to_path_buf()]).await;
    assert_eq!(report["stats"]["added"], 1, "{report}");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["note"].as_str().unwrap().contains("hidden slide")),
        "{report}"
    );

    let hits = search(&app, "Kestrel renewed ARR two-year term").await;
    // The deck is small: its first chunk starts on slide 1 and runs on.
    let top = &hits[0];
    assert_eq!(top["location"]["kind"], "slides", "{top}");
    assert_eq!(top["location"]["first"], 1, "{top}");
    assert!(
        top["text"].as_str().unwrap().contains("Kestrel renewed"),
        "{top}"
    );
    let hidden = search(&app, "Draft layoffs plan not for circulation").await;
    assert!(
        hidden
            .iter()
            .all(|h| !h["text"].as_str().unwrap().contains("layoffs")),
        "{hidden:?}"
    );
}
