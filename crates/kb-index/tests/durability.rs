//! A write to the embedded index that returned survives the process being killed.
//!
//! In its own test binary on purpose: spawning the child forks this process, and for a moment
//! the child shares every open descriptor, including the folder locks of any other test
//! running in parallel.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use kb_core::{
    ChunkPayload, ChunkPoint, DocumentId, Filter, Retrieval, SearchQuery, VectorIndex, point_id,
};
use kb_index::EmbeddedIndex;

const CHILD_DIR_ENV: &str = "KB_INDEX_SIGKILL_DIR";
const UPSERTED: &str = "KB_INDEX_CHILD_UPSERTED";

fn dense<'a>(vector: &'a [f32], filter: &'a Filter, k: usize) -> SearchQuery<'a> {
    SearchQuery {
        vector,
        text: "",
        retrieval: Retrieval::Dense,
        filter,
        k,
    }
}

fn points() -> Vec<ChunkPoint> {
    let doc_id = DocumentId::new("killed.md");
    (0..50u32)
        .map(|i| ChunkPoint {
            id: point_id(&doc_id, "hash", i),
            vector: vec![1.0, i as f32, 0.0, 0.0],
            payload: ChunkPayload {
                doc_id: doc_id.clone(),
                doc_hash: "hash".into(),
                ordinal: i,
                title: "Killed".into(),
                path: "killed.md".into(),
                heading_path: vec![],
                text: format!("chunk {i}"),
                byte_start: 0,
                byte_end: 1,
                location: None,
                groups: vec!["all".into()],
                meta: kb_core::DocumentMeta::default(),
            },
        })
        .collect()
}

/// Child half of [`an_upsert_that_returned_survives_sigkill`]; does nothing on its own.
#[tokio::test]
async fn sigkill_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let index = EmbeddedIndex::open(Path::new(&dir)).expect("child open");
    index.ensure(4).await.expect("child ensure");
    index.upsert(points()).await.expect("child upsert");
    println!("{UPSERTED}");
    // Hold the index (no drop, no flush on drop) until the parent's SIGKILL.
    std::thread::sleep(std::time::Duration::from_secs(600));
    panic!("the parent did not kill this child");
}

#[tokio::test]
async fn an_upsert_that_returned_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "sigkill_child", "--nocapture"])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let upserted = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(UPSERTED));
    assert!(upserted, "the child exited before upserting");

    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");

    let index = EmbeddedIndex::open(dir.path()).expect("open after SIGKILL (lock released)");
    assert_eq!(index.count().await.expect("count"), 50);
    let mut ids = index.point_ids().await.expect("ids");
    ids.sort();
    let mut expected: Vec<_> = points().iter().map(|p| p.id).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let hits = index
        .search(&dense(&[1.0, 7.0, 0.0, 0.0], &Filter::default(), 1))
        .await
        .expect("search");
    assert_eq!(hits[0].payload.text, "chunk 7");
}
