//! One conformance suite for every [`VectorIndex`] backend.
//!
//! The cases in [`cases`] only see an `Arc<dyn VectorIndex>`; [`conformance_suite!`] runs each
//! of them against the embedded index (always, in a temporary folder) and against a Qdrant
//! server when `KB_TEST_QDRANT_URL` is set (e.g. `http://localhost:6334`, with
//! `KB_TEST_QDRANT_API_KEY` if the server wants one). Each server case uses its own collection,
//! named after the test run and the case, and drops it afterwards, even when the case fails.
//!
//! The embedded-only behaviour (persistence across reopen, the folder lock, a real HNSW build)
//! is tested in [`embedded_only`]; surviving SIGKILL is in `tests/durability.rs`.

use std::sync::{Arc, OnceLock};

use kb_core::{
    ChunkPayload, ChunkPoint, DocumentId, DocumentMeta, Filter, IndexError, VectorIndex, point_id,
};
use kb_index::{EmbeddedIndex, QdrantServerIndex};
use tempfile::TempDir;

const DIMS: usize = 4;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A chunk of `doc`, readable by `groups`, with the given vector.
fn chunk(doc: &str, ordinal: u32, groups: &[&str], vector: [f32; DIMS]) -> ChunkPoint {
    let doc_id = DocumentId::new(doc);
    ChunkPoint {
        id: point_id(&doc_id, "hash-v1", ordinal),
        vector: vector.to_vec(),
        payload: ChunkPayload {
            doc_id,
            doc_hash: "hash-v1".into(),
            ordinal,
            title: format!("Title of {doc}"),
            path: doc.into(),
            heading_path: vec!["Top".into(), format!("Section {ordinal}")],
            text: format!("chunk {ordinal} of {doc}"),
            byte_start: ordinal as usize * 100,
            byte_end: ordinal as usize * 100 + 42,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            meta: DocumentMeta::default(),
        },
    }
}

/// `point` with tags and an effective date (`YYYY-MM-DD`).
fn described(mut point: ChunkPoint, tags: &[&str], date: Option<&str>) -> ChunkPoint {
    point.payload.meta = DocumentMeta {
        owner: Some("Owner".into()),
        effective_date: date.map(|d| d.parse().expect("a date")),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    };
    point
}

fn groups(list: &[&str]) -> Filter {
    Filter {
        groups: Some(list.iter().map(|g| (*g).to_owned()).collect()),
        ..Filter::default()
    }
}

fn docs(list: &[&str]) -> Filter {
    Filter {
        doc_ids: list.iter().map(|d| DocumentId::new(*d)).collect(),
        ..Filter::default()
    }
}

/// Only documents effective in `[from, to]` (`YYYY-MM-DD`, either end open).
fn effective(from: Option<&str>, to: Option<&str>) -> Filter {
    Filter {
        effective_from: from.map(|d| d.parse().expect("a date")),
        effective_to: to.map(|d| d.parse().expect("a date")),
        ..Filter::default()
    }
}

/// Sorted doc ids of a search result.
async fn visible_docs(index: &dyn VectorIndex, filter: &Filter) -> Vec<String> {
    let hits = index
        .search(&[1.0, 1.0, 1.0, 1.0], filter, 100)
        .await
        .expect("search");
    let mut docs: Vec<String> = hits
        .into_iter()
        .map(|hit| hit.payload.doc_id.as_str().to_owned())
        .collect();
    docs.sort();
    docs.dedup();
    docs
}

async fn sorted_ids(index: &dyn VectorIndex) -> Vec<uuid::Uuid> {
    let mut ids = index.point_ids().await.expect("point_ids");
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------------------------
// The backend-independent cases
// ---------------------------------------------------------------------------------------------

mod cases {
    use super::*;

    pub async fn ensure_is_idempotent_and_rejects_other_dimensions(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("first ensure creates");
        index.ensure(DIMS).await.expect("second ensure is a no-op");

        let err = index.ensure(DIMS + 1).await.expect_err("other dimensions");

        assert!(
            matches!(
                err,
                IndexError::DimensionMismatch {
                    expected: 5,
                    found: 4
                }
            ),
            "{err:?}"
        );
        assert_eq!(index.count().await.expect("count"), 0);
    }

    pub async fn search_ranks_the_nearest_first_with_cosine_scores(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        let exact = chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]);
        let close = chunk("a.md", 1, &["all"], [0.9, 0.1, 0.0, 0.0]);
        let far = chunk("b.md", 0, &["all"], [0.0, 0.0, 1.0, 0.0]);
        let opposite = chunk("b.md", 1, &["all"], [-1.0, 0.0, 0.0, 0.0]);
        index
            .upsert(vec![
                far.clone(),
                opposite.clone(),
                exact.clone(),
                close.clone(),
            ])
            .await
            .expect("upsert");

        // Scaled query: cosine ignores length.
        let hits = index
            .search(&[3.0, 0.0, 0.0, 0.0], &Filter::default(), 10)
            .await
            .expect("search");

        let ids: Vec<_> = hits.iter().map(|hit| hit.id).collect();
        assert_eq!(ids, vec![exact.id, close.id, far.id, opposite.id]);
        assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
        assert!(hits[2].score.abs() < 1e-4, "{}", hits[2].score);
        assert!((hits[3].score + 1.0).abs() < 1e-4, "{}", hits[3].score);
        assert_eq!(hits[0].payload, exact.payload, "payload round-trips");

        let top = index
            .search(&[1.0, 0.0, 0.0, 0.0], &Filter::default(), 2)
            .await
            .expect("search top 2");
        assert_eq!(top.len(), 2);
        let none = index
            .search(&[1.0, 0.0, 0.0, 0.0], &Filter::default(), 0)
            .await
            .expect("search k = 0");
        assert!(none.is_empty());
    }

    pub async fn upserting_the_same_id_replaces_the_point(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        let original = chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]);
        index.upsert(vec![original.clone()]).await.expect("upsert");
        let mut replacement = original.clone();
        replacement.vector = vec![0.0, 1.0, 0.0, 0.0];
        replacement.payload.text = "new text".into();

        index
            .upsert(vec![replacement.clone()])
            .await
            .expect("upsert again");

        assert_eq!(index.count().await.expect("count"), 1);
        let hits = index
            .search(&[0.0, 1.0, 0.0, 0.0], &Filter::default(), 1)
            .await
            .expect("search");
        assert_eq!(hits[0].id, original.id);
        assert!((hits[0].score - 1.0).abs() < 1e-4);
        assert_eq!(hits[0].payload.text, "new text");
    }

    pub async fn filter_by_doc_ids_matches_any_of_them(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        index
            .upsert(vec![
                chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]),
                chunk("a.md", 1, &["all"], [0.0, 1.0, 0.0, 0.0]),
                chunk("b.md", 0, &["all"], [0.0, 0.0, 1.0, 0.0]),
                chunk("c.md", 0, &["all"], [0.0, 0.0, 0.0, 1.0]),
            ])
            .await
            .expect("upsert");

        assert_eq!(visible_docs(&*index, &docs(&["b.md"])).await, ["b.md"]);
        assert_eq!(
            visible_docs(&*index, &docs(&["a.md", "c.md"])).await,
            ["a.md", "c.md"]
        );
        assert!(visible_docs(&*index, &docs(&["nope.md"])).await.is_empty());
        assert_eq!(
            visible_docs(&*index, &Filter::default()).await,
            ["a.md", "b.md", "c.md"]
        );
        let both = Filter {
            doc_ids: vec![DocumentId::new("a.md")],
            groups: Some(vec!["hr".into()]),
            ..Filter::default()
        };
        assert_eq!(visible_docs(&*index, &both).await, ["a.md"], "public a.md");
    }

    pub async fn filter_by_groups_hides_documents_from_other_groups(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        index
            .upsert(vec![
                chunk("hr.md", 0, &["hr"], [1.0, 0.0, 0.0, 0.0]),
                chunk("finance.md", 0, &["finance", "board"], [0.0, 1.0, 0.0, 0.0]),
                chunk("public.md", 0, &["all"], [0.0, 0.0, 1.0, 0.0]),
            ])
            .await
            .expect("upsert");

        assert_eq!(
            visible_docs(&*index, &groups(&["finance"])).await,
            ["finance.md", "public.md"]
        );
        assert_eq!(
            visible_docs(&*index, &groups(&["hr"])).await,
            ["hr.md", "public.md"]
        );
        assert_eq!(
            visible_docs(&*index, &groups(&["board", "hr"])).await,
            ["finance.md", "hr.md", "public.md"]
        );
        assert_eq!(
            visible_docs(&*index, &groups(&[])).await,
            ["public.md"],
            "a reader in no group sees public documents only"
        );
        assert_eq!(
            visible_docs(&*index, &Filter::default()).await,
            ["finance.md", "hr.md", "public.md"],
            "no group restriction sees everything"
        );
        let hr_doc_for_finance = Filter {
            doc_ids: vec![DocumentId::new("hr.md")],
            groups: Some(vec!["finance".into()]),
            ..Filter::default()
        };
        assert!(
            visible_docs(&*index, &hr_doc_for_finance).await.is_empty(),
            "naming a document does not bypass its groups"
        );
    }

    pub async fn filter_by_tags_matches_any_of_them(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        index
            .upsert(vec![
                described(
                    chunk("leave.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]),
                    &["leave", "hr"],
                    None,
                ),
                described(
                    chunk("travel.md", 0, &["all"], [0.0, 1.0, 0.0, 0.0]),
                    &["travel"],
                    None,
                ),
                chunk("untagged.md", 0, &["all"], [0.0, 0.0, 1.0, 0.0]),
                described(
                    chunk("payroll.md", 0, &["finance"], [0.0, 0.0, 0.0, 1.0]),
                    &["leave"],
                    None,
                ),
            ])
            .await
            .expect("upsert");
        let tags = |list: &[&str]| Filter {
            tags: list.iter().map(|t| (*t).to_owned()).collect(),
            ..Filter::default()
        };

        assert_eq!(
            visible_docs(&*index, &tags(&["travel"])).await,
            ["travel.md"]
        );
        assert_eq!(
            visible_docs(&*index, &tags(&["travel", "hr"])).await,
            ["leave.md", "travel.md"]
        );
        assert!(visible_docs(&*index, &tags(&["nope"])).await.is_empty());
        let leave_for_hr = Filter {
            groups: Some(vec!["hr".into()]),
            ..tags(&["leave"])
        };
        assert_eq!(
            visible_docs(&*index, &leave_for_hr).await,
            ["leave.md"],
            "tags do not bypass groups"
        );
        let hits = index
            .search(&[1.0, 0.0, 0.0, 0.0], &tags(&["hr"]), 1)
            .await
            .expect("search");
        assert_eq!(
            hits[0].payload.meta.tags,
            ["leave", "hr"],
            "metadata round-trips"
        );
        assert_eq!(hits[0].payload.meta.owner.as_deref(), Some("Owner"));
    }

    pub async fn filter_by_effective_date_is_an_inclusive_range(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        index
            .upsert(vec![
                described(
                    chunk("old.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]),
                    &[],
                    Some("2024-12-31"),
                ),
                described(
                    chunk("new.md", 0, &["all"], [0.0, 1.0, 0.0, 0.0]),
                    &[],
                    Some("2025-01-01"),
                ),
                described(
                    chunk("newer.md", 0, &["hr"], [0.0, 0.0, 1.0, 0.0]),
                    &[],
                    Some("2026-06-30"),
                ),
                chunk("undated.md", 0, &["all"], [0.0, 0.0, 0.0, 1.0]),
            ])
            .await
            .expect("upsert");

        assert_eq!(
            visible_docs(&*index, &effective(Some("2025-01-01"), None)).await,
            ["new.md", "newer.md"]
        );
        assert_eq!(
            visible_docs(&*index, &effective(None, Some("2025-01-01"))).await,
            ["new.md", "old.md"],
            "both ends are inclusive"
        );
        assert_eq!(
            visible_docs(&*index, &effective(Some("2025-01-02"), Some("2026-06-30"))).await,
            ["newer.md"]
        );
        assert!(
            visible_docs(&*index, &effective(Some("2027-01-01"), None))
                .await
                .is_empty()
        );
        let for_finance = Filter {
            groups: Some(vec!["finance".into()]),
            ..effective(Some("2026-01-01"), None)
        };
        assert!(
            visible_docs(&*index, &for_finance).await.is_empty(),
            "dates do not bypass groups"
        );
        assert_eq!(
            visible_docs(&*index, &Filter::default()).await.len(),
            4,
            "no date filter keeps undated documents"
        );
    }

    pub async fn delete_points_removes_only_those_points(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        let keep = chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]);
        let gone = chunk("a.md", 1, &["all"], [0.0, 1.0, 0.0, 0.0]);
        index
            .upsert(vec![keep.clone(), gone.clone()])
            .await
            .expect("upsert");

        let never_stored = uuid::Uuid::new_v4();
        index
            .delete_points(&[gone.id, never_stored])
            .await
            .expect("delete");
        index.delete_points(&[]).await.expect("delete nothing");

        assert_eq!(sorted_ids(&*index).await, vec![keep.id]);
        let hits = index
            .search(&[0.0, 1.0, 0.0, 0.0], &Filter::default(), 10)
            .await
            .expect("search");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, keep.id);
    }

    pub async fn delete_document_removes_only_that_documents_points(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        let other = chunk("policies/b.md", 0, &["all"], [0.0, 0.0, 1.0, 0.0]);
        index
            .upsert(vec![
                chunk("policies/a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]),
                chunk("policies/a.md", 1, &["hr"], [0.0, 1.0, 0.0, 0.0]),
                other.clone(),
            ])
            .await
            .expect("upsert");

        index
            .delete_document(&DocumentId::new("policies/a.md"))
            .await
            .expect("delete document");
        index
            .delete_document(&DocumentId::new("never/ingested.md"))
            .await
            .expect("deleting an unknown document is fine");

        assert_eq!(index.count().await.expect("count"), 1);
        assert_eq!(sorted_ids(&*index).await, vec![other.id]);
        assert_eq!(
            visible_docs(&*index, &Filter::default()).await,
            ["policies/b.md"]
        );
    }

    pub async fn point_ids_lists_every_point(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        assert!(index.point_ids().await.expect("empty").is_empty());
        // More than one scroll page.
        let points: Vec<ChunkPoint> = (0..2_345u32)
            .map(|i| {
                let x = i as f32;
                chunk("big.md", i, &["all"], [1.0, x.sin(), x.cos(), 0.5])
            })
            .collect();
        let mut expected: Vec<_> = points.iter().map(|p| p.id).collect();
        expected.sort();
        for batch in points.chunks(500) {
            index.upsert(batch.to_vec()).await.expect("upsert");
        }

        assert_eq!(sorted_ids(&*index).await, expected);
        assert_eq!(index.count().await.expect("count"), 2_345);
    }

    pub async fn search_still_works_after_optimize(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        index.optimize().await.expect("optimize an empty index");
        let points: Vec<ChunkPoint> = (0..300u32)
            .map(|i| {
                let x = i as f32 / 10.0;
                chunk(
                    &format!("doc{}.md", i % 7),
                    i,
                    &["all"],
                    [x.cos(), x.sin(), 0.2, 0.1],
                )
            })
            .collect();
        index.upsert(points.clone()).await.expect("upsert");

        index.optimize().await.expect("optimize");

        assert_eq!(index.count().await.expect("count"), 300);
        let target = &points[123];
        let hits = index
            .search(&target.vector, &Filter::default(), 3)
            .await
            .expect("search");
        assert_eq!(hits[0].id, target.id);
        assert!((hits[0].score - 1.0).abs() < 1e-4);
        // Still writable after optimising: replace, delete, add.
        index
            .delete_document(&DocumentId::new("doc0.md"))
            .await
            .expect("delete");
        index
            .upsert(vec![chunk("new.md", 0, &["hr"], [0.0, 0.0, 0.0, 1.0])])
            .await
            .expect("upsert after optimize");
        let hr = index
            .search(&[0.0, 0.0, 0.0, 1.0], &groups(&["hr"]), 1)
            .await
            .expect("search");
        assert_eq!(hr[0].payload.doc_id.as_str(), "new.md");
        assert_eq!(index.count().await.expect("count"), 300 - 43 + 1);
    }

    pub async fn vectors_of_the_wrong_size_are_a_dimension_mismatch(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        index
            .upsert(vec![chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0])])
            .await
            .expect("upsert");
        let mut wrong = chunk("b.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]);
        wrong.vector.push(1.0);

        let upsert = index.upsert(vec![wrong]).await;
        let search = index.search(&[1.0, 0.0], &Filter::default(), 1).await;

        assert!(upsert.is_err(), "{upsert:?}");
        assert!(search.is_err(), "{search:?}");
        assert_eq!(index.count().await.expect("count"), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Running the cases against each backend
// ---------------------------------------------------------------------------------------------

/// An index under test and whatever must outlive it.
struct Harness {
    index: Arc<dyn VectorIndex>,
    _dir: Option<TempDir>,
    _collection: Option<DropCollection>,
}

impl Harness {
    fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = EmbeddedIndex::open(dir.path()).expect("open embedded index");
        Self {
            index: Arc::new(index),
            _dir: Some(dir),
            _collection: None,
        }
    }

    /// `None` (after saying why) when no server is configured.
    fn server(case: &str) -> Option<Self> {
        let Ok(url) = std::env::var("KB_TEST_QDRANT_URL") else {
            eprintln!("skipping qdrant server case `{case}`: KB_TEST_QDRANT_URL is not set");
            return None;
        };
        let api_key = std::env::var("KB_TEST_QDRANT_API_KEY").ok();
        let collection = format!("kb_test_{}_{case}", run_id());
        let index = QdrantServerIndex::connect(&url, api_key.as_deref(), &collection)
            .expect("connect to qdrant server");
        Some(Self {
            index: Arc::new(index),
            _dir: None,
            _collection: Some(DropCollection {
                url,
                api_key,
                collection,
            }),
        })
    }

    fn index(&self) -> Arc<dyn VectorIndex> {
        Arc::clone(&self.index)
    }
}

/// A short id shared by every case of this test run.
fn run_id() -> &'static str {
    static RUN_ID: OnceLock<String> = OnceLock::new();
    RUN_ID.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_owned())
}

/// Drops a server collection when the case ends, passed or failed.
struct DropCollection {
    url: String,
    api_key: Option<String>,
    collection: String,
}

impl Drop for DropCollection {
    fn drop(&mut self) {
        // Runs during unwinding too, inside the test's runtime: clean up from a fresh thread
        // with its own runtime and client.
        let result = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|err| err.to_string())?;
                    let index = QdrantServerIndex::connect(
                        &self.url,
                        self.api_key.as_deref(),
                        &self.collection,
                    )
                    .map_err(|err| err.to_string())?;
                    runtime
                        .block_on(index.delete_collection())
                        .map_err(|err| err.to_string())
                })
                .join()
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop test collection {}: {err}", self.collection),
            Err(_) => eprintln!("dropping test collection {} panicked", self.collection),
        }
    }
}

/// Runs every listed case against every backend, one `#[tokio::test]` each.
macro_rules! conformance_suite {
    ($($case:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let harness = super::Harness::embedded();
                    super::cases::$case(harness.index()).await;
                }
            )+
        }

        mod server {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(harness) = super::Harness::server(stringify!($case)) else {
                        return;
                    };
                    super::cases::$case(harness.index()).await;
                }
            )+
        }
    };
}

conformance_suite!(
    ensure_is_idempotent_and_rejects_other_dimensions,
    search_ranks_the_nearest_first_with_cosine_scores,
    upserting_the_same_id_replaces_the_point,
    filter_by_doc_ids_matches_any_of_them,
    filter_by_groups_hides_documents_from_other_groups,
    filter_by_tags_matches_any_of_them,
    filter_by_effective_date_is_an_inclusive_range,
    delete_points_removes_only_those_points,
    delete_document_removes_only_that_documents_points,
    point_ids_lists_every_point,
    search_still_works_after_optimize,
    vectors_of_the_wrong_size_are_a_dimension_mismatch,
);

// ---------------------------------------------------------------------------------------------
// Embedded-only behaviour
// ---------------------------------------------------------------------------------------------

mod embedded_only {
    use super::*;

    #[tokio::test]
    async fn a_fresh_folder_reads_as_empty_and_refuses_writes_before_ensure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = EmbeddedIndex::open(&dir.path().join("nested/index")).expect("open");

        assert_eq!(index.count().await.expect("count"), 0);
        assert!(index.point_ids().await.expect("ids").is_empty());
        assert!(
            index
                .search(&[1.0; DIMS], &Filter::default(), 5)
                .await
                .expect("search")
                .is_empty()
        );
        index.optimize().await.expect("optimize");
        let err = index
            .upsert(vec![chunk("a.md", 0, &["all"], [1.0; DIMS])])
            .await
            .expect_err("upsert before ensure");
        assert!(err.to_string().contains("ensure"), "{err}");
    }

    #[tokio::test]
    async fn reopening_after_drop_keeps_points_and_dimensions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let kept = chunk("a.md", 0, &["hr"], [1.0, 0.0, 0.0, 0.0]);
        {
            let index = EmbeddedIndex::open(dir.path()).expect("open");
            index.ensure(DIMS).await.expect("ensure");
            index
                .upsert(vec![
                    kept.clone(),
                    chunk("b.md", 0, &["all"], [0.0, 1.0, 0.0, 0.0]),
                ])
                .await
                .expect("upsert");
            index
                .delete_document(&DocumentId::new("b.md"))
                .await
                .expect("delete");
        }

        let index = EmbeddedIndex::open(dir.path()).expect("reopen");

        assert_eq!(index.count().await.expect("count"), 1);
        let hits = index
            .search(&[1.0, 0.0, 0.0, 0.0], &groups(&["hr"]), 5)
            .await
            .expect("search");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].payload, kept.payload);
        index.ensure(DIMS).await.expect("same dimensions");
        assert!(matches!(
            index.ensure(8).await,
            Err(IndexError::DimensionMismatch {
                expected: 8,
                found: 4
            })
        ));
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_folder_fails_with_locked_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = EmbeddedIndex::open(dir.path()).expect("open");
        first.ensure(DIMS).await.expect("ensure");

        let second = EmbeddedIndex::open(dir.path());

        match second {
            Err(IndexError::Locked(path)) => {
                assert_eq!(path, dir.path().display().to_string());
            }
            other => panic!("expected IndexError::Locked, got {other:?}"),
        }
        drop(first);
        EmbeddedIndex::open(dir.path()).expect("open after the first handle is dropped");
    }

    /// Deterministic pseudo-random unit-ish vectors (xorshift), no extra dependency.
    fn random_vectors(count: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        (0..count)
            .map(|_| (0..dims).map(|_| next()).collect())
            .collect()
    }

    /// Enough vectors (> 10 MB) that `optimize` builds a real HNSW graph, not just brute force.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn optimize_builds_an_hnsw_index_that_finds_exact_matches() {
        const BIG_DIMS: usize = 1024;
        const COUNT: usize = 2_700;
        let dir = tempfile::tempdir().expect("temp dir");
        let index = EmbeddedIndex::open(dir.path()).expect("open");
        index.ensure(BIG_DIMS).await.expect("ensure");
        let vectors = random_vectors(COUNT, BIG_DIMS, 0x5eed);
        let points: Vec<ChunkPoint> = vectors
            .iter()
            .enumerate()
            .map(|(i, vector)| {
                let mut point = chunk(
                    &format!("doc{}.md", i % 50),
                    i as u32,
                    &["all"],
                    [0.0; DIMS],
                );
                point.vector = vector.clone();
                point
            })
            .collect();
        let started = std::time::Instant::now();
        let batches = points.chunks(64).count();
        for batch in points.chunks(64) {
            index.upsert(batch.to_vec()).await.expect("upsert");
        }
        eprintln!(
            "upserted {COUNT} x {BIG_DIMS}-d points in {batches} batches of 64 in {:?} (each write flushed)",
            started.elapsed()
        );
        let before = index.info().await.expect("info");
        assert_eq!(before.indexed_vectors, 0, "{before:?}");

        let started = std::time::Instant::now();
        index.optimize().await.expect("optimize");
        eprintln!("optimize took {:?}", started.elapsed());

        let after = index.info().await.expect("info");
        assert_eq!(after.points, COUNT, "{after:?}");
        assert!(
            after.indexed_vectors >= COUNT,
            "HNSW was not built: {after:?}"
        );
        for probe in [0, 777, COUNT - 1] {
            let hits = index
                .search(&vectors[probe], &Filter::default(), 5)
                .await
                .expect("search");
            assert_eq!(hits[0].id, points[probe].id, "probe {probe}");
            assert!(
                (hits[0].score - 1.0).abs() < 1e-3,
                "probe {probe}: {}",
                hits[0].score
            );
        }
        // Filtered search through the payload index on the optimised segment.
        let hits = index
            .search(&vectors[777], &docs(&["doc27.md"]), 5)
            .await
            .expect("filtered search");
        assert_eq!(hits[0].id, points[777].id);
        assert!(
            hits.iter()
                .all(|hit| hit.payload.doc_id.as_str() == "doc27.md")
        );

        drop(index);
        let reopened = EmbeddedIndex::open(dir.path()).expect("reopen");
        let info = reopened.info().await.expect("info");
        assert_eq!(info.points, COUNT);
        assert!(info.indexed_vectors >= COUNT, "{info:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Server adapter behaviour that needs no server
// ---------------------------------------------------------------------------------------------

mod server_offline {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_not_a_panic() {
        // Port 1 on localhost: nothing listens, the connection is refused at once.
        let index = QdrantServerIndex::connect("http://127.0.0.1:1", None, "kb_offline")
            .expect("connecting is lazy");

        let err = index.ensure(DIMS).await.expect_err("no server");

        assert!(matches!(err, IndexError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    }

    #[test]
    fn debug_output_names_the_server_but_not_the_api_key() {
        let index =
            QdrantServerIndex::connect("http://qdrant:6334", Some("s3cret-key"), "kb_chunks")
                .expect("connect");

        let debug = format!("{index:?}");

        assert!(
            debug.contains("qdrant:6334") && debug.contains("kb_chunks"),
            "{debug}"
        );
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn an_invalid_url_or_empty_collection_is_rejected_up_front() {
        assert!(QdrantServerIndex::connect("not a url", None, "kb").is_err());
        assert!(QdrantServerIndex::connect("http://localhost:6334", None, "").is_err());
    }
}
