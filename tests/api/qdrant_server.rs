//! The whole service on a real Qdrant server instead of the embedded index (scripts/test.sh
//! starts one node and sets `KB_TEST_QDRANT_URL`): ingest the handbook, answer with citations,
//! re-ingest without embedding, remove a document, and `kb check` finds catalog and index
//! agreeing after each step.

use crate::helpers::{QdrantServer, TestApp, samples_dir, spawn_app_with};
use serde_json::Value;

/// `kb check --json` over the app's catalog and the server's collection.
fn check(app: &TestApp, server: &QdrantServer) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kb"))
        .arg("--data-dir")
        .arg(&app.data_dir)
        .env_remove("KB_CONFIG")
        .env("KB__INDEX__URL", &server.url)
        .env("KB__INDEX__COLLECTION", &server.collection)
        .env(
            "KB__EMBEDDER__LOCAL__MODEL_DIR",
            crate::helpers::model_dir(),
        )
        .args(["check", "--json"])
        .output()
        .expect("run kb check");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kb check --json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn assert_consistent(report: &Value, chunks: u64) {
    assert_eq!(report["consistent"], true, "{report:#}");
    assert_eq!(report["catalog_chunks"], chunks, "{report:#}");
    assert_eq!(report["index_points"], chunks, "{report:#}");
}

#[tokio::test]
async fn the_handbook_lives_in_a_qdrant_server_and_catalog_and_index_agree() {
    let Some(server) = QdrantServer::from_env() else {
        return;
    };
    let (url, collection) = (server.url.clone(), server.collection.clone());
    let app = spawn_app_with(move |s| {
        s.index.url = Some(url);
        s.index.collection = collection;
    })
    .await;

    let first = app.ingest(&[samples_dir()]).await;
    let chunks = first["stats"]["chunks"].as_u64().unwrap();
    assert!(chunks > 100, "{first}");
    assert_consistent(&check(&app, &server), chunks);

    // Hybrid retrieval (the default) fuses the server's dense and BM25 lists.
    let answer = app
        .ask("How many vacation days do new employees get?")
        .await;
    assert_eq!(
        answer["citations"][0]["document"], "leave-policy.md",
        "{answer:#}"
    );
    assert!(
        answer["answer"].as_str().unwrap().contains("25"),
        "{answer:#}"
    );
    let zh = app.ask("新员工有多少天年假？").await;
    assert!(
        crate::helpers::cited_documents(&zh)
            .iter()
            .any(|d| d.starts_with("zh/")),
        "{zh:#}"
    );

    let again = app.ingest(&[samples_dir()]).await;
    assert_eq!(again["stats"]["embedding_calls"], 0, "{again}");
    assert_eq!(
        again["stats"]["unchanged"], first["stats"]["added"],
        "{again}"
    );

    let status = app
        .client
        .delete(format!("{}/v1/documents/travel.md", app.address))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let report = check(&app, &server);
    assert_eq!(report["consistent"], true, "{report:#}");
    assert!(
        report["index_points"].as_u64().unwrap() < chunks,
        "{report:#}"
    );
    let answer = app.ask("What is the hotel cap per night in Zurich?").await;
    assert!(
        !crate::helpers::cited_documents(&answer).contains(&"travel.md".to_owned()),
        "{answer:#}"
    );
}
