//! Consistency of the catalog and the vector index: [`check`] compares them, [`repair`] makes
//! them agree again.
//!
//! They agree when every chunk in the catalog is a point in the index and every point in the
//! index is a chunk in the catalog (point ids are unique on both sides, so each chunk is then
//! indexed exactly once), and no write-ahead record (pending point, tombstone) is left over
//! from an interrupted run. `kb ingest` restores that on its own ([`Ingestor::recover`] at the
//! start of each run); `kb check` looks, and `kb check --repair` fixes what a crash, a lost
//! index folder or a hand edit left behind without re-reading any source file.
//!
//! # Why repair re-embeds from the catalog
//!
//! A chunk the catalog has and the index lacks is re-embedded from the text the catalog
//! stores, rather than marking its document for re-ingest (resetting its content hash):
//!
//! - the catalog is the record of what was ingested; rebuilding its points from it needs
//!   neither the source file (which may have moved, changed or gone since) nor another
//!   `kb ingest`, and `kb check` is clean right after the repair;
//! - the result is the same point ingest would have written: the id is the catalog's, the
//!   payload comes from the document record and the chunk (title, path, groups, headings,
//!   text, byte range), and the embedding text is rebuilt exactly as the splitter built it
//!   (see [`embedding_text`]);
//! - it is refused when the configured embedding model is not the one the index was built
//!   with, which is the one case where re-embedding would put foreign vectors in the index.
//!
//! Repair must not run while an ingest writes to the same index (only possible with a Qdrant
//! server: the embedded index is locked by one process): the in-flight run's uncommitted
//! points look like orphans.
//!
//! [`Ingestor::recover`]: crate::Ingestor::recover

use crate::batch::{BatchError, BatchItem, Batcher, Pacing, embed_batch};
use crate::pipeline::{IngestError, META_DIMS, META_MODEL};
use kb_core::{
    Catalog, Chunk, ChunkPayload, ChunkPoint, DocumentId, DocumentRecord, Embedder, Embedding,
    StoredChunk, VectorIndex,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// Catalog and index agree and no interrupted run left records behind.
    pub consistent: bool,
    /// Documents in the catalog.
    pub documents: u64,
    /// Chunks in the catalog (each names one point id).
    pub catalog_chunks: u64,
    /// Points in the index.
    pub index_points: u64,
    /// Catalog chunks whose point is not in the index (sorted).
    pub missing_in_index: Vec<Uuid>,
    /// Index points that no catalog chunk names (sorted).
    pub orphaned_in_index: Vec<Uuid>,
    /// Pending-point records: points an interrupted run wrote (or meant to write) and never
    /// committed.
    pub pending: u64,
    /// Tombstones: points the catalog dropped whose deletion from the index is not confirmed.
    pub tombstones: u64,
    /// Ingest runs that were still marked `running` although their process is gone (killed),
    /// now marked `interrupted`.
    #[serde(default)]
    pub interrupted_runs: Vec<i64>,
}

impl ConsistencyReport {
    fn new(
        documents: u64,
        catalog: &HashSet<Uuid>,
        index: &HashSet<Uuid>,
        pending: u64,
        tombstones: u64,
    ) -> Self {
        let mut missing_in_index: Vec<Uuid> = catalog.difference(index).copied().collect();
        let mut orphaned_in_index: Vec<Uuid> = index.difference(catalog).copied().collect();
        missing_in_index.sort();
        orphaned_in_index.sort();
        Self {
            consistent: missing_in_index.is_empty()
                && orphaned_in_index.is_empty()
                && pending == 0
                && tombstones == 0,
            documents,
            catalog_chunks: catalog.len() as u64,
            index_points: index.len() as u64,
            missing_in_index,
            orphaned_in_index,
            pending,
            tombstones,
            interrupted_runs: Vec::new(),
        }
    }
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    pub before: ConsistencyReport,
    /// Points deleted from the index: orphans, and leftovers of interrupted runs.
    pub deleted_points: u64,
    /// Pending-point records and tombstones forgotten.
    pub cleared_records: u64,
    /// Catalog chunks re-embedded and written back to the index.
    pub reembedded_chunks: u64,
    pub embedding_calls: u64,
    /// Documents that had chunks re-embedded.
    pub documents: Vec<DocumentId>,
    pub after: ConsistencyReport,
}

/// Compare the catalog with the index. Reads only, except that ingest runs left `running` by a
/// process that is gone are marked `interrupted` (see [`Catalog::interrupt_stale_runs`]).
pub async fn check(
    catalog: &dyn Catalog,
    index: &dyn VectorIndex,
) -> Result<ConsistencyReport, IngestError> {
    let interrupted_runs = catalog.interrupt_stale_runs().await?;
    let documents = catalog.list_documents().await?.len() as u64;
    let in_catalog: HashSet<Uuid> = catalog.all_point_ids().await?.into_iter().collect();
    let in_index: HashSet<Uuid> = index.point_ids().await?.into_iter().collect();
    let pending = catalog.pending_points().await?.len() as u64;
    let tombstones = catalog.tombstones().await?.len() as u64;
    Ok(ConsistencyReport {
        interrupted_runs,
        ..ConsistencyReport::new(documents, &in_catalog, &in_index, pending, tombstones)
    })
}

/// Make the index agree with the catalog: delete orphans and leftovers of interrupted runs from
/// the index, forget the write-ahead records, and re-embed catalog chunks missing from the
/// index (in batches within `pacing`'s caps). Idempotent; safe to interrupt and run again.
pub async fn repair(
    catalog: &dyn Catalog,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    pacing: &Pacing,
) -> Result<RepairReport, IngestError> {
    let before = check(catalog, index).await?;
    let mut report = RepairReport {
        before: before.clone(),
        ..RepairReport::default()
    };
    if before.consistent {
        report.after = before;
        return Ok(report);
    }
    // Refuse before changing anything if re-embedding would be needed and is not possible.
    if !before.missing_in_index.is_empty() {
        check_model(catalog, embedder).await?;
        index.ensure(embedder.dimensions()).await?;
    }

    // Leftovers first, as `Ingestor::recover` does: points named by write-ahead records that
    // are not catalog chunks go, then the records themselves.
    let in_catalog: HashSet<Uuid> = catalog.all_point_ids().await?.into_iter().collect();
    let mut records: Vec<Uuid> = catalog.pending_points().await?;
    records.extend(catalog.tombstones().await?);
    records.sort();
    records.dedup();
    let mut delete: HashSet<Uuid> = records
        .iter()
        .filter(|id| !in_catalog.contains(id))
        .copied()
        .collect();
    delete.extend(before.orphaned_in_index.iter().copied());
    let mut delete: Vec<Uuid> = delete.into_iter().collect();
    delete.sort();
    if !delete.is_empty() {
        warn!(
            points = delete.len(),
            "deleting index points the catalog does not name"
        );
        index.delete_points(&delete).await?;
        report.deleted_points = delete.len() as u64;
    }
    if !records.is_empty() {
        catalog.clear_tombstones(&records).await?;
        report.cleared_records = records.len() as u64;
    }

    if !before.missing_in_index.is_empty() {
        let missing: HashSet<Uuid> = before.missing_in_index.iter().copied().collect();
        let restored = restore_points(catalog, index, embedder, pacing, &missing).await?;
        report.reembedded_chunks = restored.chunks;
        report.embedding_calls = restored.embedding_calls;
        report.documents = restored.documents;
    }

    report.after = check(catalog, index).await?;
    info!(
        deleted = report.deleted_points,
        reembedded = report.reembedded_chunks,
        consistent = report.after.consistent,
        "repair finished"
    );
    Ok(report)
}

/// What [`restore_points`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    pub chunks: u64,
    pub embedding_calls: u64,
    pub documents: Vec<DocumentId>,
}

/// Embed the catalog chunks named in `wanted` from the text the catalog stores and upsert
/// them into `index`, with the payload ingest gives them. Batches follow `pacing`'s caps and
/// are sent one at a time (a repair or a rebuild is not in a hurry; a failed batch is retried
/// alone as in ingest). Idempotent: points are upserted by id.
pub(crate) async fn restore_points(
    catalog: &dyn Catalog,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    pacing: &Pacing,
    wanted: &HashSet<Uuid>,
) -> Result<Restored, IngestError> {
    let mut restored = Restored::default();
    for doc in catalog.list_documents().await? {
        let chunks: Vec<StoredChunk> = catalog
            .chunks(&doc.id)
            .await?
            .into_iter()
            .filter(|c| wanted.contains(&c.point_id))
            .collect();
        if chunks.is_empty() {
            continue;
        }
        info!(id = %doc.id, chunks = chunks.len(), "embedding chunks from the catalog");
        let mut batcher = Batcher::new(pacing);
        let mut batches = Vec::new();
        for (i, stored) in chunks.iter().enumerate() {
            let text = embedding_text(&stored.chunk, &doc.title, embedder);
            let tokens = embedder.count_tokens(&text);
            batches.extend(batcher.push(BatchItem {
                key: i,
                text,
                tokens,
            }));
        }
        batches.extend(batcher.flush());
        for batch in batches {
            let outcome = embed_batch(
                embedder,
                batch,
                pacing.batch_retries,
                CancellationToken::new(),
            )
            .await;
            restored.embedding_calls += u64::from(outcome.calls);
            let vectors = match outcome.result {
                Ok(vectors) => vectors,
                Err(BatchError::Model(e)) => return Err(IngestError::Model(e)),
                Err(BatchError::Cancelled) => unreachable!("BUG: this token is never cancelled"),
            };
            let points: Vec<ChunkPoint> = outcome
                .batch
                .items
                .iter()
                .zip(vectors)
                .map(|(item, vector)| stored_point(&doc, &chunks[item.key], vector))
                .collect();
            restored.chunks += points.len() as u64;
            index.upsert(points).await?;
        }
        restored.documents.push(doc.id.clone());
    }
    Ok(restored)
}

/// The index point of a catalog chunk, as ingest wrote it.
fn stored_point(doc: &DocumentRecord, stored: &StoredChunk, vector: Embedding) -> ChunkPoint {
    let c = &stored.chunk;
    ChunkPoint {
        id: stored.point_id,
        vector,
        payload: ChunkPayload {
            doc_id: doc.id.clone(),
            doc_hash: doc.content_hash.clone(),
            ordinal: c.ordinal,
            title: doc.title.clone(),
            path: doc.path.clone(),
            heading_path: c.heading_path.clone(),
            text: c.text.clone(),
            byte_start: c.byte_start,
            byte_end: c.byte_end,
            location: c.location.clone(),
            groups: doc.groups.clone(),
            meta: doc.meta.clone(),
        },
    }
}

/// Refuse to re-embed with another model than the one the index was built with.
async fn check_model(catalog: &dyn Catalog, embedder: &dyn Embedder) -> Result<(), IngestError> {
    let configured = embedder.model_id();
    let dims = embedder.dimensions().to_string();
    let indexed = catalog.get_meta(META_MODEL).await?;
    let indexed_dims = catalog.get_meta(META_DIMS).await?;
    match indexed {
        Some(indexed)
            if indexed != configured || indexed_dims.as_deref().is_some_and(|d| d != dims) =>
        {
            Err(IngestError::ModelChanged {
                indexed: format!(
                    "{indexed} ({} dimensions)",
                    indexed_dims.unwrap_or_default()
                ),
                configured: format!("{configured} ({dims} dimensions)"),
            })
        }
        _ => Ok(()),
    }
}

/// The text ingest embedded for a stored chunk.
///
/// Mirrors the splitter (`split::ChunkSplitter::fit_embedding_text`): it drops outer headings
/// until title + headings + chunk fit the embedder's input and stores the heading path it kept,
/// and drops the title only once no heading is left. So the stored heading path is the one that
/// was embedded, and the title was embedded unless the text with it and no headings is too
/// long. A unit test pins this against the splitter.
pub fn embedding_text(chunk: &Chunk, title: &str, embedder: &dyn Embedder) -> String {
    let text = chunk.embedding_text(title);
    if chunk.heading_path.is_empty()
        && !title.is_empty()
        && embedder.count_tokens(&text) > embedder.max_input_tokens()
    {
        chunk.embedding_text("")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DocumentFormat;
    use crate::pipeline::test_support::{FakeCatalog, FakeEmbedder, FakeIndex, ingestor_over};
    use crate::split::{ChunkSplitter, SplitOptions};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    /// Batches of at most `n` chunks, one at a time.
    fn inputs(n: usize) -> Pacing {
        Pacing {
            batch_max_inputs: n,
            batch_max_tokens: 10_000,
            concurrency: 1,
            batch_retries: 0,
        }
    }

    struct World {
        catalog: Arc<FakeCatalog>,
        index: Arc<FakeIndex>,
        embedder: Arc<FakeEmbedder>,
        _docs: tempfile::TempDir,
    }

    /// Three Markdown documents ingested through the real pipeline.
    async fn ingested() -> World {
        let docs = tempfile::tempdir().unwrap();
        for (name, body) in [
            (
                "leave.md",
                "# Leave\n\n## Vacation\n\nNew employees get 25 vacation days per calendar year, \
                 prorated in the first year of service.\n\nAfter three years of service the \
                 entitlement rises to 28 days, and after six years to 30 days.\n\n## Sick\n\n\
                 Tell your manager on the first day. Bring a note from a doctor from day four on.\n",
            ),
            (
                "desks.md",
                "---\ntitle: Desks\ngroups: [facilities]\n---\n# Booking\n\nBook hot desks in \
                 the desk app.\n",
            ),
            (
                "notes.txt",
                "Plain text without headings. It has a few sentences. The third one is here, \
                 and it is long enough to need a chunk of its own after the first two.",
            ),
        ] {
            std::fs::write(docs.path().join(name), body).unwrap();
        }
        let (catalog, index, embedder) = (
            Arc::new(FakeCatalog::default()),
            Arc::new(FakeIndex::default()),
            Arc::new(FakeEmbedder::default()),
        );
        let ingestor = ingestor_over(catalog.clone(), index.clone(), embedder.clone(), 2);
        let report = ingestor
            .ingest(&[docs.path().to_path_buf()], &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(report.stats.added, 3, "{report:?}");
        World {
            catalog,
            index,
            embedder,
            _docs: docs,
        }
    }

    #[tokio::test]
    async fn a_finished_ingest_is_consistent() {
        let w = ingested().await;

        let report = check(w.catalog.as_ref(), w.index.as_ref()).await.unwrap();

        assert!(report.consistent, "{report:?}");
        assert_eq!(report.documents, 3);
        assert!(report.catalog_chunks >= 4);
        assert_eq!(report.catalog_chunks, report.index_points);
    }

    #[tokio::test]
    async fn check_names_missing_and_orphaned_points_and_leftover_records() {
        let w = ingested().await;
        let ids = w.catalog.all_point_ids().await.unwrap();
        let lost = ids[0];
        w.index.delete_points(&[lost]).await.unwrap();
        let stray = w.index.insert_stray();
        let pending = Uuid::from_u128(7);
        w.catalog.record_pending_points(&[pending]).await.unwrap();

        let report = check(w.catalog.as_ref(), w.index.as_ref()).await.unwrap();

        assert!(!report.consistent);
        assert_eq!(report.missing_in_index, vec![lost]);
        assert_eq!(report.orphaned_in_index, vec![stray]);
        assert_eq!(report.pending, 1);
        assert_eq!(report.tombstones, 0);
    }

    #[tokio::test]
    async fn repair_restores_the_points_ingest_wrote_and_deletes_the_rest() {
        let w = ingested().await;
        let original = w.index.snapshot();
        let ids = w.catalog.all_point_ids().await.unwrap();
        w.index.delete_points(&ids[..3]).await.unwrap();
        let stray = w.index.insert_stray();
        let tombstoned = Uuid::from_u128(9);
        w.catalog.add_tombstone(tombstoned);
        let calls_before = w.embedder.calls();

        let report = repair(
            w.catalog.as_ref(),
            w.index.as_ref(),
            w.embedder.as_ref(),
            &inputs(2),
        )
        .await
        .unwrap();

        assert!(report.after.consistent, "{report:?}");
        assert_eq!(report.reembedded_chunks, 3);
        assert_eq!(
            report.deleted_points, 2,
            "the stray point and the tombstone"
        );
        assert_eq!(report.cleared_records, 1);
        assert_eq!(w.embedder.calls() - calls_before, report.embedding_calls);
        assert!(!w.index.snapshot().contains_key(&stray));
        // Same ids, same payloads, same vectors (the fake embedder is a function of the text,
        // so equal vectors mean the same embedding text was rebuilt).
        assert_eq!(w.index.snapshot(), original);
    }

    #[tokio::test]
    async fn repair_rebuilds_a_lost_index_from_the_catalog() {
        let w = ingested().await;
        let original = w.index.snapshot();
        w.index.wipe();

        let report = repair(
            w.catalog.as_ref(),
            w.index.as_ref(),
            w.embedder.as_ref(),
            &inputs(32),
        )
        .await
        .unwrap();

        assert!(report.after.consistent);
        assert_eq!(report.documents.len(), 3);
        assert_eq!(w.index.snapshot(), original);
    }

    #[tokio::test]
    async fn repair_refuses_to_re_embed_with_another_model() {
        let w = ingested().await;
        let ids = w.catalog.all_point_ids().await.unwrap();
        w.index.delete_points(&ids[..1]).await.unwrap();
        let other = FakeEmbedder::named("other-model");

        let err = repair(w.catalog.as_ref(), w.index.as_ref(), &other, &inputs(8))
            .await
            .unwrap_err();

        assert!(matches!(err, IngestError::ModelChanged { .. }), "{err}");
        assert_eq!(other.calls(), 0);
        let after = check(w.catalog.as_ref(), w.index.as_ref()).await.unwrap();
        assert_eq!(after.missing_in_index.len(), 1, "nothing was changed");
    }

    #[tokio::test]
    async fn repairing_a_consistent_knowledge_base_changes_nothing() {
        let w = ingested().await;
        let calls = w.embedder.calls();

        let report = repair(
            w.catalog.as_ref(),
            w.index.as_ref(),
            w.embedder.as_ref(),
            &inputs(8),
        )
        .await
        .unwrap();

        assert!(report.before.consistent && report.after.consistent);
        assert_eq!(report.deleted_points + report.reembedded_chunks, 0);
        assert_eq!(w.embedder.calls(), calls);
    }

    #[test]
    fn rebuilt_embedding_text_matches_the_splitter_even_when_context_is_trimmed() {
        // A 40-token input limit: long headings are dropped, and a long title too when no
        // heading is left.
        let embedder = Arc::new(FakeEmbedder::default().with_max_input_tokens(48));
        let splitter = ChunkSplitter::new(
            embedder.clone(),
            SplitOptions {
                chunk_tokens: 20,
                overlap_tokens: 0,
            },
        )
        .unwrap();
        let long_title = "very long title words ".repeat(8);
        let text = format!(
            "# {}\n\n{}\n\n## Short\n\n{}\n\nNo headings here at all.",
            "heading ".repeat(12),
            "alpha beta gamma delta epsilon. ".repeat(6),
            "zeta eta theta iota. ".repeat(3),
        );
        let (mut cases, mut title_dropped, mut headings_trimmed) = (0, 0, 0);
        for title in ["", "Short title", long_title.as_str()] {
            for format in [DocumentFormat::Markdown, DocumentFormat::Text] {
                for piece in splitter.split(&text, format, title) {
                    assert_eq!(
                        embedding_text(&piece.chunk, title, embedder.as_ref()),
                        piece.embedding_text,
                        "title {title:?}, chunk {:?}",
                        piece.chunk
                    );
                    cases += 1;
                    if !title.is_empty() && !piece.embedding_text.starts_with(title) {
                        title_dropped += 1;
                    }
                    if piece.chunk.heading_path.is_empty() && piece.chunk.byte_start > 0 {
                        headings_trimmed += 1;
                    }
                }
            }
        }
        assert!(cases > 10);
        assert!(title_dropped > 0, "no case drops the title");
        assert!(headings_trimmed > 0, "no case drops headings");
    }
}
