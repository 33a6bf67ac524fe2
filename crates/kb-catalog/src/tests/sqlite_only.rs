//! What only the SQLite catalog does: open a file, and tell a run's process is gone by its pid.

use crate::SqliteCatalog;
use crate::runs::RunOwner;
use kb_core::{Catalog, IngestRun};

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

#[tokio::test]
async fn runs_of_processes_that_are_gone_are_marked_interrupted() {
    let harness = super::Harness::sqlite().await;
    let crate::CatalogStore::Sqlite(cat) = &harness.store else {
        unreachable!()
    };
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
