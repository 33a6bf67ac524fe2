//! Writing what the embedding batches bring, in groups: each group's points are recorded as
//! pending (write-ahead), upserted in one index write, and the documents they complete are
//! committed in one catalog transaction; the points those documents replace are deleted.

use super::prepare::OpenDocument;
use super::report::IngestReport;
use super::{IngestError, Ingestor};
use crate::batch::{Batch, BatchError, BatchOutcome, Batcher, Pacing};
use crate::progress::Tracker;
use kb_core::error::chain;
use kb_core::{ChunkPoint, DocumentRecord, ModelError, StoredChunk};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// When the points and documents that landed are written. Each write of the embedded index
/// ends with a disk sync, and each catalog transaction costs a round trip per row, so writing
/// per batch or per document made the writes, not embedding, the slowest stage of an ingest
/// with a fast engine. A group is written when a landing brings it to `max_points` points or
/// `max_documents` complete documents, at the first landing `max_delay` after the previous
/// write (so with a slow engine every landing is written at once), and at the end of the run
/// (also after Ctrl-C). A crash loses at most the group being assembled: its
/// documents are ingested again by the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    pub max_points: usize,
    pub max_documents: usize,
    pub max_delay: Duration,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            max_points: 1024,
            max_documents: 256,
            max_delay: Duration::from_secs(2),
        }
    }
}

impl GroupCommit {
    /// Write every batch and document as it lands (the behaviour before group commit).
    pub fn none() -> Self {
        Self {
            max_points: 1,
            max_documents: 1,
            max_delay: Duration::ZERO,
        }
    }
}

impl Ingestor {
    /// Write what an embedding batch brought: points of live documents go to the index (after
    /// their write-ahead records), and documents whose last chunk this was are committed.
    pub(super) async fn land(
        &self,
        outcome: BatchOutcome<ItemKey>,
        work: &mut Work,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
    ) -> Result<(), IngestError> {
        let BatchOutcome {
            batch,
            result,
            calls,
            waited,
            started,
            finished,
        } = outcome;
        work.intervals.push((started, finished));
        report.stats.embedding_calls += u64::from(calls);
        report.pacing.batches += 1;
        report.pacing.retries += u64::from(calls - 1);
        report.pacing.retry_wait_ms += waited.as_millis() as u64;
        tracker.snapshot.embedding_calls += u64::from(calls);
        let vectors = match result {
            Ok(vectors) => vectors,
            Err(BatchError::Cancelled) => return Ok(()),
            Err(BatchError::Model(e)) => {
                return self.refused(batch, e, work, report, tracker).await;
            }
        };
        let tokens = batch.tokens as u64;
        report.stats.tokens += tokens;
        tracker.snapshot.chunks += batch.len() as u64;
        tracker.snapshot.tokens += tokens;
        tracker.emit();

        for (item, vector) in batch.items.iter().zip(vectors) {
            if let Some(doc) = work.docs.get(&item.key.doc)
                && doc.refused.is_none()
            {
                let point = doc.point(&doc.pieces[item.key.piece], vector);
                work.group.add_point(item.key.doc, point);
            }
        }
        for item in &batch.items {
            self.chunk_done(item.key.doc, work, report, tracker);
        }
        Ok(())
    }

    /// Write the group: record its points as pending, upsert them, then commit the documents
    /// they complete in one transaction and drop the points those documents replace.
    pub(super) async fn write_group(
        &self,
        work: &mut Work,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
    ) -> Result<(), IngestError> {
        work.last_write = Instant::now();
        let Group { points, done } = std::mem::take(&mut work.group);
        let points: Vec<ChunkPoint> = points.into_iter().map(|(_, point)| point).collect();
        if !points.is_empty() {
            let ids: Vec<_> = points.iter().map(|p| p.id).collect();
            let t = Instant::now();
            self.catalog.record_pending_points(&ids).await?;
            report.timings.catalog_ms += t.elapsed().as_millis() as u64;
            let t = Instant::now();
            self.index.upsert(points).await?;
            report.timings.upsert_ms += t.elapsed().as_millis() as u64;
        }
        if done.is_empty() {
            return Ok(());
        }
        let entries: Vec<(DocumentRecord, Vec<StoredChunk>)> = done
            .iter()
            .map(|doc| (doc.record(), doc.stored_chunks()))
            .collect();
        let t = Instant::now();
        let replaced = self.catalog.commit_documents(&entries).await?;
        report.timings.catalog_ms += t.elapsed().as_millis() as u64;
        if !replaced.is_empty() {
            let t = Instant::now();
            self.index.delete_points(&replaced).await?;
            report.timings.upsert_ms += t.elapsed().as_millis() as u64;
            self.catalog.clear_tombstones(&replaced).await?;
        }
        for doc in done {
            report.stats.chunks += doc.pieces.len() as u64;
            info!(id = %doc.input.id, action = ?doc.action, "document ingested");
            self.settle(&doc.input, Ok(doc.action), report, tracker);
        }
        Ok(())
    }

    /// A batch the model refused (not a rate limit or an outage): split it to find the chunk,
    /// and fail only the document that holds it.
    async fn refused(
        &self,
        batch: Batch<ItemKey>,
        error: ModelError,
        work: &mut Work,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
    ) -> Result<(), IngestError> {
        if !matches!(
            error,
            ModelError::ContextLengthExceeded { .. } | ModelError::InvalidRequest { .. }
        ) {
            return Err(IngestError::Model(error));
        }
        if batch.len() > 1 {
            warn!(error = %chain(&error), inputs = batch.len(), "the model refused a batch; sending its chunks one by one");
            for single in batch.into_singletons().into_iter().rev() {
                work.ready.push_front(single);
            }
            return Ok(());
        }
        let key = batch.items[0].key;
        if let Some(doc) = work.docs.get_mut(&key.doc) {
            doc.refused.get_or_insert_with(|| {
                format!("the embedding model refused it: {}", chain(&error))
            });
        }
        self.chunk_done(key.doc, work, report, tracker);
        Ok(())
    }

    /// One more chunk of a document is embedded (or refused). After its last, the document
    /// joins the group to be committed, or is reported failed if the model refused a chunk.
    fn chunk_done(
        &self,
        key: u64,
        work: &mut Work,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
    ) {
        let Some(doc) = work.docs.get_mut(&key) else {
            return;
        };
        doc.outstanding -= 1;
        if doc.outstanding > 0 {
            return;
        }
        let doc = work
            .docs
            .remove(&key)
            .expect("BUG: the document was just found");
        match doc.refused.clone() {
            Some(reason) => {
                work.group.drop_points_of(key);
                self.settle(&doc.input, Err(reason), report, tracker);
            }
            None => work.group.add_document(doc),
        }
    }
}

/// Which chunk of which open document a batch item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ItemKey {
    pub(super) doc: u64,
    pub(super) piece: usize,
}

/// The state of a run between files and batches.
pub(super) struct Work {
    pub(super) batcher: Batcher<ItemKey>,
    /// Closed batches waiting for a free slot, in order.
    pub(super) ready: VecDeque<Batch<ItemKey>>,
    pub(super) docs: HashMap<u64, OpenDocument>,
    pub(super) next_doc: u64,
    /// When each embedding task ran, for the stage timing.
    pub(super) intervals: Vec<(Instant, Instant)>,
    /// What landed and is not written yet.
    pub(super) group: Group,
    /// When the last group was written.
    pub(super) last_write: Instant,
}

/// Embedded points not written yet (with the key of their document), and complete documents
/// not committed yet.
#[derive(Default)]
pub(super) struct Group {
    points: Vec<(u64, ChunkPoint)>,
    done: Vec<OpenDocument>,
}

impl Group {
    fn add_point(&mut self, doc: u64, point: ChunkPoint) {
        self.points.push((doc, point));
    }

    fn add_document(&mut self, doc: OpenDocument) {
        self.done.push(doc);
    }

    /// Forget the unwritten points of a document that will not be committed.
    fn drop_points_of(&mut self, doc: u64) {
        self.points.retain(|(key, _)| *key != doc);
    }

    /// Whether to write the group now, `since` the previous write (or the start of the run).
    pub(super) fn is_due(&self, policy: &GroupCommit, since: Instant) -> bool {
        self.points.len() >= policy.max_points
            || self.done.len() >= policy.max_documents
            || since.elapsed() >= policy.max_delay
    }
}

impl Work {
    pub(super) fn new(pacing: &Pacing) -> Self {
        Self {
            batcher: Batcher::new(pacing),
            ready: VecDeque::new(),
            docs: HashMap::new(),
            next_doc: 0,
            intervals: Vec::new(),
            group: Group::default(),
            last_write: Instant::now(),
        }
    }
}
