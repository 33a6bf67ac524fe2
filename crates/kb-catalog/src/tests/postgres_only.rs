//! What only the Postgres catalog does: migrations kept in step with SQLite's, runs owned by
//! a session lock (a process gone on any machine is noticed), several processes writing at
//! once, and a URL whose password is never shown.

use super::{Harness, chunks, doc};
use crate::postgres::MIGRATOR as POSTGRES;
use crate::sqlite::MIGRATOR as SQLITE;
use crate::{DatabaseUrl, NewKey, PgCatalog};
use kb_core::{AccessRole, Catalog, KeyStore, KeyStoreError, RunStats, point_id};
use secrecy::SecretString;

#[test]
fn the_two_migration_sets_have_the_same_versions() {
    let versions = |m: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    };

    assert_eq!(versions(&POSTGRES), versions(&SQLITE));
    assert!(versions(&SQLITE).len() >= 6);
}

#[tokio::test]
async fn neither_debug_nor_a_connection_error_shows_the_password() {
    // Nothing listens on port 1 of the loopback: the connection is refused at once.
    let url = DatabaseUrl::parse(SecretString::from(
        "postgres://kb:hunter2-secret@127.0.0.1:1/kb".to_owned(),
    ))
    .unwrap();

    let error = PgCatalog::open_within(&url, std::time::Duration::from_millis(300))
        .await
        .unwrap_err();

    let text = kb_core::error::chain(&error).to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.starts_with(
            "catalog database error: cannot connect to postgres://kb:***@127.0.0.1:1/kb"
        ),
        "{text}"
    );
    assert!(text.contains("refused"), "the reason is named: {text}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
}

/// End the session holding a run's lock, as the server sees a process that was killed or a
/// machine that vanished.
async fn kill_lock_holder(cat: &PgCatalog, run: i64) {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(i64::from(crate::postgres::RUN_LOCK_CLASS))
    .bind(run)
    .fetch_all(&cat.pool)
    .await
    .unwrap();
    assert_eq!(ended, [true], "one session holds run {run}'s lock");
    // The server frees the locks once the backend has exited.
    for _ in 0..100 {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks \
             WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(i64::from(crate::postgres::RUN_LOCK_CLASS))
        .bind(run)
        .fetch_one(&cat.pool)
        .await
        .unwrap();
        if held == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("run {run}'s lock is still held");
}

#[tokio::test]
async fn runs_whose_process_is_gone_are_marked_interrupted_on_any_host() {
    let Some(harness) = Harness::postgres("runs_whose_process_is_gone").await else {
        return;
    };
    let crate::CatalogStore::Postgres(me) = &harness.store else {
        unreachable!()
    };
    // Other processes on other machines: catalogs of their own on the same database.
    let alive = PgCatalog::open(harness.url()).await.unwrap();
    let killed = PgCatalog::open(harness.url()).await.unwrap();
    let closed = PgCatalog::open(harness.url()).await.unwrap();
    let mine = me.start_run().await.unwrap();
    let running = alive.start_run().await.unwrap();
    let killed_run = killed.start_run().await.unwrap();
    let closed_run = closed.start_run().await.unwrap();
    let finished = alive.start_run().await.unwrap();
    alive
        .finish_run(finished, "completed", &RunStats::default())
        .await
        .unwrap();
    // A row left `running` with nobody holding its lock (a session that never locked it).
    let ownerless: i64 = sqlx::query_scalar(
        "INSERT INTO ingest_runs (started_at, status) VALUES (0, 'running') RETURNING id",
    )
    .fetch_one(&me.pool)
    .await
    .unwrap();
    assert_eq!(me.interrupt_stale_runs().await.unwrap(), [ownerless]);

    kill_lock_holder(me, killed_run).await;
    closed.close().await;
    let stale = alive.interrupt_stale_runs().await.unwrap();

    assert_eq!(stale, [killed_run, closed_run]);
    let runs = me.list_runs(10).await.unwrap();
    let status = |id: i64| runs.iter().find(|r| r.id == id).unwrap().status.as_str();
    assert_eq!(status(killed_run), "interrupted");
    assert_eq!(status(closed_run), "interrupted");
    assert_eq!(status(running), "running");
    assert_eq!(status(mine), "running");
    assert_eq!(status(finished), "completed");
    assert!(me.interrupt_stale_runs().await.unwrap().is_empty());
    // The finished run's lock is free again: the next process may take it.
    assert!(
        killed
            .finish_run(killed_run, "failed", &RunStats::default())
            .await
            .is_ok(),
        "a run's end is recorded even when its lock connection is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_processes_write_keys_runs_and_documents_at_once() {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 12;
    let Some(harness) = Harness::postgres("several_processes_write").await else {
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let url = harness.url().clone();
        tasks.spawn(async move {
            // A process of its own: its own pool (and its own migration check).
            let cat = PgCatalog::open(&url).await.unwrap();
            let run = cat.start_run().await.unwrap();
            let mut shared_names_won = 0;
            for r in 0..ROUNDS {
                let key = |name: String| NewKey {
                    name,
                    role: AccessRole::Reader,
                    groups: vec![format!("g{w}")],
                };
                let (own, _) = cat.issue_key(&key(format!("w{w}-{r}"))).await.unwrap();
                if r % 2 == 0 {
                    assert!(cat.revoke_key(&own.id).await.unwrap().is_some());
                }
                // Every writer asks for this name: one gets it, the others hear it is taken.
                match cat.issue_key(&key(format!("shared-{r}"))).await {
                    Ok(_) => shared_names_won += 1,
                    Err(KeyStoreError::NameTaken(_)) => {}
                    Err(other) => panic!("{other}"),
                }
                let own_doc = doc(&format!("w{w}/{r}.md"), "v1");
                let own_chunks = chunks(&own_doc, 2);
                // Every writer swaps in its own version of one shared document.
                let shared = doc("shared.md", &format!("w{w}-r{r}"));
                let shared_chunks = chunks(&shared, 3);
                let points: Vec<_> = own_chunks
                    .iter()
                    .chain(&shared_chunks)
                    .map(|c| c.point_id)
                    .collect();
                cat.record_pending_points(&points).await.unwrap();
                cat.commit_documents(&[(own_doc, own_chunks), (shared, shared_chunks)])
                    .await
                    .unwrap();
                cat.set_meta_many(&[("writer", &w.to_string()), ("round", &r.to_string())])
                    .await
                    .unwrap();
            }
            cat.finish_run(run, "completed", &RunStats::default())
                .await
                .unwrap();
            cat.close().await;
            shared_names_won
        });
    }
    let won: usize = tasks.join_all().await.into_iter().sum();
    let cat = &harness.store;

    assert_eq!(won, ROUNDS, "each shared name went to exactly one writer");
    let keys = cat.list_keys().await.unwrap();
    assert_eq!(keys.len(), WRITERS * ROUNDS + ROUNDS);
    let revoked = keys.iter().filter(|k| k.revoked_at.is_some()).count();
    assert_eq!(revoked, WRITERS * ROUNDS.div_ceil(2));
    let documents = cat.list_documents().await.unwrap();
    assert_eq!(documents.len(), WRITERS * ROUNDS + 1);
    let shared = cat
        .get_document(&kb_core::DocumentId::new("shared.md"))
        .await
        .unwrap()
        .unwrap();
    let stored = cat.chunks(&shared.id).await.unwrap();
    assert_eq!((shared.chunk_count, stored.len()), (3, 3));
    for (i, chunk) in stored.iter().enumerate() {
        assert_eq!(
            chunk.point_id,
            point_id(&shared.id, &shared.content_hash, i as u32),
            "the shared document's chunks are one version's, the one its row names"
        );
    }
    assert_eq!(
        cat.all_point_ids().await.unwrap().len(),
        WRITERS * ROUNDS * 2 + 3
    );
    assert!(cat.pending_points().await.unwrap().is_empty());
    assert_eq!(
        cat.tombstones().await.unwrap().len(),
        (WRITERS * ROUNDS - 1) * 3,
        "every replaced version of the shared document is a tombstone"
    );
    let runs = cat.list_runs(100).await.unwrap();
    assert_eq!(runs.len(), WRITERS);
    assert!(runs.iter().all(|r| r.status == "completed"), "{runs:?}");
    assert!(cat.interrupt_stale_runs().await.unwrap().is_empty());
}
