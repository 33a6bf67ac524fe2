//! One conformance suite for every [`VectorIndex`] backend.
//!
//! The cases in [`cases`] only see an `Arc<dyn VectorIndex>`; [`conformance_suite!`] runs each
//! of them against the embedded index (always, in a temporary folder) and against a Qdrant
//! server when `KB_TEST_QDRANT_URL` is set (e.g. `http://localhost:6334`, with
//! `KB_TEST_QDRANT_API_KEY` if the server wants one; scripts/test.sh starts one and sets
//! `KB_REQUIRE_QDRANT=1`, which turns a skip into a failure). Each server case uses its own collection,
//! named after the test run and the case, and drops it afterwards, even when the case fails.
//!
//! The embedded-only behaviour (persistence across reopen, the folder lock, a real HNSW build)
//! is tested in [`embedded_only`]; surviving SIGKILL is in `tests/durability.rs`.

use std::sync::{Arc, OnceLock};

use kb_core::{
    ChunkPayload, ChunkPoint, DocumentId, DocumentMeta, Filter, Hit, IndexError, Retrieval,
    SearchQuery, VectorIndex, point_id,
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
            location: None,
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
        message: None,
    };
    point
}

/// The same chunk with `text` as its text.
fn with_text(mut point: ChunkPoint, text: &str) -> ChunkPoint {
    point.payload.text = text.into();
    point
}

/// A dense search (the question text plays no part).
fn dense<'a>(vector: &'a [f32], filter: &'a Filter, k: usize) -> SearchQuery<'a> {
    SearchQuery {
        vector,
        text: "",
        retrieval: Retrieval::Dense,
        filter,
        k,
    }
}

/// A search in `retrieval` mode with both the embedding and the text of the question.
async fn search(
    index: &dyn VectorIndex,
    retrieval: Retrieval,
    vector: &[f32],
    text: &str,
    filter: &Filter,
    k: usize,
) -> Vec<Hit> {
    index
        .search(&SearchQuery {
            vector,
            text,
            retrieval,
            filter,
            k,
        })
        .await
        .unwrap_or_else(|err| panic!("{retrieval} search for {text:?}: {err}"))
}

fn ids_of(hits: &[Hit]) -> Vec<uuid::Uuid> {
    hits.iter().map(|hit| hit.id).collect()
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
        .search(&dense(&[1.0, 1.0, 1.0, 1.0], filter, 100))
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
            .search(&dense(&[3.0, 0.0, 0.0, 0.0], &Filter::default(), 10))
            .await
            .expect("search");

        let ids: Vec<_> = hits.iter().map(|hit| hit.id).collect();
        assert_eq!(ids, vec![exact.id, close.id, far.id, opposite.id]);
        assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
        assert!(hits[2].score.abs() < 1e-4, "{}", hits[2].score);
        assert!((hits[3].score + 1.0).abs() < 1e-4, "{}", hits[3].score);
        assert_eq!(hits[0].payload, exact.payload, "payload round-trips");

        let top = index
            .search(&dense(&[1.0, 0.0, 0.0, 0.0], &Filter::default(), 2))
            .await
            .expect("search top 2");
        assert_eq!(top.len(), 2);
        let none = index
            .search(&dense(&[1.0, 0.0, 0.0, 0.0], &Filter::default(), 0))
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
            .search(&dense(&[0.0, 1.0, 0.0, 0.0], &Filter::default(), 1))
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
            .search(&dense(&[1.0, 0.0, 0.0, 0.0], &tags(&["hr"]), 1))
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
            .search(&dense(&[0.0, 1.0, 0.0, 0.0], &Filter::default(), 10))
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
            .search(&dense(&target.vector, &Filter::default(), 3))
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
            .search(&dense(&[0.0, 0.0, 0.0, 1.0], &groups(&["hr"]), 1))
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
        let search = index
            .search(&dense(&[1.0, 0.0], &Filter::default(), 1))
            .await;

        // `expected` is what the caller brought, `found` what the index holds: the message
        // then says "holds 4-dimensional vectors but the embedder makes 5".
        assert!(
            matches!(
                upsert,
                Err(IndexError::DimensionMismatch {
                    expected: 5,
                    found: 4
                })
            ),
            "{upsert:?}"
        );
        assert!(
            matches!(
                search,
                Err(IndexError::DimensionMismatch {
                    expected: 2,
                    found: 4
                })
            ),
            "{search:?}"
        );
        assert_eq!(index.count().await.expect("count"), 1);
    }

    pub async fn sparse_search_ranks_by_bm25_over_the_chunk_text(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        let both = with_text(
            chunk("a.md", 0, &["all"], [0.0, 1.0, 0.0, 0.0]),
            "Loading kernel modules at boot.",
        );
        let one = with_text(
            chunk("a.md", 1, &["all"], [1.0, 0.0, 0.0, 0.0]),
            "The kernel is the core of the system.",
        );
        let none = with_text(
            chunk("b.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]),
            "Holiday policy for new employees.",
        );
        let chinese = with_text(
            chunk("c.md", 0, &["all"], [0.0, 0.0, 1.0, 0.0]),
            "新员工每年有二十五天带薪年假。",
        );
        index
            .upsert(vec![
                none.clone(),
                one.clone(),
                both.clone(),
                chinese.clone(),
            ])
            .await
            .expect("upsert");
        let query = [1.0, 0.0, 0.0, 0.0];

        let hits = search(
            &*index,
            Retrieval::Sparse,
            &query,
            "Which kernel modules are loaded?",
            &Filter::default(),
            10,
        )
        .await;
        let zh = search(
            &*index,
            Retrieval::Sparse,
            &query,
            "年假有多少天？",
            &Filter::default(),
            10,
        )
        .await;

        assert_eq!(
            ids_of(&hits),
            vec![both.id, one.id],
            "only chunks sharing words"
        );
        assert!(
            hits[0].score > hits[1].score && hits[1].score > 0.0,
            "{hits:?}"
        );
        assert!(
            hits[0].cosine.abs() < 1e-4,
            "dense cosine kept: {}",
            hits[0].cosine
        );
        assert!((hits[1].cosine - 1.0).abs() < 1e-4, "{}", hits[1].cosine);
        assert_eq!(ids_of(&zh), vec![chinese.id]);
    }

    pub async fn hybrid_search_fuses_dense_and_sparse_ranks(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        // Dense order for the query vector: dense_only, in_both, unrelated, words_only.
        // Sparse order for the text: words_only (both words), in_both (one word).
        let dense_only = with_text(
            chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]),
            "Holiday policy for new employees.",
        );
        let in_both = with_text(
            chunk("a.md", 1, &["all"], [0.9, 0.1, 0.0, 0.0]),
            "About the kernel.",
        );
        let unrelated = with_text(
            chunk("b.md", 0, &["all"], [0.0, 1.0, 0.0, 0.0]),
            "Expenses and travel.",
        );
        let words_only = with_text(
            chunk("b.md", 1, &["all"], [-1.0, 0.0, 0.0, 0.0]),
            "Loading kernel modules.",
        );
        index
            .upsert(vec![
                dense_only.clone(),
                in_both.clone(),
                unrelated.clone(),
                words_only.clone(),
            ])
            .await
            .expect("upsert");

        let hits = search(
            &*index,
            Retrieval::Hybrid,
            &[1.0, 0.0, 0.0, 0.0],
            "kernel modules",
            &Filter::default(),
            10,
        )
        .await;

        // RRF with k = 60: in_both 1/61 + 1/61, words_only 1/60 + 1/63, dense_only 1/60,
        // unrelated 1/62.
        assert_eq!(
            ids_of(&hits),
            vec![in_both.id, words_only.id, dense_only.id, unrelated.id]
        );
        assert!(
            (hits[0].score - 2.0 / 61.0).abs() < 1e-5,
            "{}",
            hits[0].score
        );
        assert!(
            (hits[2].score - 1.0 / 60.0).abs() < 1e-5,
            "{}",
            hits[2].score
        );
        assert!((hits[1].cosine + 1.0).abs() < 1e-4, "{}", hits[1].cosine);
        assert!((hits[2].cosine - 1.0).abs() < 1e-4, "{}", hits[2].cosine);
        let top = search(
            &*index,
            Retrieval::Hybrid,
            &[1.0, 0.0, 0.0, 0.0],
            "kernel modules",
            &Filter::default(),
            1,
        )
        .await;
        assert_eq!(ids_of(&top), vec![in_both.id]);
    }

    pub async fn every_mode_applies_the_access_filter(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        // The restricted chunk shares the question's words and is its nearest neighbour.
        let secret = with_text(
            chunk("salaries.md", 0, &["finance"], [1.0, 0.0, 0.0, 0.0]),
            "Salary bands for engineers.",
        );
        let public = with_text(
            chunk("pay.md", 0, &["all"], [0.0, 1.0, 0.0, 0.0]),
            "Salary is paid monthly.",
        );
        index
            .upsert(vec![secret.clone(), public.clone()])
            .await
            .expect("upsert");

        for retrieval in Retrieval::ALL {
            let reader = search(
                &*index,
                retrieval,
                &[1.0, 0.0, 0.0, 0.0],
                "salary bands",
                &groups(&["hr"]),
                10,
            )
            .await;
            let finance = search(
                &*index,
                retrieval,
                &[1.0, 0.0, 0.0, 0.0],
                "salary bands",
                &groups(&["finance"]),
                10,
            )
            .await;

            assert_eq!(ids_of(&reader), vec![public.id], "{retrieval}");
            assert_eq!(finance[0].id, secret.id, "{retrieval}");
        }
    }

    pub async fn a_question_without_words_finds_nothing_by_bm25(index: Arc<dyn VectorIndex>) {
        index.ensure(DIMS).await.expect("ensure");
        let point = with_text(chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]), "Kernel.");
        index.upsert(vec![point.clone()]).await.expect("upsert");

        let sparse = search(
            &*index,
            Retrieval::Sparse,
            &[1.0, 0.0, 0.0, 0.0],
            "?!",
            &Filter::default(),
            5,
        )
        .await;
        let hybrid = search(
            &*index,
            Retrieval::Hybrid,
            &[1.0, 0.0, 0.0, 0.0],
            "?!",
            &Filter::default(),
            5,
        )
        .await;

        assert!(sparse.is_empty(), "{sparse:?}");
        assert_eq!(
            ids_of(&hybrid),
            vec![point.id],
            "the dense side still answers"
        );
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
            // scripts/test.sh starts a server and sets this: there, a skip is a failure.
            assert!(
                !std::env::var("KB_REQUIRE_QDRANT").is_ok_and(|v| v == "1"),
                "KB_REQUIRE_QDRANT=1 but KB_TEST_QDRANT_URL is not set: start a server with \
                 scripts/qdrant-node.sh and point KB_TEST_QDRANT_URL at its gRPC port"
            );
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
    sparse_search_ranks_by_bm25_over_the_chunk_text,
    hybrid_search_fuses_dense_and_sparse_ranks,
    every_mode_applies_the_access_filter,
    a_question_without_words_finds_nothing_by_bm25,
);

// ---------------------------------------------------------------------------------------------
// Embedded-only behaviour
// ---------------------------------------------------------------------------------------------

mod embedded_only {
    use super::*;

    /// Write `points` the way kb did before it stored BM25 vectors: a shard with the dense
    /// vector only.
    fn write_dense_only_index(dir: &std::path::Path, points: &[ChunkPoint]) {
        use qdrant_edge::{
            Distance, EdgeConfig, EdgeShard, EdgeVectorParamsBuilder, Payload, PointId,
            PointInsertOperations, PointOperations, PointStructPersisted, UpdateOperation,
            VectorPersisted, VectorStructPersisted,
        };
        let config = EdgeConfig::builder()
            .vector(
                kb_index::DENSE_VECTOR,
                EdgeVectorParamsBuilder::new(DIMS, Distance::Cosine).build(),
            )
            .build();
        let shard = EdgeShard::new(dir, config).expect("old-layout shard");
        let points = points
            .iter()
            .map(|point| {
                let payload = match serde_json::to_value(&point.payload).expect("payload") {
                    serde_json::Value::Object(map) => map,
                    other => panic!("payload is not an object: {other}"),
                };
                PointStructPersisted {
                    id: PointId::Uuid(point.id),
                    vector: VectorStructPersisted::Named(std::collections::HashMap::from([(
                        kb_index::DENSE_VECTOR.to_owned(),
                        VectorPersisted::Dense(point.vector.clone()),
                    )])),
                    payload: Some(Payload(payload)),
                }
            })
            .collect();
        shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
            .expect("upsert into the old-layout shard");
        shard.flush().expect("flush");
    }

    /// The graph parameters stored in the shard's `edge_config.json`.
    fn stored_graph(dir: &std::path::Path) -> (u64, u64) {
        let raw = std::fs::read_to_string(dir.join("edge_config.json")).expect("edge config");
        let config: serde_json::Value = serde_json::from_str(&raw).expect("edge config is JSON");
        let hnsw = &config["hnsw_config"];
        let field = |name: &str| {
            hnsw[name]
                .as_u64()
                .unwrap_or_else(|| panic!("no hnsw_config.{name} in {raw}"))
        };
        (field("m"), field("ef_construct"))
    }

    #[tokio::test]
    async fn the_graph_is_built_with_the_given_parameters_and_kept_on_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let params = kb_index::HnswParams {
            m: 8,
            ef_construct: 40,
            search_ef: 20,
        };
        let index = EmbeddedIndex::open_with(dir.path(), params).expect("open");
        index.ensure(DIMS).await.expect("ensure");
        let points: Vec<ChunkPoint> = (0..300u32)
            .map(|i| {
                let x = i as f32 / 10.0;
                chunk("doc.md", i, &["all"], [x.cos(), x.sin(), 0.2, 0.1])
            })
            .collect();
        index.upsert(points.clone()).await.expect("upsert");
        index.optimize().await.expect("optimize");

        assert_eq!(stored_graph(dir.path()), (8, 40));
        let target = &points[77];
        let hits = search(
            &index,
            Retrieval::Dense,
            &target.vector,
            "",
            &Filter::default(),
            3,
        )
        .await;
        assert_eq!(hits[0].id, target.id);
        drop(index);
        let reopened = EmbeddedIndex::open(dir.path()).expect("reopen with the defaults");
        reopened.ensure(DIMS).await.expect("ensure");
        assert_eq!(stored_graph(dir.path()), (8, 40));
        let default = kb_index::HnswParams::default();
        let fresh = tempfile::tempdir().expect("temp dir");
        let created = EmbeddedIndex::open(fresh.path()).expect("open");
        created.ensure(DIMS).await.expect("ensure");
        assert_eq!(
            stored_graph(fresh.path()),
            (default.m as u64, default.ef_construct as u64)
        );
    }

    #[tokio::test]
    async fn an_index_written_without_bm25_vectors_gets_them_on_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let kernel = with_text(
            chunk("a.md", 0, &["all"], [1.0, 0.0, 0.0, 0.0]),
            "Loading kernel modules.",
        );
        let holiday = with_text(
            chunk("b.md", 0, &["all"], [0.0, 1.0, 0.0, 0.0]),
            "Holiday policy.",
        );
        write_dense_only_index(dir.path(), &[kernel.clone(), holiday.clone()]);

        let index = EmbeddedIndex::open(dir.path()).expect("open adds the sparse vector");
        index
            .ensure(DIMS)
            .await
            .expect("ensure accepts the upgraded index");
        let hits = search(
            &index,
            Retrieval::Sparse,
            &[0.0, 1.0, 0.0, 0.0],
            "kernel modules",
            &Filter::default(),
            5,
        )
        .await;

        assert_eq!(ids_of(&hits), vec![kernel.id]);
        assert!(hits[0].cosine.abs() < 1e-4, "{}", hits[0].cosine);
        drop(index);
        let reopened = EmbeddedIndex::open(dir.path()).expect("reopen");
        let again = search(
            &reopened,
            Retrieval::Hybrid,
            &[0.0, 1.0, 0.0, 0.0],
            "kernel modules",
            &Filter::default(),
            5,
        )
        .await;
        assert_eq!(again.len(), 2, "{again:?}");
    }

    #[tokio::test]
    async fn a_fresh_folder_reads_as_empty_and_refuses_writes_before_ensure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = EmbeddedIndex::open(&dir.path().join("nested/index")).expect("open");

        assert_eq!(index.count().await.expect("count"), 0);
        assert!(index.point_ids().await.expect("ids").is_empty());
        assert!(
            index
                .search(&dense(&[1.0; DIMS], &Filter::default(), 5))
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
            .search(&dense(&[1.0, 0.0, 0.0, 0.0], &groups(&["hr"]), 5))
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
        // Only the sparse vectors, which always sit in their inverted index.
        assert_eq!(before.indexed_vectors, COUNT, "{before:?}");

        let started = std::time::Instant::now();
        index.optimize().await.expect("optimize");
        eprintln!("optimize took {:?}", started.elapsed());

        let after = index.info().await.expect("info");
        assert_eq!(after.points, COUNT, "{after:?}");
        assert!(
            after.indexed_vectors >= 2 * COUNT,
            "HNSW was not built: {after:?}"
        );
        for probe in [0, 777, COUNT - 1] {
            let hits = index
                .search(&dense(&vectors[probe], &Filter::default(), 5))
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
            .search(&dense(&vectors[777], &docs(&["doc27.md"]), 5))
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
        assert!(info.indexed_vectors >= 2 * COUNT, "{info:?}");
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

        assert!(matches!(err, IndexError::Unavailable { .. }), "{err:?}");
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
