//! Which files a run takes, under which ids: links, folders ingested apart, taken ids, prune.

use super::*;

/// Ingest `roots` with `ingestor`, and the catalogued documents afterwards.
async fn ingest_roots(
    ingestor: &Ingestor,
    catalog: &FakeCatalog,
    roots: &[PathBuf],
) -> (IngestReport, Vec<DocumentRecord>) {
    let report = ingestor
        .ingest(roots, &CancellationToken::new())
        .await
        .unwrap();
    (report, catalog.list_documents().await.unwrap())
}

fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn ids(docs: &[DocumentRecord]) -> Vec<&str> {
    docs.iter().map(|d| d.id.as_str()).collect()
}

#[tokio::test]
async fn a_link_leaving_the_ingest_root_is_skipped_with_a_reason() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("salaries.md");
    write_file(
        &secret,
        "# Salaries\n\nThe salary bands of every employee.\n",
    );
    kb.write("public.md", "# Public\n\nThe canteen opens at noon.\n");
    std::os::unix::fs::symlink(&secret, kb.docs.path().join("salaries.md")).unwrap();

    let (report, docs) = ingest_roots(&kb.ingestor, &kb.catalog, &kb.roots()).await;

    assert_eq!(ids(&docs), ["public.md"]);
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let failure = &report.failures[0];
    assert_eq!(
        failure.path,
        kb.docs.path().join("salaries.md").display().to_string()
    );
    assert_eq!(
        failure.reason,
        format!(
            "symbolic link to {} leaves the ingest root {}; set ingest.follow_symlinks = true or `kb ingest --follow-symlinks` to follow it",
            secret.canonicalize().unwrap().display(),
            kb.docs.path().canonicalize().unwrap().display()
        )
    );
    assert!(
        !kb.index
            .snapshot()
            .values()
            .any(|p| p.payload.text.contains("salary")),
        "the target's text is not indexed"
    );
}

#[tokio::test]
async fn a_followed_link_takes_the_sidecar_beside_the_real_file() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("salaries.md");
    write_file(
        &secret,
        "# Salaries\n\nThe salary bands of every employee.\n",
    );
    write_file(
        &outside.path().join("salaries.md.meta.yaml"),
        "groups: [finance]\n",
    );
    std::os::unix::fs::symlink(&secret, kb.docs.path().join("pay.md")).unwrap();

    let (report, docs) = ingest_roots(
        &kb.ingestor.with_symlinks_followed(),
        &kb.catalog,
        &kb.roots(),
    )
    .await;

    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(ids(&docs), ["pay.md"], "named by the link inside the root");
    assert_eq!(docs[0].groups, ["finance"], "the real file's sidecar");
    let source = docs[0].source.clone().expect("source recorded");
    assert_eq!(
        source.path,
        secret.canonicalize().unwrap().display().to_string()
    );
}

#[tokio::test]
async fn a_link_inside_the_root_is_one_document_with_the_real_files_sidecar() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    let real = kb.docs.path().join("hr/reviews.md");
    write_file(&real, "# Reviews\n\nPerformance reviews happen in March.\n");
    write_file(
        &kb.docs.path().join("hr/reviews.md.meta.yaml"),
        "groups: [hr]\n",
    );
    std::os::unix::fs::symlink(&real, kb.docs.path().join("a-reviews.md")).unwrap();

    let (report, docs) = ingest_roots(&kb.ingestor, &kb.catalog, &kb.roots()).await;

    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(
        ids(&docs),
        ["hr/reviews.md"],
        "one document, named by its real path"
    );
    assert_eq!(docs[0].groups, ["hr"]);
    assert!(
        kb.index
            .snapshot()
            .values()
            .all(|p| p.payload.groups == ["hr"]),
        "no public copy through the link"
    );
}

#[tokio::test]
async fn ingesting_the_parent_folder_keeps_the_ids_and_groups_a_subfolder_ingest_gave() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    let finance = kb.docs.path().join("finance");
    write_file(
        &finance.join("budget.md"),
        "# Budget\n\nThe budget for next year.\n",
    );
    write_file(
        &kb.docs.path().join("canteen.md"),
        "# Canteen\n\nLunch at noon.\n",
    );
    let finance_only =
        kb.ingestor
            .with_default_metadata(Some(vec!["finance".into()]), Vec::new(), None);
    ingest_roots(&finance_only, &kb.catalog, std::slice::from_ref(&finance)).await;

    let (report, docs) = ingest_roots(&kb.ingestor, &kb.catalog, &kb.roots()).await;

    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(
        (report.stats.added, report.stats.unchanged),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(ids(&docs), ["budget.md", "canteen.md"], "no second copy");
    assert_eq!(docs[0].groups, ["finance"]);
    assert_eq!(docs[1].groups, ["all"]);
    let source = docs[0].source.clone().unwrap();
    assert_eq!(
        source.root,
        kb.docs.path().canonicalize().unwrap().display().to_string(),
        "the root it was last ingested from"
    );
    assert_eq!(source.cli_groups, Some(vec!["finance".to_owned()]));

    let opened = kb
        .ingestor
        .with_default_metadata(Some(vec!["all".into()]), Vec::new(), None);
    let (report, docs) = ingest_roots(&opened, &kb.catalog, &kb.roots()).await;

    assert_eq!(report.stats.updated, 1, "explicit --groups win: {report:?}");
    assert_eq!(docs[0].groups, ["all"]);
}

/// Two folders, each holding a different `letter.md`: the same document id for two files.
fn two_letters() -> (tempfile::TempDir, tempfile::TempDir) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_file(
        &a.path().join("letter.md"),
        "# Letter\n\nA dismissal letter.\n",
    );
    write_file(
        &b.path().join("letter.md"),
        "# Letter\n\nA welcome letter.\n",
    );
    (a, b)
}

#[tokio::test]
async fn a_different_file_with_a_taken_id_is_refused_and_the_original_kept() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    let (a, b) = two_letters();
    let hr = kb
        .ingestor
        .with_default_metadata(Some(vec!["hr".into()]), Vec::new(), None);
    ingest_roots(&hr, &kb.catalog, &[a.path().to_path_buf()]).await;
    let before = kb.index.snapshot();

    let (report, docs) = ingest_roots(&kb.ingestor, &kb.catalog, &[b.path().to_path_buf()]).await;

    assert_eq!(report.stats.updated, 0, "{report:?}");
    let [failure] = &report.failures[..] else {
        panic!("one failure: {report:?}");
    };
    let (old, new) = (
        a.path().join("letter.md").canonicalize().unwrap(),
        b.path().join("letter.md").canonicalize().unwrap(),
    );
    assert!(
        failure.reason.contains(&old.display().to_string()),
        "{failure:?}"
    );
    assert!(
        failure.reason.contains(&new.display().to_string()),
        "{failure:?}"
    );
    assert!(
        failure.reason.contains("kb docs delete letter.md"),
        "{failure:?}"
    );
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].groups, ["hr"]);
    assert_eq!(
        docs[0].source.as_ref().unwrap().path,
        old.display().to_string()
    );
    assert_eq!(kb.index.snapshot(), before, "the index is untouched");
}

#[tokio::test]
async fn a_document_catalogued_without_a_source_is_refused_to_another_file_and_adopted_by_its_own()
{
    let kb = Kb::new(FakeEmbedder::default(), 4);
    let (a, b) = two_letters();
    ingest_roots(&kb.ingestor, &kb.catalog, &[a.path().to_path_buf()]).await;
    // As catalogued before sources were recorded.
    kb.catalog.forget_sources();

    let (refused, _) = ingest_roots(&kb.ingestor, &kb.catalog, &[b.path().to_path_buf()]).await;
    let (adopted, docs) = ingest_roots(&kb.ingestor, &kb.catalog, &[a.path().to_path_buf()]).await;

    assert_eq!(refused.failures.len(), 1, "{refused:?}");
    assert_eq!(
        (adopted.stats.unchanged, adopted.failures.len()),
        (1, 0),
        "{adopted:?}"
    );
    let source = docs[0].source.clone().expect("recorded by the re-ingest");
    assert_eq!(
        source.path,
        a.path()
            .join("letter.md")
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    );
}

#[tokio::test]
async fn prune_never_removes_documents_of_another_folder() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    let finance = kb.docs.path().join("finance");
    write_file(&finance.join("budget.md"), "# Budget\n\nThe budget.\n");
    write_file(
        &kb.docs.path().join("canteen.md"),
        "# Canteen\n\nLunch at noon.\n",
    );
    let other = tempfile::tempdir().unwrap();
    write_file(
        &other.path().join("travel.md"),
        "# Travel\n\nBook trains.\n",
    );
    ingest_roots(&kb.ingestor, &kb.catalog, &kb.roots()).await;
    ingest_roots(&kb.ingestor, &kb.catalog, &[other.path().to_path_buf()]).await;

    let pruning = kb.ingestor.with_run_flags(true, false);
    let (report, docs) = ingest_roots(&pruning, &kb.catalog, std::slice::from_ref(&finance)).await;

    assert_eq!(report.stats.removed, 0, "{report:?}");
    assert_eq!(ids(&docs), ["canteen.md", "finance/budget.md", "travel.md"]);

    std::fs::remove_file(finance.join("budget.md")).unwrap();
    let (report, docs) = ingest_roots(&pruning, &kb.catalog, &kb.roots()).await;

    assert_eq!(report.stats.removed, 1, "{report:?}");
    assert_eq!(ids(&docs), ["canteen.md", "travel.md"]);
}

#[tokio::test]
async fn an_empty_groups_list_is_refused_before_anything_is_read() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    kb.write("a.md", "# A\n\nText.\n");
    for given in [
        vec![],
        vec![String::new()],
        vec!["finance".into(), " ".into()],
    ] {
        let ingestor = kb
            .ingestor
            .with_default_metadata(Some(given.clone()), Vec::new(), None);

        let result = ingestor
            .ingest(&kb.roots(), &CancellationToken::new())
            .await;

        assert!(
            matches!(&result, Err(IngestError::EmptyGroups { given: g }) if *g == given),
            "{result:?}"
        );
    }
    assert!(kb.catalog.list_documents().await.unwrap().is_empty());
    assert!(kb.catalog.list_runs(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn files_of_a_type_kb_does_not_read_are_listed_not_ingested_and_sidecars_are_not() {
    let kb = Kb::new(FakeEmbedder::default(), 4);
    kb.write("policy.md", "# Policy\n\nThe canteen opens at noon.\n");
    kb.write("policy.md.meta.yaml", "owner: facilities\n");
    kb.write("archive.zip", "PK not really an archive");
    kb.write("standup.mp3", "not really a recording");

    let (report, docs) = ingest_roots(&kb.ingestor, &kb.catalog, &kb.roots()).await;

    assert_eq!(ids(&docs), ["policy.md"]);
    assert!(report.failures.is_empty(), "{report:?}");
    let mut passed_over = report.passed_over.clone();
    passed_over.sort();
    assert_eq!(
        passed_over,
        ["archive.zip", "standup.mp3"].map(|name| kb.docs.path().join(name).display().to_string())
    );
    // Named on its own, such a file is a failure with its reason, as before.
    let named = kb.docs.path().join("archive.zip");
    let (report, _) = ingest_roots(&kb.ingestor, &kb.catalog, &[named]).await;
    assert!(report.passed_over.is_empty(), "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(
        report.failures[0].reason.contains("unsupported file type"),
        "{report:?}"
    );
}
