//! Stopping a run (Ctrl-C, a failed write at any moment) and writing in groups.

use super::*;

#[tokio::test]
async fn cancelling_between_embedding_batches_writes_nothing_of_that_document() {
    let kb = Kb::new(
        FakeEmbedder::default().with_delay(Duration::from_millis(5)),
        2,
    );
    kb.write("a-small.md", "# Small\n\nJust one chunk of text.\n");
    kb.write("b-large.md", &long_doc(6, "large"));
    let cancel = CancellationToken::new();
    let on_call = cancel.clone();
    // Call 1 embeds the small document; calls 2.. the large one, in batches of two chunks.
    kb.embedder.on_call(move |n| {
        if n == 3 {
            on_call.cancel();
        }
    });

    let report = kb.ingestor.ingest(&kb.roots(), &cancel).await.unwrap();

    assert!(report.interrupted);
    assert_eq!(kb.embedder.calls(), 3, "stopped after the batch in flight");
    assert_eq!(report.stats.added, 1, "{report:?}");
    let ids: Vec<_> = kb
        .catalog
        .list_documents()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, [DocumentId::new("a-small.md")]);
    let state = check(kb.catalog.as_ref(), kb.index.as_ref()).await.unwrap();
    assert!(state.consistent, "{state:#?}");
    assert_eq!(state.index_points, 1, "no point of the large document");
    let runs = kb.catalog.list_runs(1).await.unwrap();
    assert_eq!(runs[0].status, "interrupted");

    kb.embedder.on_call(|_| {});
    let rerun = kb.ingest(false).await.unwrap();

    assert!(!rerun.interrupted);
    assert_eq!((rerun.stats.added, rerun.stats.unchanged), (1, 1));
    kb.assert_consistent("after the rerun").await;
}

#[tokio::test]
async fn a_cancelled_run_stops_before_the_next_document() {
    // One chunk per batch, so that each document is a batch of its own.
    let kb = Kb::new(FakeEmbedder::default(), 1);
    kb.write("a.md", "# A\n\nFirst.\n");
    kb.write("b.md", "# B\n\nSecond.\n");
    let cancel = CancellationToken::new();
    let on_call = cancel.clone();
    kb.embedder.on_call(move |_| on_call.cancel());

    let report = kb.ingestor.ingest(&kb.roots(), &cancel).await.unwrap();

    assert!(report.interrupted);
    assert_eq!(report.stats.added, 1, "the document in flight is finished");
    assert_eq!(kb.embedder.calls(), 1);
}

/// Every write to catalog or index, failed before or after it is applied, is a moment a
/// process can be killed at. Whatever the moment, the next run leaves catalog and index in
/// agreement. (The SIGKILL version of this, against SQLite and the embedded index, is
/// `tests/crash.rs` at the workspace root.)
#[tokio::test]
async fn a_run_stopped_at_any_write_is_finished_consistently_by_the_next_run() {
    // Writing every batch and document as it lands, or in groups of a few batches: every
    // write of either is a crash point.
    let small_groups = GroupCommit {
        max_points: 4,
        max_documents: 2,
        max_delay: Duration::from_secs(60),
    };
    for group in [GroupCommit::none(), small_groups] {
        stop_at_every_write(group).await;
    }
}

async fn stop_at_every_write(group: GroupCommit) {
    let mut scenarios = 0;
    for applied in [false, true] {
        for at in 0.. {
            let kb = Kb::grouped(FakeEmbedder::default(), 3, group);
            kb.write("keep.md", &long_doc(2, "keep"));
            kb.write("edit.md", &long_doc(3, "old"));
            kb.write("gone.md", &long_doc(2, "gone"));
            kb.ingest(false).await.unwrap();
            kb.write("edit.md", &long_doc(2, "new"));
            kb.remove("gone.md");
            kb.write("added.md", &long_doc(2, "added"));

            kb.faults.fail_write(at, applied);
            let stopped = kb.ingest(true).await;
            kb.faults.clear();
            let context = format!("write {at} failed (applied: {applied})");
            if stopped.is_ok() {
                assert!(at > 5, "{context}: the run made only {at} writes");
                kb.assert_consistent(&context).await;
                break;
            }
            scenarios += 1;

            let rerun = kb.ingest(true).await;

            assert!(rerun.is_ok(), "{context}: {rerun:?}");
            kb.assert_consistent(&context).await;
            let texts: Vec<String> = kb
                .index
                .snapshot()
                .into_values()
                .map(|p| p.payload.text)
                .collect();
            assert!(texts.iter().any(|t| t.contains("newa0x0")), "{context}");
            assert!(!texts.iter().any(|t| t.contains("olda0x0")), "{context}");
            assert!(!texts.iter().any(|t| t.contains("gonea0x0")), "{context}");
        }
    }
    assert!(scenarios > 10, "{group:?}: only {scenarios} crash points");
}

#[tokio::test]
async fn a_group_commit_writes_many_batches_in_one_index_write() {
    // 8 documents of about 4 chunks, embedded two chunks per call.
    let kb = Kb::new(FakeEmbedder::default(), 2);
    for i in 0..8 {
        kb.write(&format!("doc{i}.md"), &long_doc(2, &format!("d{i}")));
    }

    let report = kb.ingest(false).await.unwrap();

    assert_eq!(report.stats.added, 8);
    assert!(report.stats.embedding_calls >= 12, "{report:?}");
    assert_eq!(
        kb.index.upsert_calls(),
        1,
        "every point of the run fits in one group"
    );
    kb.assert_consistent("after a grouped run").await;
    assert_eq!(
        kb.index.snapshot().len() as u64,
        report.stats.chunks,
        "every chunk is in the index"
    );
}

#[tokio::test]
async fn groups_are_written_when_full_or_late() {
    let by_size = GroupCommit {
        max_points: 6,
        max_documents: 1000,
        max_delay: Duration::from_secs(60),
    };
    let kb = Kb::grouped(FakeEmbedder::default(), 2, by_size);
    for i in 0..8 {
        kb.write(&format!("doc{i}.md"), &long_doc(2, &format!("d{i}")));
    }
    let report = kb.ingest(false).await.unwrap();
    let points = report.stats.chunks as usize;
    // A group closes at the first landing that brings it to 6 points or more (batches of 2).
    assert_eq!(
        kb.index.upsert_calls(),
        points.div_ceil(6),
        "{points} points"
    );
    kb.assert_consistent("groups by size").await;

    // A slow engine: each landing comes after the delay, so each batch is written alone.
    let by_time = GroupCommit {
        max_points: 1000,
        max_documents: 1000,
        max_delay: Duration::from_millis(1),
    };
    let kb = Kb::grouped(
        FakeEmbedder::default().with_delay(Duration::from_millis(20)),
        2,
        by_time,
    );
    for i in 0..3 {
        kb.write(&format!("doc{i}.md"), &long_doc(2, &format!("d{i}")));
    }
    let report = kb.ingest(false).await.unwrap();
    assert_eq!(
        kb.index.upsert_calls() as u64,
        report.stats.embedding_calls,
        "one write per landing"
    );
    kb.assert_consistent("groups by time").await;
}

#[tokio::test]
async fn the_first_run_stopped_at_any_write_is_finished_by_the_next() {
    for at in 0.. {
        let kb = Kb::new(FakeEmbedder::default(), 2);
        kb.write("a.md", &long_doc(2, "a"));
        kb.write("b.md", &long_doc(1, "b"));
        kb.faults.fail_write(at, at % 2 == 1);
        let first = kb.ingest(false).await;
        kb.faults.clear();
        if first.is_ok() {
            break;
        }
        kb.ingest(false).await.unwrap();
        kb.assert_consistent(&format!("write {at} failed")).await;
    }
}
