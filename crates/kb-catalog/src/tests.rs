use super::*;
use crate::runs::RunOwner;
use kb_core::point_id;
use kb_core::{
    Catalog, Chunk, DocumentId, DocumentMeta, DocumentRecord, DocumentSource, IngestRun, Location,
    MessageHeaders, RunStats, StoredChunk,
};
use uuid::Uuid;

#[tokio::test]
async fn a_folder_that_cannot_be_created_is_the_cause_of_the_open_error() {
    // Arrange: the catalog's folder would be inside a regular file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "").unwrap();

    // Act
    let error = SqliteCatalog::open(&file.join("sub").join("kb.db"))
        .await
        .unwrap_err();

    // Assert
    let source = std::error::Error::source(&error).expect("the io error is the source");
    assert!(source.is::<std::io::Error>(), "{source:?}");
    let text = kb_core::error::chain(&error).to_string();
    assert!(
        text.starts_with("catalog database error: cannot create folder "),
        "{text}"
    );
    assert_eq!(text.matches(&source.to_string()).count(), 1, "{text}");
}

fn doc(id: &str, hash: &str) -> DocumentRecord {
    DocumentRecord {
        id: DocumentId::new(id),
        path: format!("/handbook/{id}"),
        title: "Leave".into(),
        content_hash: hash.into(),
        size_bytes: 10,
        text_bytes: 10,
        chunk_count: 0,
        groups: vec!["all".into()],
        meta: DocumentMeta::default(),
        created_at: 0,
        updated_at: 0,
        source: None,
    }
}

fn chunks(d: &DocumentRecord, n: u32) -> Vec<StoredChunk> {
    (0..n)
        .map(|i| StoredChunk {
            point_id: point_id(&d.id, &d.content_hash, i),
            chunk_hash: format!("h{i}"),
            chunk: Chunk {
                ordinal: i,
                text: format!("chunk {i}"),
                heading_path: vec!["Leave".into()],
                byte_start: 0,
                byte_end: 7,
                token_count: 2,
                location: None,
            },
        })
        .collect()
}

/// A fresh catalog in a temporary folder (kept alive by the returned guard).
pub(crate) async fn catalog() -> (SqliteCatalog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cat = SqliteCatalog::open(&dir.path().join("kb.db"))
        .await
        .unwrap();
    (cat, dir)
}

#[tokio::test]
async fn committing_a_document_stores_it_with_its_chunks() {
    let (cat, _dir) = catalog().await;
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 3);
    cat.record_pending_points(&c.iter().map(|c| c.point_id).collect::<Vec<_>>())
        .await
        .unwrap();

    let replaced = cat.commit_document(&d, &c).await.unwrap();

    assert!(replaced.is_empty());
    let stored = cat.get_document(&d.id).await.unwrap().unwrap();
    assert_eq!(stored.chunk_count, 3);
    assert_eq!(cat.chunks(&d.id).await.unwrap(), c);
    assert!(cat.orphan_candidates().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_range_of_chunks_is_read_without_the_rest_of_the_document() {
    let (cat, _dir) = catalog().await;
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 6);
    cat.commit_document(&d, &c).await.unwrap();
    let other = doc("travel.md", "v1");
    cat.commit_document(&other, &chunks(&other, 6))
        .await
        .unwrap();

    assert_eq!(cat.chunk_range(&d.id, 2..=4).await.unwrap(), c[2..=4]);
    assert_eq!(cat.chunk_range(&d.id, 0..=0).await.unwrap(), c[..1]);
    // A range past the end is cut at the last chunk.
    assert_eq!(cat.chunk_range(&d.id, 4..=40).await.unwrap(), c[4..]);
    assert!(cat.chunk_range(&d.id, 9..=12).await.unwrap().is_empty());
    assert!(
        cat.chunk_range(&DocumentId::new("gone.md"), 0..=3)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn document_metadata_round_trips() {
    let (cat, _dir) = catalog().await;
    let mut d = doc("handbook.pdf", "v1");
    d.meta = DocumentMeta {
        owner: Some("People Team".into()),
        effective_date: "2026-03-01".parse().ok(),
        tags: vec!["leave".into(), "policy".into()],
        message: None,
    };

    cat.commit_document(&d, &chunks(&d, 1)).await.unwrap();
    let mut changed = d.clone();
    changed.meta.owner = None;
    cat.commit_document(&changed, &chunks(&changed, 1))
        .await
        .unwrap();

    let stored = cat.get_document(&d.id).await.unwrap().unwrap();
    assert_eq!(stored.meta, changed.meta);
    assert_eq!(cat.list_documents().await.unwrap()[0].meta, changed.meta);
}

#[tokio::test]
async fn chunk_locations_and_message_headers_round_trip() {
    let (cat, _dir) = catalog().await;
    let mut d = doc("thread.eml", "v1");
    d.meta.message = Some(MessageHeaders {
        from: Some("Ana <ana@example.com>".into()),
        to: vec!["team@example.com".into()],
        subject: Some("Budget 2027".into()),
        message_id: Some("abc@example.com".into()),
        ..MessageHeaders::default()
    });
    let mut c = chunks(&d, 2);
    c[1].chunk.location = Some(Location::Rows {
        sheet: "Budget".into(),
        first: 2,
        last: 9,
    });

    cat.commit_document(&d, &c).await.unwrap();

    assert_eq!(cat.chunks(&d.id).await.unwrap(), c);
    assert_eq!(cat.get_document(&d.id).await.unwrap().unwrap().meta, d.meta);
}

#[tokio::test]
async fn a_message_is_found_by_its_message_id_before_its_attachments() {
    let (cat, _dir) = catalog().await;
    let headers = MessageHeaders {
        message_id: Some("abc@example.com".into()),
        ..MessageHeaders::default()
    };
    for id in ["thread.eml#attachment/budget.xlsx", "thread.eml"] {
        let mut d = doc(id, "v1");
        d.meta.message = Some(headers.clone());
        cat.commit_document(&d, &chunks(&d, 1)).await.unwrap();
    }

    let found = cat.find_message("abc@example.com").await.unwrap();

    assert_eq!(found, Some(DocumentId::new("thread.eml")));
    assert_eq!(cat.find_message("other@example.com").await.unwrap(), None);
}

fn source(path: &str, groups: Option<&[&str]>) -> DocumentSource {
    DocumentSource {
        path: path.into(),
        root: "/handbook".into(),
        cli_groups: groups.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
    }
}

#[tokio::test]
async fn a_documents_source_round_trips_and_can_be_recorded_alone() {
    let (cat, _dir) = catalog().await;
    let mut d = doc("budget.md", "v1");
    d.source = Some(source("/handbook/finance/budget.md", Some(&["finance"])));
    let legacy = doc("old.md", "v1");
    cat.commit_document(&d, &chunks(&d, 2)).await.unwrap();
    cat.commit_document(&legacy, &chunks(&legacy, 1))
        .await
        .unwrap();

    assert_eq!(
        cat.get_document(&d.id).await.unwrap().unwrap().source,
        d.source
    );
    assert_eq!(
        cat.get_document(&legacy.id).await.unwrap().unwrap().source,
        None
    );

    let moved = source("/handbook/old.md", None);
    cat.set_document_source(&legacy.id, &moved).await.unwrap();

    let stored = cat.get_document(&legacy.id).await.unwrap().unwrap();
    assert_eq!(stored.source, Some(moved));
    assert_eq!(cat.chunks(&legacy.id).await.unwrap(), chunks(&legacy, 1));
    let missing = cat
        .set_document_source(&DocumentId::new("nope.md"), &source("/x", None))
        .await;
    assert!(missing.is_err());
}

#[tokio::test]
async fn two_documents_cannot_come_from_one_file() {
    let (cat, _dir) = catalog().await;
    let mut first = doc("budget.md", "v1");
    first.source = Some(source("/handbook/finance/budget.md", None));
    let mut copy = doc("finance/budget.md", "v1");
    copy.source = first.source.clone();
    cat.commit_document(&first, &chunks(&first, 1))
        .await
        .unwrap();

    let refused = cat.commit_document(&copy, &chunks(&copy, 1)).await;

    assert!(refused.is_err(), "{refused:?}");
    assert!(cat.get_document(&copy.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_new_version_tombstones_the_old_points() {
    let (cat, _dir) = catalog().await;
    let v1 = doc("leave.md", "v1");
    let old = chunks(&v1, 2);
    cat.commit_document(&v1, &old).await.unwrap();
    let v2 = doc("leave.md", "v2");
    let new = chunks(&v2, 1);

    let replaced = cat.commit_document(&v2, &new).await.unwrap();

    let mut expected: Vec<Uuid> = old.iter().map(|c| c.point_id).collect();
    expected.sort();
    let mut got = replaced.clone();
    got.sort();
    assert_eq!(got, expected);
    let mut orphans = cat.orphan_candidates().await.unwrap();
    orphans.sort();
    assert_eq!(orphans, expected);
    cat.clear_tombstones(&replaced).await.unwrap();
    assert!(cat.orphan_candidates().await.unwrap().is_empty());
    assert_eq!(cat.all_point_ids().await.unwrap(), vec![new[0].point_id]);
}

#[tokio::test]
async fn a_group_of_documents_commits_together_and_returns_every_replaced_point() {
    let (cat, _dir) = catalog().await;
    let v1 = doc("leave.md", "v1");
    let old = chunks(&v1, 2);
    cat.commit_document(&v1, &old).await.unwrap();
    let (v2, other) = (doc("leave.md", "v2"), doc("travel.md", "v1"));
    let group = vec![
        (v2.clone(), chunks(&v2, 1)),
        (other.clone(), chunks(&other, 3)),
    ];
    let ids: Vec<Uuid> = group
        .iter()
        .flat_map(|(_, c)| c.iter().map(|c| c.point_id))
        .collect();
    cat.record_pending_points(&ids).await.unwrap();

    let mut replaced = cat.commit_documents(&group).await.unwrap();

    replaced.sort();
    let mut expected: Vec<Uuid> = old.iter().map(|c| c.point_id).collect();
    expected.sort();
    assert_eq!(replaced, expected);
    assert_eq!(cat.chunks(&v2.id).await.unwrap(), group[0].1);
    assert_eq!(cat.chunks(&other.id).await.unwrap(), group[1].1);
    assert!(cat.pending_points().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_group_that_fails_commits_none_of_its_documents() {
    let (cat, _dir) = catalog().await;
    let (good, bad) = (doc("good.md", "v1"), doc("bad.md", "v1"));
    let mut bad_chunks = chunks(&bad, 2);
    // Two chunks with one point id: the second insert violates the primary key.
    bad_chunks[1].point_id = bad_chunks[0].point_id;

    let failed = cat
        .commit_documents(&[(good.clone(), chunks(&good, 1)), (bad, bad_chunks)])
        .await;

    assert!(failed.is_err());
    assert!(cat.get_document(&good.id).await.unwrap().is_none());
    assert!(cat.all_point_ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn pending_points_of_an_uncommitted_run_are_orphan_candidates() {
    let (cat, _dir) = catalog().await;
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 2);
    let ids: Vec<Uuid> = c.iter().map(|c| c.point_id).collect();

    cat.record_pending_points(&ids).await.unwrap();

    let mut orphans = cat.orphan_candidates().await.unwrap();
    orphans.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(orphans, expected);
}

#[tokio::test]
async fn write_ahead_records_are_listed_until_cleared() {
    let (cat, _dir) = catalog().await;
    let v1 = doc("leave.md", "v1");
    let old = chunks(&v1, 2);
    cat.commit_document(&v1, &old).await.unwrap();
    let v2 = doc("leave.md", "v2");
    let new = chunks(&v2, 1);
    let new_ids: Vec<Uuid> = new.iter().map(|c| c.point_id).collect();
    cat.record_pending_points(&new_ids).await.unwrap();
    assert_eq!(cat.pending_points().await.unwrap(), new_ids);
    assert!(cat.tombstones().await.unwrap().is_empty());

    let replaced = cat.commit_document(&v2, &new).await.unwrap();

    assert!(cat.pending_points().await.unwrap().is_empty());
    let mut tombstones = cat.tombstones().await.unwrap();
    tombstones.sort();
    let mut expected = replaced.clone();
    expected.sort();
    assert_eq!(tombstones, expected);
    cat.clear_tombstones(&replaced).await.unwrap();
    assert!(cat.tombstones().await.unwrap().is_empty());
}

#[tokio::test]
async fn removing_a_document_deletes_chunks_and_returns_their_points() {
    let (cat, _dir) = catalog().await;
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 2);
    cat.commit_document(&d, &c).await.unwrap();

    let removed = cat.remove_document(&d.id).await.unwrap();

    assert_eq!(removed.len(), 2);
    assert!(cat.get_document(&d.id).await.unwrap().is_none());
    assert!(cat.all_point_ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn runs_of_processes_that_are_gone_are_marked_interrupted() {
    let (cat, _dir) = catalog().await;
    let mine = cat.start_run().await.unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let me = RunOwner::current();
    let insert = |host: Option<String>, pid: Option<u32>, token: Option<String>| {
        let pool = cat.pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO ingest_runs (started_at, status, host, pid, process_token) \
                 VALUES (0, 'running', ?, ?, ?)",
            )
            .bind(host)
            .bind(pid.map(i64::from))
            .bind(token)
            .execute(&pool)
            .await
            .unwrap()
            .last_insert_rowid()
        }
    };
    let killed = insert(Some(me.host.clone()), Some(dead_pid), Some("old".into())).await;
    let same_pid_earlier_process =
        insert(Some(me.host.clone()), Some(me.pid), Some("old".into())).await;
    let other_host = insert(Some("elsewhere".into()), Some(dead_pid), Some("x".into())).await;
    let before_owners_were_recorded = insert(None, None, None).await;

    let stale = cat.interrupt_stale_runs().await.unwrap();

    assert_eq!(
        stale,
        [
            killed,
            same_pid_earlier_process,
            before_owners_were_recorded
        ]
    );
    let status =
        |id: i64, runs: &[IngestRun]| runs.iter().find(|r| r.id == id).unwrap().status.clone();
    let runs = cat.list_runs(10).await.unwrap();
    assert_eq!(status(killed, &runs), "interrupted");
    assert_eq!(status(mine, &runs), "running");
    assert_eq!(status(other_host, &runs), "running");
    assert!(cat.interrupt_stale_runs().await.unwrap().is_empty());
}

#[tokio::test]
async fn runs_and_meta_round_trip() {
    let (cat, _dir) = catalog().await;
    let run = cat.start_run().await.unwrap();
    let stats = RunStats {
        added: 2,
        chunks: 7,
        ..RunStats::default()
    };
    cat.finish_run(run, "completed", &stats).await.unwrap();
    cat.set_meta("embedding_model", "local:all-MiniLM-L6-v2")
        .await
        .unwrap();

    let runs = cat.list_runs(10).await.unwrap();
    assert_eq!(runs[0].stats, stats);
    assert_eq!(runs[0].status, "completed");
    assert_eq!(
        cat.get_meta("embedding_model").await.unwrap().as_deref(),
        Some("local:all-MiniLM-L6-v2")
    );
}
