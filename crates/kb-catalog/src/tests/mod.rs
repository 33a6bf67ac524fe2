//! The catalog's tests. `cases` are the conformance cases every backend must pass, run by
//! [`conformance_suite!`] once on a fresh SQLite file and once on a fresh Postgres database
//! (from `KB_TEST_POSTGRES_URL`; skipped with a message without it, failed when
//! `KB_REQUIRE_POSTGRES=1`). `sqlite_only` and `postgres_only` test what differs: how a
//! run's process is known to be gone, and several processes writing at once.

mod cases;
mod postgres_only;
mod sqlite_only;

use crate::testing::TestDatabase;
use crate::{CatalogStore, DatabaseUrl, PgCatalog, SqliteCatalog};
use kb_core::point_id;
use kb_core::{Chunk, DocumentId, DocumentMeta, DocumentRecord, DocumentSource, StoredChunk};

/// A fresh catalog of one backend, and what keeps its storage alive until the test ends.
pub(crate) struct Harness {
    pub(crate) store: CatalogStore,
    _storage: Storage,
}

enum Storage {
    Dir { _dir: tempfile::TempDir },
    Database(TestDatabase),
}

impl Harness {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(&dir.path().join("kb.db"))
            .await
            .unwrap();
        Self {
            store: CatalogStore::Sqlite(cat),
            _storage: Storage::Dir { _dir: dir },
        }
    }

    /// `None` when no Postgres server is configured for the tests.
    pub(crate) async fn postgres(test: &str) -> Option<Self> {
        let db = TestDatabase::create(test).await?;
        let cat = PgCatalog::open(db.url()).await.unwrap();
        Some(Self {
            store: CatalogStore::Postgres(cat),
            _storage: Storage::Database(db),
        })
    }

    /// The Postgres database's URL (for a second catalog on it: another process).
    pub(crate) fn url(&self) -> &DatabaseUrl {
        match &self._storage {
            Storage::Database(db) => db.url(),
            Storage::Dir { .. } => panic!("BUG: a SQLite harness has no URL"),
        }
    }
}

macro_rules! conformance_suite {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let harness = super::Harness::sqlite().await;
                    super::cases::$case(&harness.store).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(harness) = super::Harness::postgres(stringify!($case)).await else {
                        return;
                    };
                    super::cases::$case(&harness.store).await;
                }
            )+
        }
    };
}

conformance_suite!(
    committing_a_document_stores_it_with_its_chunks,
    a_range_of_chunks_is_read_without_the_rest_of_the_document,
    document_metadata_round_trips,
    chunk_locations_and_message_headers_round_trip,
    a_message_is_found_by_its_message_id_before_its_attachments,
    a_documents_source_round_trips_and_can_be_recorded_alone,
    two_documents_cannot_come_from_one_file,
    a_new_version_tombstones_the_old_points,
    a_group_of_documents_commits_together_and_returns_every_replaced_point,
    a_group_that_fails_commits_none_of_its_documents,
    pending_points_of_an_uncommitted_run_are_orphan_candidates,
    write_ahead_records_are_listed_until_cleared,
    removing_a_document_deletes_chunks_and_returns_their_points,
    runs_and_meta_round_trip,
    a_run_of_this_process_is_never_taken_for_a_stale_one,
    runs_are_listed_newest_first_up_to_the_limit,
    documents_are_listed_in_id_order,
    set_meta_many_sets_all_keys_and_overwrites,
    an_issued_key_is_found_by_its_hash_and_only_the_hash_is_stored,
    a_revoked_key_stops_authenticating_and_frees_its_name,
    bad_names_and_groups_are_refused_before_anything_is_stored,
);

/// The `key_hash` column of every stored key: what the database holds of a key.
async fn stored_key_hashes(cat: &CatalogStore) -> Vec<String> {
    let sql = "SELECT key_hash FROM api_keys";
    match cat {
        CatalogStore::Sqlite(c) => sqlx::query_scalar(sql).fetch_all(&c.pool).await,
        CatalogStore::Postgres(c) => sqlx::query_scalar(sql).fetch_all(&c.pool).await,
    }
    .unwrap()
}

pub(crate) fn doc(id: &str, hash: &str) -> DocumentRecord {
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

pub(crate) fn chunks(d: &DocumentRecord, n: u32) -> Vec<StoredChunk> {
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

pub(crate) fn source(path: &str, groups: Option<&[&str]>) -> DocumentSource {
    DocumentSource {
        path: path.into(),
        root: "/handbook".into(),
        cli_groups: groups.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
    }
}
