//! Decorators that add up the time kb spends in each adapter, by stage.
//!
//! They wrap the boundary traits, so the real [`kb_ingest::Ingestor`] runs unchanged. Times
//! are busy times summed over calls (with concurrent calls they can exceed wall time).

use async_trait::async_trait;
use kb_core::{
    Catalog, CatalogError, ChunkPoint, DocumentId, DocumentRecord, Embedder, Embedding, Hit,
    IndexError, IngestRun, InputKind, ModelError, RunStats, SearchQuery, StoredChunk, VectorIndex,
};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// An adapter stage of an ingest run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Embed,
    Upsert,
    Catalog,
    /// `VectorIndex::optimize` at the end of a run: segment merge and HNSW build.
    Optimize,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Embed, Stage::Upsert, Stage::Catalog, Stage::Optimize];

    fn index(self) -> usize {
        self as usize
    }
}

/// Time and calls per [`Stage`], shared by the decorators.
#[derive(Debug, Default)]
pub struct StageClock {
    nanos: [AtomicU64; Stage::ALL.len()],
    calls: [AtomicU64; Stage::ALL.len()],
}

impl StageClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Await `fut`, adding its duration to `stage`.
    pub async fn time<T>(&self, stage: Stage, fut: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = fut.await;
        self.nanos[stage.index()].fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls[stage.index()].fetch_add(1, Ordering::Relaxed);
        out
    }

    pub fn elapsed(&self, stage: Stage) -> Duration {
        Duration::from_nanos(self.nanos[stage.index()].load(Ordering::Relaxed))
    }

    pub fn calls(&self, stage: Stage) -> u64 {
        self.calls[stage.index()].load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for stage in Stage::ALL {
            self.nanos[stage.index()].store(0, Ordering::Relaxed);
            self.calls[stage.index()].store(0, Ordering::Relaxed);
        }
    }
}

/// Times [`Embedder::embed`]; everything else is passed through untimed.
#[derive(Debug)]
pub struct TimedEmbedder {
    pub inner: Arc<dyn Embedder>,
    pub clock: Arc<StageClock>,
}

#[async_trait]
impl Embedder for TimedEmbedder {
    async fn embed(
        &self,
        inputs: &[String],
        kind: InputKind,
    ) -> Result<Vec<Embedding>, ModelError> {
        self.clock
            .time(Stage::Embed, self.inner.embed(inputs, kind))
            .await
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn max_input_tokens(&self) -> usize {
        self.inner.max_input_tokens()
    }

    fn model_id(&self) -> String {
        self.inner.model_id()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }

    fn token_spans(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        self.inner.token_spans(text)
    }

    fn counts_add_at_whitespace(&self) -> bool {
        self.inner.counts_add_at_whitespace()
    }
}

/// Times every call to the vector index as [`Stage::Upsert`], but `optimize` as
/// [`Stage::Optimize`].
#[derive(Debug)]
pub struct TimedIndex {
    pub inner: Arc<dyn VectorIndex>,
    pub clock: Arc<StageClock>,
}

#[async_trait]
impl VectorIndex for TimedIndex {
    async fn ensure(&self, dims: usize) -> Result<(), IndexError> {
        self.clock
            .time(Stage::Upsert, self.inner.ensure(dims))
            .await
    }

    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<(), IndexError> {
        self.clock
            .time(Stage::Upsert, self.inner.upsert(points))
            .await
    }

    async fn search(&self, query: &SearchQuery<'_>) -> Result<Vec<Hit>, IndexError> {
        self.clock
            .time(Stage::Upsert, self.inner.search(query))
            .await
    }

    async fn delete_points(&self, ids: &[Uuid]) -> Result<(), IndexError> {
        self.clock
            .time(Stage::Upsert, self.inner.delete_points(ids))
            .await
    }

    async fn delete_document(&self, id: &DocumentId) -> Result<(), IndexError> {
        self.clock
            .time(Stage::Upsert, self.inner.delete_document(id))
            .await
    }

    async fn point_ids(&self) -> Result<Vec<Uuid>, IndexError> {
        self.clock.time(Stage::Upsert, self.inner.point_ids()).await
    }

    async fn count(&self) -> Result<u64, IndexError> {
        self.clock.time(Stage::Upsert, self.inner.count()).await
    }

    async fn optimize(&self) -> Result<(), IndexError> {
        self.clock
            .time(Stage::Optimize, self.inner.optimize())
            .await
    }
}

/// Times every call to the catalog as [`Stage::Catalog`].
#[derive(Debug)]
pub struct TimedCatalog {
    pub inner: Arc<dyn Catalog>,
    pub clock: Arc<StageClock>,
}

#[async_trait]
impl Catalog for TimedCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.get_document(id))
            .await
    }

    async fn list_documents(&self) -> Result<Vec<DocumentRecord>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.list_documents())
            .await
    }

    async fn find_message(&self, message_id: &str) -> Result<Option<DocumentId>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.find_message(message_id))
            .await
    }

    async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError> {
        self.clock.time(Stage::Catalog, self.inner.chunks(id)).await
    }

    async fn chunk_range(
        &self,
        id: &DocumentId,
        ordinals: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<StoredChunk>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.chunk_range(id, ordinals))
            .await
    }

    async fn all_point_ids(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.all_point_ids())
            .await
    }

    async fn record_pending_points(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.record_pending_points(ids))
            .await
    }

    async fn commit_document(
        &self,
        doc: &DocumentRecord,
        chunks: &[StoredChunk],
    ) -> Result<Vec<Uuid>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.commit_document(doc, chunks))
            .await
    }

    async fn commit_documents(
        &self,
        docs: &[(DocumentRecord, Vec<StoredChunk>)],
    ) -> Result<Vec<Uuid>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.commit_documents(docs))
            .await
    }

    async fn remove_document(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.remove_document(id))
            .await
    }

    async fn set_document_source(
        &self,
        id: &DocumentId,
        source: &kb_core::DocumentSource,
    ) -> Result<(), CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.set_document_source(id, source))
            .await
    }

    async fn orphan_candidates(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.orphan_candidates())
            .await
    }

    async fn pending_points(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.pending_points())
            .await
    }

    async fn tombstones(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.tombstones())
            .await
    }

    async fn clear_tombstones(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.clear_tombstones(ids))
            .await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.get_meta(key))
            .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.set_meta(key, value))
            .await
    }

    async fn set_meta_many(&self, entries: &[(&str, &str)]) -> Result<(), CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.set_meta_many(entries))
            .await
    }

    async fn interrupt_stale_runs(&self) -> Result<Vec<i64>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.interrupt_stale_runs())
            .await
    }

    async fn start_run(&self) -> Result<i64, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.start_run())
            .await
    }

    async fn finish_run(
        &self,
        run: i64,
        status: &str,
        stats: &RunStats,
    ) -> Result<(), CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.finish_run(run, status, stats))
            .await
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<IngestRun>, CatalogError> {
        self.clock
            .time(Stage::Catalog, self.inner.list_runs(limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_clock_adds_each_call_to_its_stage() {
        let clock = StageClock::new();

        clock
            .time(Stage::Upsert, tokio::time::sleep(Duration::from_millis(5)))
            .await;
        clock.time(Stage::Upsert, async {}).await;

        assert_eq!(clock.calls(Stage::Upsert), 2);
        assert!(clock.elapsed(Stage::Upsert) >= Duration::from_millis(5));
        assert_eq!(clock.calls(Stage::Embed), 0);
        clock.reset();
        assert_eq!(clock.calls(Stage::Upsert), 0);
    }
}
