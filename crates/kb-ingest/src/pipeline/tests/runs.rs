//! What a run reports and writes: dry runs, progress, metadata.

use super::*;

#[tokio::test]
async fn a_dry_run_reports_changes_without_embedding_or_writing() {
    let kb = Kb::new(FakeEmbedder::default(), 8);
    kb.write("same.md", "# Same\n\nUnchanged text.\n");
    kb.write("edit.md", "# Edit\n\nOld text.\n");
    kb.write("gone.md", "# Gone\n\nSoon deleted.\n");
    kb.ingest(false).await.unwrap();
    let calls = kb.embedder.calls();
    let before = kb.index.snapshot();
    kb.write("edit.md", "# Edit\n\nNew text.\n");
    kb.write("new.md", "# New\n\nBrand new.\n");
    kb.remove("gone.md");

    let report = kb
        .ingestor
        .with_run_flags(true, true)
        .ingest(&kb.roots(), &CancellationToken::new())
        .await
        .unwrap();

    assert!(report.dry_run);
    let s = &report.stats;
    assert_eq!(
        (s.added, s.updated, s.unchanged, s.removed),
        (1, 1, 1, 1),
        "{report:?}"
    );
    assert_eq!(report.run_id, None);
    assert_eq!(kb.embedder.calls(), calls, "no embedding call");
    assert_eq!(kb.index.snapshot(), before);
    assert_eq!(kb.catalog.list_documents().await.unwrap().len(), 3);
    assert!(kb.catalog.list_runs(10).await.unwrap().len() == 1);
}

#[tokio::test]
async fn progress_counts_files_chunks_tokens_and_calls() {
    let kb = Kb::new(FakeEmbedder::default(), 2);
    kb.write("a.md", &long_doc(2, "a"));
    kb.write("b.md", &long_doc(1, "b"));
    kb.write("c.md", "# C\n\nShort.\n");
    let seen = Mutex::new(Vec::<ProgressSnapshot>::new());
    let sink = |s: &ProgressSnapshot| seen.lock().unwrap().push(s.clone());

    let report = kb
        .ingestor
        .ingest_with_progress(&kb.roots(), &CancellationToken::new(), &sink)
        .await
        .unwrap();

    let seen = seen.into_inner().unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.phase, Phase::Finished);
    assert_eq!((last.files_total, last.files_done), (3, 3));
    assert_eq!(last.chunks, report.stats.chunks);
    assert_eq!(last.tokens, report.stats.tokens);
    assert_eq!(last.embedding_calls, report.stats.embedding_calls);
    assert!(report.stats.embedding_calls > 3);
    assert!(
        seen.windows(2)
            .all(|w| w[1].files_done >= w[0].files_done && w[1].chunks >= w[0].chunks)
    );
    assert!(
        seen.iter()
            .any(|s| s.current == Some(DocumentId::new("b.md")))
    );
}

#[tokio::test]
async fn metadata_reaches_catalog_and_payload_and_a_changed_sidecar_reindexes() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    kb.write("notes.txt", "Desk booking opens at eight every weekday.\n");
    kb.write(
        "notes.txt.meta.yaml",
        "owner: Facilities\neffective_date: 2026-04-01\ntags: [desks]\n",
    );
    kb.write("hr.md", "---\ngroups: [hr]\n---\n# HR\n\nSalary bands.\n");
    let ingestor = kb.ingestor.with_default_metadata(
        Some(vec!["staff".into()]),
        vec!["handbook".into()],
        Some("Ops".into()),
    );
    let cancel = CancellationToken::new();
    let kb = &kb;
    let stored = |id: &'static str| async move {
        let doc = kb.catalog.get_document(&DocumentId::new(id)).await.unwrap();
        let doc = doc.expect("catalogued");
        let points = kb.index.snapshot();
        let payloads: Vec<_> = points
            .values()
            .filter(|p| p.payload.doc_id.as_str() == id)
            .map(|p| (p.payload.groups.clone(), p.payload.meta.clone()))
            .collect();
        assert!(!payloads.is_empty());
        assert!(
            payloads
                .iter()
                .all(|p| *p == (doc.groups.clone(), doc.meta.clone())),
            "index payload of {id} matches its catalog record: {payloads:?} vs {doc:?}"
        );
        (doc.groups, doc.meta)
    };

    let first = ingestor.ingest(&kb.roots(), &cancel).await.unwrap();

    assert_eq!(first.stats.added, 2, "the sidecar is not a document");
    assert_eq!(
        stored("notes.txt").await,
        (
            vec!["staff".to_owned()],
            DocumentMeta {
                owner: Some("Facilities".into()),
                effective_date: "2026-04-01".parse().ok(),
                tags: vec!["desks".into()],
                message: None,
            }
        )
    );
    assert_eq!(
        stored("hr.md").await,
        (
            vec!["hr".to_owned()],
            DocumentMeta {
                owner: Some("Ops".into()),
                effective_date: None,
                tags: vec!["handbook".into()],
                message: None,
            }
        )
    );
    let again = ingestor.ingest(&kb.roots(), &cancel).await.unwrap();
    assert_eq!(again.stats.unchanged, 2);

    kb.write("notes.txt.meta.yaml", "groups: [finance]\n");
    let changed = ingestor.ingest(&kb.roots(), &cancel).await.unwrap();

    assert_eq!((changed.stats.updated, changed.stats.unchanged), (1, 1));
    let (groups, meta) = stored("notes.txt").await;
    assert_eq!(groups, ["finance"]);
    assert_eq!(meta.effective_date, None);
    assert_eq!(meta.tags, ["handbook"]);

    kb.write("notes.txt.meta.yaml", "effective_date: 2026-02-30\n");
    let broken = ingestor.ingest(&kb.roots(), &cancel).await.unwrap();

    assert_eq!(broken.failures.len(), 1);
    assert!(
        broken.failures[0]
            .reason
            .contains("\"2026-02-30\" is not a date"),
        "{:?}",
        broken.failures
    );
    assert_eq!(
        stored("notes.txt").await.0,
        ["finance"],
        "the last good version stays"
    );
}
