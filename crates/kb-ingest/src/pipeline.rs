//! One ingest run: walk the inputs, skip what is unchanged, embed and write what changed,
//! record everything in the catalog.
//!
//! Files are read and split ahead on the blocking pool (a few per core), and taken in input
//! order; their chunks go into cross-document batches capped by input count and tokens,
//! and up to `concurrency` batches are embedded at once (see [`crate::batch`]). Catalog and
//! index writes stay on the run's own task, in the order batches land, and are grouped
//! ([`GroupCommit`]): the points of many batches go to the index in one write (one disk sync),
//! and the documents they complete are committed in one catalog transaction.
//!
//! Crash safety: before a group's points are upserted their ids are recorded as pending; a
//! document is committed only when the last of its chunks is in the index, and the catalog
//! swaps a document's chunks in one transaction, turning replaced points into tombstones;
//! tombstones are deleted from the index afterwards. [`Ingestor::recover`] (run at the start
//! and at the end of every ingest) deletes whatever a crashed or stopped run left behind, so
//! catalog and index agree. `tests/crash.rs` at the workspace root proves it by killing
//! `kb ingest` at random moments; [`crate::check`] verifies (and repairs) the agreement on
//! demand.
//!
//! Cancellation (Ctrl-C) stops reading files and sending batches; the batches in flight land
//! and the documents they complete are committed. A document with chunks still unembedded is
//! not written: its points already in the index are deleted, and the next run ingests it
//! whole.

use crate::batch::{
    Batch, BatchError, BatchItem, BatchOutcome, Batcher, Pacing, PacingError, busy_time,
    embed_batch,
};
use crate::loader::{DocumentFormat, LoadError, LoadedDocument, load_file};
use crate::progress::{NoProgress, Phase, Progress, Tracker};
use crate::split::{ChunkSplitter, SplitChunk, SplitConfigError, SplitOptions};
use kb_core::{
    Catalog, CatalogError, ChunkPayload, ChunkPoint, DocumentId, DocumentMeta, DocumentRecord,
    DocumentSource, Embedder, Embedding, IndexError, ModelError, RunStats, StoredChunk,
    VectorIndex, content_hash, point_id,
};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::JoinQueue;
use tracing::{Instrument, info, info_span, warn};

/// Settings of an ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub split: SplitOptions,
    /// Batch caps, concurrency and retries of the embedding calls.
    pub pacing: Pacing,
    /// Files larger than this are skipped.
    pub max_file_bytes: u64,
    /// Access groups of documents that name none, when no groups are given on the command
    /// line for them (`ingest.default_groups`).
    pub default_groups: Vec<String>,
    /// Tags of documents that name none (`kb ingest --tags`).
    pub default_tags: Vec<String>,
    /// Owner of documents that name none (`kb ingest --owner`).
    pub default_owner: Option<String>,
    /// Remove catalogued documents under an ingested folder whose files are gone.
    pub prune: bool,
    /// Follow symbolic links that lead outside the folder being ingested
    /// (`ingest.follow_symlinks`, `kb ingest --follow-symlinks`). Off: such a link is skipped
    /// and reported. Links that stay inside the folder are always followed.
    pub follow_symlinks: bool,
    /// Report what would change without embedding or writing anything.
    pub dry_run: bool,
    /// How many landed points and documents are written together.
    pub group_commit: GroupCommit,
}

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

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            split: SplitOptions::default(),
            pacing: Pacing::default(),
            max_file_bytes: 20 * 1024 * 1024,
            default_groups: vec!["all".into()],
            default_tags: Vec::new(),
            default_owner: None,
            prune: false,
            follow_symlinks: false,
            dry_run: false,
            group_commit: GroupCommit::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("embedding failed: {0}; the run stopped here, run the same command again to resume")]
    Model(#[from] ModelError),
    #[error(
        "the index was built with embedding model {indexed} but kb is configured with {configured}; run `kb reindex` to rebuild it with the new model, or switch the configuration back"
    )]
    ModelChanged { indexed: String, configured: String },
    #[error(transparent)]
    Split(#[from] SplitConfigError),
    #[error(transparent)]
    Pacing(#[from] PacingError),
    #[error("{path}: no such file or folder")]
    NotFound { path: String },
    #[error(
        "groups {given:?} name no group (an empty list or name never means everyone): give at least one group, or `all` to let every reader see the documents"
    )]
    EmptyGroups { given: Vec<String> },
}

/// What happened to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentAction {
    Added,
    Updated,
    Unchanged,
    Removed,
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFailure {
    pub path: String,
    pub reason: String,
}

/// Wall time spent per stage. Reading, splitting and writing are summed over documents;
/// `embed_ms` is the time during which at least one embedding call was in flight (calls overlap).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub read_ms: u64,
    pub split_ms: u64,
    pub embed_ms: u64,
    pub upsert_ms: u64,
    pub catalog_ms: u64,
    pub total_ms: u64,
}

/// How the embedding calls of a run went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacingReport {
    /// Batches embedded (each is one call, plus its retries).
    pub batches: u64,
    /// Calls that repeated a failed batch (rate limited, engine unavailable).
    pub retries: u64,
    /// Time batches spent waiting to be retried (`Retry-After` or backoff), summed.
    pub retry_wait_ms: u64,
    /// Most embedding calls in flight at once.
    pub max_in_flight: usize,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestReport {
    pub run_id: Option<i64>,
    pub stats: RunStats,
    pub documents: Vec<(DocumentId, DocumentAction)>,
    pub failures: Vec<FileFailure>,
    pub timings: StageTimings,
    pub pacing: PacingReport,
    /// Stopped early on request; the next run finishes the job.
    pub interrupted: bool,
    pub dry_run: bool,
}

/// Catalog meta keys naming the embedding model (and its dimensions) the index was built with.
pub(crate) const META_MODEL: &str = "embedding_model";
pub(crate) const META_DIMS: &str = "embedding_dims";

/// Drives ingest runs over one catalog, index and embedder.
#[derive(Debug, Clone)]
pub struct Ingestor {
    catalog: Arc<dyn Catalog>,
    index: Arc<dyn VectorIndex>,
    embedder: Arc<dyn Embedder>,
    splitter: Arc<ChunkSplitter>,
    options: IngestOptions,
    /// Access groups given on the command line for this run (`kb ingest --groups`, the admin
    /// route's `groups`); `None` if none were given.
    cli_groups: Option<Vec<String>>,
}

/// A file found by walking an input, with its document id.
#[derive(Debug, Clone)]
struct Input {
    /// The path walked to it (a link's own path if it is one): reported, and cited.
    path: PathBuf,
    /// The file itself, links resolved (canonical): what is read, sidecar included.
    real: PathBuf,
    /// The canonical ingest root it was found under (the input named on the command line).
    root: PathBuf,
    id: DocumentId,
    /// Given by name on the command line (so an unsupported type is an error, not a skip).
    explicit: bool,
    /// Groups given for it on the command line: this run's, else those an earlier run gave
    /// (see [`DocumentSource::cli_groups`]); `None`: the configured defaults apply.
    cli_groups: Option<Vec<String>>,
}

impl Input {
    /// Where the document comes from, as the catalog records it.
    fn source(&self) -> DocumentSource {
        DocumentSource {
            path: self.real.display().to_string(),
            root: self.root.display().to_string(),
            cli_groups: self.cli_groups.clone(),
        }
    }
}

impl Ingestor {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        embedder: Arc<dyn Embedder>,
        options: IngestOptions,
    ) -> Result<Self, IngestError> {
        let splitter = Arc::new(ChunkSplitter::new(embedder.clone(), options.split)?);
        options.pacing.validate(embedder.as_ref())?;
        Ok(Self {
            catalog,
            index,
            embedder,
            splitter,
            options,
            cli_groups: None,
        })
    }

    /// The same ingestor with other per-run flags.
    pub fn with_run_flags(&self, prune: bool, dry_run: bool) -> Self {
        let mut this = self.clone();
        this.options.prune = prune;
        this.options.dry_run = dry_run;
        this
    }

    /// The same ingestor following symbolic links that leave the folder being ingested
    /// (`kb ingest --follow-symlinks`; see [`IngestOptions::follow_symlinks`]).
    pub fn with_symlinks_followed(&self) -> Self {
        let mut this = self.clone();
        this.options.follow_symlinks = true;
        this
    }

    /// Refuse to mix vectors of two models in one index.
    pub async fn check_model(&self) -> Result<(), IngestError> {
        let configured = self.embedder.model_id();
        let dims = self.embedder.dimensions().to_string();
        let indexed = self.catalog.get_meta(META_MODEL).await?;
        let indexed_dims = self.catalog.get_meta(META_DIMS).await?;
        if indexed.as_deref() == Some(configured.as_str())
            && indexed_dims.as_deref() == Some(dims.as_str())
        {
            return Ok(());
        }
        if let Some(indexed) = indexed
            && !self.catalog.list_documents().await?.is_empty()
        {
            return Err(IngestError::ModelChanged {
                indexed: format!(
                    "{indexed} ({} dimensions)",
                    indexed_dims.unwrap_or_default()
                ),
                configured: format!("{configured} ({dims} dimensions)"),
            });
        }
        self.catalog.set_meta(META_MODEL, &configured).await?;
        self.catalog.set_meta(META_DIMS, &dims).await?;
        Ok(())
    }

    /// Delete from the index whatever an interrupted run left there. Returns how many points
    /// were cleaned up.
    pub async fn recover(&self) -> Result<usize, IngestError> {
        let orphans = self.catalog.orphan_candidates().await?;
        if orphans.is_empty() {
            return Ok(0);
        }
        warn!(
            points = orphans.len(),
            "cleaning up points left by an interrupted run"
        );
        self.index.delete_points(&orphans).await?;
        self.catalog.clear_tombstones(&orphans).await?;
        Ok(orphans.len())
    }

    /// Ingest files and folders. Individual bad files are reported in the result; an error
    /// is returned only when the run cannot go on (catalog, index or engine down).
    pub async fn ingest(
        &self,
        inputs: &[PathBuf],
        cancel: &CancellationToken,
    ) -> Result<IngestReport, IngestError> {
        self.ingest_with_progress(inputs, cancel, &NoProgress).await
    }

    /// [`Ingestor::ingest`], reporting progress to `progress` as it goes.
    pub async fn ingest_with_progress(
        &self,
        inputs: &[PathBuf],
        cancel: &CancellationToken,
        progress: &dyn Progress,
    ) -> Result<IngestReport, IngestError> {
        let started = Instant::now();
        let mut report = IngestReport {
            dry_run: self.options.dry_run,
            ..IngestReport::default()
        };
        if let Some(given) = &self.cli_groups
            && (given.is_empty() || given.iter().any(|g| g.trim().is_empty()))
        {
            return Err(IngestError::EmptyGroups {
                given: given.clone(),
            });
        }
        let mut tracker = Tracker::new(progress);
        let files = collect_inputs(inputs, self.options.follow_symlinks, &mut report.failures)?;
        let files = self.resolve_identities(files, &mut report.failures).await?;
        tracker.snapshot.files_total = files.len() as u64;
        tracker.phase(Phase::Starting);
        if !self.options.dry_run {
            self.check_model().await?;
            self.index.ensure(self.embedder.dimensions()).await?;
            self.recover().await?;
            self.catalog.interrupt_stale_runs().await?;
            report.run_id = Some(self.catalog.start_run().await?);
        }
        let span = info_span!("ingest", run = report.run_id, files = files.len());
        let outcome = self
            .run(&files, inputs, cancel, &mut report, &mut tracker)
            .instrument(span)
            .await;
        tracker.phase(Phase::Finished);
        report.stats.failed = report.failures.len() as u64;
        report.timings.total_ms = started.elapsed().as_millis() as u64;
        if let Some(run) = report.run_id {
            let status = match (&outcome, report.interrupted, report.failures.is_empty()) {
                (Err(_), _, _) => "failed",
                (Ok(()), true, _) => "interrupted",
                (Ok(()), false, true) => "completed",
                (Ok(()), false, false) => "completed_with_errors",
            };
            self.catalog.finish_run(run, status, &report.stats).await?;
        }
        outcome.map(|()| report)
    }

    async fn run(
        &self,
        files: &[Input],
        roots: &[PathBuf],
        cancel: &CancellationToken,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
    ) -> Result<(), IngestError> {
        tracker.phase(Phase::Files);
        let pacing = self.options.pacing;
        let mut work = Work::new(&pacing);
        let mut seen = HashSet::new();
        let mut next_file = files.iter();
        let mut reading = true;
        // Files being read and split ahead, taken in input order: several per core, so that
        // the cores keep splitting while this task waits on a group write. Dropping the queue
        // (the run failed) aborts them.
        let mut preparing: JoinQueue<PreparedFile> = JoinQueue::new();
        let read_ahead = 4 * std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut tasks: JoinSet<BatchOutcome<ItemKey>> = JoinSet::new();
        // Retry waits end early on Ctrl-C; a failure of the run aborts the tasks (JoinSet drop).
        let waits = cancel.child_token();
        loop {
            if cancel.is_cancelled() && !report.interrupted {
                report.interrupted = true;
                reading = false;
                preparing.abort_all();
                info!(
                    in_flight = tasks.len(),
                    "stopping early on request after the batches in flight"
                );
            }
            if !report.interrupted {
                while tasks.len() < pacing.concurrency {
                    let Some(batch) = work.ready.pop_front() else {
                        break;
                    };
                    let (embedder, waits) = (self.embedder.clone(), waits.clone());
                    tasks.spawn(async move {
                        embed_batch(embedder.as_ref(), batch, pacing.batch_retries, waits).await
                    });
                    report.pacing.max_in_flight = report.pacing.max_in_flight.max(tasks.len());
                }
            }
            if reading {
                while preparing.len() < read_ahead
                    && let Some(input) = next_file.next()
                {
                    seen.insert(input.id.clone());
                    let (this, input) = (self.clone(), input.clone());
                    let span = info_span!("document", id = %input.id);
                    preparing.spawn(this.prepare(input).instrument(span));
                }
            }
            // Read ahead until one batch beyond the ones in flight is ready.
            if reading && work.ready.is_empty() {
                match preparing.join_next().await {
                    Some(file) => {
                        let file = file.expect("BUG: reading a file panicked");
                        tracker.snapshot.current = Some(file.input.id.clone());
                        tracker.emit();
                        self.read_file(file, &mut work, report, tracker).await?;
                    }
                    None => {
                        reading = false;
                        work.ready.extend(work.batcher.flush());
                    }
                }
                continue;
            }
            // Nothing to read and nothing to send now: wait for a batch to land.
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let outcome = joined.expect("BUG: an embedding task panicked");
            self.land(outcome, &mut work, report, tracker).await?;
            if work
                .group
                .is_due(&self.options.group_commit, work.last_write)
            {
                self.write_group(&mut work, report, tracker).await?;
            }
        }
        self.write_group(&mut work, report, tracker).await?;
        report.timings.embed_ms +=
            busy_time(std::mem::take(&mut work.intervals)).as_millis() as u64;
        if !self.options.dry_run {
            // Points of documents that never completed (interrupted, or refused by the model)
            // are pending records: delete them now rather than at the next run.
            self.recover().await?;
        }
        if report.interrupted {
            info!(
                unfinished = work.docs.len(),
                "stopped early on request; unfinished documents were not written"
            );
            return Ok(());
        }
        if self.options.prune {
            tracker.phase(Phase::Pruning);
            self.prune(roots, &seen, report).await?;
        }
        if !self.options.dry_run && (report.stats.added + report.stats.updated) > 0 {
            tracker.phase(Phase::Optimizing);
            let t = Instant::now();
            self.index.optimize().await?;
            report.timings.upsert_ms += t.elapsed().as_millis() as u64;
        }
        Ok(())
    }

    /// Take a file that was read, compared and split: queue its chunks for embedding.
    /// Unchanged and skipped files are settled here.
    async fn read_file(
        &self,
        file: PreparedFile,
        work: &mut Work,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
    ) -> Result<(), IngestError> {
        let PreparedFile {
            input,
            outcome,
            read_ms,
            split_ms,
        } = file;
        report.timings.read_ms += read_ms;
        report.timings.split_ms += split_ms;
        let outcome = match outcome {
            Ok(Prepared::Done(action)) => Ok(action),
            Ok(Prepared::Moved(source)) => {
                let t = Instant::now();
                self.catalog.set_document_source(&input.id, &source).await?;
                report.timings.catalog_ms += t.elapsed().as_millis() as u64;
                Ok(DocumentAction::Unchanged)
            }
            Ok(Prepared::Ignored) => {
                tracker.snapshot.files_done += 1;
                tracker.emit();
                return Ok(());
            }
            Ok(Prepared::Split(doc)) => {
                let key = work.next_doc;
                work.next_doc += 1;
                for (piece, p) in doc.pieces.iter().enumerate() {
                    let item = BatchItem {
                        key: ItemKey { doc: key, piece },
                        text: p.embedding_text.clone(),
                        tokens: p.chunk.token_count,
                    };
                    work.ready.extend(work.batcher.push(item));
                }
                work.docs.insert(key, *doc);
                return Ok(());
            }
            Err(FileError::Skip(reason)) => Err(reason),
            Err(FileError::Fatal(e)) => return Err(e),
        };
        self.settle(&input, outcome, report, tracker);
        Ok(())
    }

    /// Count a document's outcome, once it has one.
    fn settle(
        &self,
        input: &Input,
        outcome: Result<DocumentAction, String>,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
    ) {
        match outcome {
            Ok(action) => {
                match action {
                    DocumentAction::Added => report.stats.added += 1,
                    DocumentAction::Updated => report.stats.updated += 1,
                    DocumentAction::Unchanged => report.stats.unchanged += 1,
                    DocumentAction::Removed => report.stats.removed += 1,
                }
                report.documents.push((input.id.clone(), action));
            }
            Err(reason) => {
                warn!(path = %input.path.display(), %reason, "skipped file");
                report.failures.push(FileFailure {
                    path: input.path.display().to_string(),
                    reason,
                });
            }
        }
        tracker.snapshot.files_done += 1;
        tracker.emit();
    }

    /// Read a file, compare it with the catalog and split it (runs as its own task, a few
    /// files ahead of the run).
    async fn prepare(self, input: Input) -> PreparedFile {
        let (mut read_ms, mut split_ms) = (0, 0);
        let outcome = self.prepare_file(&input, &mut read_ms, &mut split_ms).await;
        PreparedFile {
            input,
            outcome,
            read_ms,
            split_ms,
        }
    }

    async fn prepare_file(
        &self,
        input: &Input,
        read_ms: &mut u64,
        split_ms: &mut u64,
    ) -> Result<Prepared, FileError> {
        let t = Instant::now();
        // The real file, so that the sidecar read is the one beside it, not beside a link.
        let path = input.real.clone();
        let max = self.options.max_file_bytes;
        let loaded = tokio::task::spawn_blocking(move || load_file(&path, max))
            .await
            .expect("BUG: file loading panicked");
        *read_ms += t.elapsed().as_millis() as u64;
        let mut doc = match loaded {
            Ok(doc) => doc,
            Err(LoadError::Unsupported) if !input.explicit => return Ok(Prepared::Ignored),
            Err(e) => return Err(FileError::Skip(e.to_string())),
        };
        let existing = self.catalog.get_document(&input.id).await?;
        if let Some(existing) = &existing
            && self.is_unchanged(existing, &doc, input)
        {
            let source = input.source();
            return Ok(
                if self.options.dry_run || existing.source.as_ref() == Some(&source) {
                    Prepared::Done(DocumentAction::Unchanged)
                } else {
                    Prepared::Moved(source)
                },
            );
        }
        let action = if existing.is_some() {
            DocumentAction::Updated
        } else {
            DocumentAction::Added
        };
        if self.options.dry_run {
            return Ok(Prepared::Done(action));
        }

        let t = Instant::now();
        let splitter = self.splitter.clone();
        let text = std::mem::take(&mut doc.text);
        let text_bytes = text.len() as u64;
        let (format, title) = (doc.format, doc.title.clone());
        let mut pieces = tokio::task::spawn_blocking(move || splitter.split(&text, format, &title))
            .await
            .expect("BUG: splitting panicked");
        // Byte ranges are kept in the source file's terms where the text is the file's own.
        if let Some(offset) = doc.source_offset {
            for piece in &mut pieces {
                piece.chunk.byte_start += offset;
                piece.chunk.byte_end += offset;
            }
        }
        *split_ms += t.elapsed().as_millis() as u64;
        if pieces.is_empty() {
            return Err(FileError::Skip(LoadError::NoText.to_string()));
        }
        let (groups, meta) = self.document_meta(&doc, input);
        Ok(Prepared::Split(Box::new(OpenDocument {
            input: input.clone(),
            action,
            outstanding: pieces.len(),
            pieces,
            doc,
            text_bytes,
            groups,
            meta,
            refused: None,
        })))
    }

    /// Write what an embedding batch brought: points of live documents go to the index (after
    /// their write-ahead records), and documents whose last chunk this was are committed.
    async fn land(
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
    async fn write_group(
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
            ModelError::ContextLengthExceeded(_) | ModelError::InvalidRequest(_)
        ) {
            return Err(IngestError::Model(error));
        }
        if batch.len() > 1 {
            warn!(%error, inputs = batch.len(), "the model refused a batch; sending its chunks one by one");
            for single in batch.into_singletons().into_iter().rev() {
                work.ready.push_front(single);
            }
            return Ok(());
        }
        let key = batch.items[0].key;
        if let Some(doc) = work.docs.get_mut(&key.doc) {
            doc.refused
                .get_or_insert_with(|| format!("the embedding model refused it: {error}"));
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

    /// A document's access groups and metadata: its own (front matter, then sidecar) field by
    /// field, else this run's defaults (`kb ingest --groups/--tags/--owner`; groups given on
    /// the command line by an earlier run for it; `ingest.default_groups`).
    fn document_meta(&self, doc: &LoadedDocument, input: &Input) -> (Vec<String>, DocumentMeta) {
        let own = &doc.front_matter;
        let default_groups = input
            .cli_groups
            .as_ref()
            .unwrap_or(&self.options.default_groups);
        let or_default = |own: &Vec<String>, default: &Vec<String>| {
            if own.is_empty() { default } else { own }.clone()
        };
        let meta = DocumentMeta {
            owner: own
                .owner
                .clone()
                .or_else(|| self.options.default_owner.clone()),
            effective_date: own.effective_date,
            tags: or_default(&own.tags, &self.options.default_tags),
        };
        (or_default(&own.groups, default_groups), meta)
    }

    /// Whether the catalogued version is this one: same bytes, and same title, groups and
    /// metadata (a changed sidecar or `--groups` re-indexes the document).
    fn is_unchanged(&self, existing: &DocumentRecord, doc: &LoadedDocument, input: &Input) -> bool {
        let (groups, meta) = self.document_meta(doc, input);
        existing.content_hash == doc.content_hash
            && existing.title == doc.title
            && existing.groups == groups
            && existing.meta == meta
    }

    /// The same ingestor with other defaults for documents that name no groups, tags or owner.
    /// `groups` are the groups given on the command line: they are remembered for each
    /// document and reused by later runs that give none; `None` gives none (documents keep
    /// the groups an earlier run gave them, else get `ingest.default_groups`). A list that is
    /// empty or holds an empty name makes the run fail ([`IngestError::EmptyGroups`]).
    pub fn with_default_metadata(
        &self,
        groups: Option<Vec<String>>,
        tags: Vec<String>,
        owner: Option<String>,
    ) -> Self {
        let mut this = self.clone();
        this.cli_groups = groups;
        this.options.default_tags = tags;
        this.options.default_owner = owner;
        this
    }

    /// Give each file its document id: the id of the document already catalogued for the
    /// same real file, whatever folder it was ingested from (so it keeps its id, and the groups
    /// an earlier run gave it on the command line), else the id computed from its path. A file
    /// whose computed id belongs to another file is refused, never let replace it.
    async fn resolve_identities(
        &self,
        files: Vec<Input>,
        failures: &mut Vec<FileFailure>,
    ) -> Result<Vec<Input>, IngestError> {
        let catalogued = self.catalog.list_documents().await?;
        let by_id: HashMap<&DocumentId, &DocumentRecord> =
            catalogued.iter().map(|d| (&d.id, d)).collect();
        let by_source: HashMap<&str, &DocumentRecord> = catalogued
            .iter()
            .filter_map(|d| Some((d.source.as_ref()?.path.as_str(), d)))
            .collect();
        let mut ids = HashSet::new();
        let mut resolved = Vec::with_capacity(files.len());
        for mut input in files {
            let real = input.real.display().to_string();
            let known = match by_source.get(real.as_str()) {
                Some(doc) => {
                    input.id = doc.id.clone();
                    Some(*doc)
                }
                None => match by_id.get(&input.id) {
                    Some(doc) => match other_file(doc, &input.real) {
                        Some(other) => {
                            failures.push(FileFailure {
                                path: input.path.display().to_string(),
                                reason: id_taken(&input, &other, doc),
                            });
                            continue;
                        }
                        None => Some(*doc),
                    },
                    None => None,
                },
            };
            let remembered = known
                .and_then(|doc| doc.source.as_ref())
                .and_then(|source| source.cli_groups.clone());
            input.cli_groups = self.cli_groups.clone().or(remembered);
            if !ids.insert(input.id.clone()) {
                failures.push(FileFailure {
                    path: input.path.display().to_string(),
                    reason: format!(
                        "another input already has document id {}; ingest it separately",
                        input.id
                    ),
                });
                continue;
            }
            resolved.push(input);
        }
        Ok(resolved)
    }

    /// Remove catalogued documents of the ingested folders (recorded source file, or path
    /// walked to it, under one of them) that this run did not find. Documents of other folders
    /// are never removed.
    async fn prune(
        &self,
        roots: &[PathBuf],
        seen: &HashSet<DocumentId>,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        let roots: Vec<PathBuf> = roots
            .iter()
            .filter(|r| r.is_dir())
            .filter_map(|r| r.canonicalize().ok())
            .collect();
        for doc in self.catalog.list_documents().await? {
            let source = doc.source.as_ref().map(|s| Path::new(&s.path));
            let under_root = roots.iter().any(|r| {
                Path::new(&doc.path).starts_with(r) || source.is_some_and(|s| s.starts_with(r))
            });
            if under_root && !seen.contains(&doc.id) {
                if !self.options.dry_run {
                    self.remove_document(&doc.id).await?;
                }
                report.stats.removed += 1;
                report.documents.push((doc.id, DocumentAction::Removed));
            }
        }
        Ok(())
    }

    /// Remove one document from catalog and index. Returns false if it was not catalogued.
    pub async fn remove_document(&self, id: &DocumentId) -> Result<bool, IngestError> {
        if self.catalog.get_document(id).await?.is_none() {
            return Ok(false);
        }
        let points = self.catalog.remove_document(id).await?;
        self.index.delete_points(&points).await?;
        self.catalog.clear_tombstones(&points).await?;
        Ok(true)
    }
}

/// Why one file was not ingested: skip it, or stop the run on an error.
enum FileError {
    Skip(String),
    Fatal(IngestError),
}

impl From<CatalogError> for FileError {
    fn from(e: CatalogError) -> Self {
        Self::Fatal(e.into())
    }
}

/// What reading a file came to.
enum Prepared {
    /// Not a document (an unsupported file found by walking a folder).
    Ignored,
    /// Settled without embedding: unchanged, or a dry run.
    Done(DocumentAction),
    /// Unchanged, but found at another path or under another root, or with other
    /// command-line groups: record its new source.
    Moved(DocumentSource),
    /// Split into chunks that now need embedding.
    Split(Box<OpenDocument>),
}

/// A document whose chunks are being embedded. It is committed once the last of them lands.
struct OpenDocument {
    input: Input,
    action: DocumentAction,
    /// Its loaded form, without the text (the chunks hold what is needed of it).
    doc: LoadedDocument,
    text_bytes: u64,
    /// Access groups of its points.
    groups: Vec<String>,
    /// Owner, effective date and tags of its points.
    meta: DocumentMeta,
    pieces: Vec<SplitChunk>,
    /// Chunks not embedded yet.
    outstanding: usize,
    /// Why the model refused one of its chunks; such a document is not written.
    refused: Option<String>,
}

impl OpenDocument {
    fn point_id(&self, piece: &SplitChunk) -> uuid::Uuid {
        point_id(&self.input.id, &self.doc.content_hash, piece.chunk.ordinal)
    }

    fn point(&self, piece: &SplitChunk, vector: Embedding) -> ChunkPoint {
        let c = &piece.chunk;
        ChunkPoint {
            id: self.point_id(piece),
            vector,
            payload: ChunkPayload {
                doc_id: self.input.id.clone(),
                doc_hash: self.doc.content_hash.clone(),
                ordinal: c.ordinal,
                title: self.doc.title.clone(),
                path: self.input.path.display().to_string(),
                heading_path: c.heading_path.clone(),
                text: c.text.clone(),
                byte_start: c.byte_start,
                byte_end: c.byte_end,
                groups: self.groups.clone(),
                meta: self.meta.clone(),
            },
        }
    }

    fn stored_chunks(&self) -> Vec<StoredChunk> {
        self.pieces
            .iter()
            .map(|piece| StoredChunk {
                point_id: self.point_id(piece),
                chunk_hash: content_hash(piece.chunk.text.as_bytes()),
                chunk: piece.chunk.clone(),
            })
            .collect()
    }

    fn record(&self) -> DocumentRecord {
        DocumentRecord {
            id: self.input.id.clone(),
            path: self.input.path.display().to_string(),
            title: self.doc.title.clone(),
            content_hash: self.doc.content_hash.clone(),
            size_bytes: self.doc.size_bytes,
            text_bytes: self.text_bytes,
            chunk_count: self.pieces.len() as u32,
            groups: self.groups.clone(),
            meta: self.meta.clone(),
            created_at: 0,
            updated_at: 0,
            source: Some(self.input.source()),
        }
    }
}

/// Which chunk of which open document a batch item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ItemKey {
    doc: u64,
    piece: usize,
}

/// The state of a run between files and batches.
struct Work {
    batcher: Batcher<ItemKey>,
    /// Closed batches waiting for a free slot, in order.
    ready: VecDeque<Batch<ItemKey>>,
    docs: HashMap<u64, OpenDocument>,
    next_doc: u64,
    /// When each embedding task ran, for the stage timing.
    intervals: Vec<(Instant, Instant)>,
    /// What landed and is not written yet.
    group: Group,
    /// When the last group was written.
    last_write: Instant,
}

/// A file read and split ahead of the run, with the time it took.
struct PreparedFile {
    input: Input,
    outcome: Result<Prepared, FileError>,
    read_ms: u64,
    split_ms: u64,
}

/// Embedded points not written yet (with the key of their document), and complete documents
/// not committed yet.
#[derive(Default)]
struct Group {
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
    fn is_due(&self, policy: &GroupCommit, since: Instant) -> bool {
        self.points.len() >= policy.max_points
            || self.done.len() >= policy.max_documents
            || since.elapsed() >= policy.max_delay
    }
}

impl Work {
    fn new(pacing: &Pacing) -> Self {
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

/// Expand the command-line inputs into files with their document ids (paths relative to the
/// input, in walk order). Symbolic links that lead outside the input are skipped with a reason
/// unless `follow_symlinks`; a file reached twice (through a link inside the input) is taken
/// once, under the id of its real path.
fn collect_inputs(
    inputs: &[PathBuf],
    follow_symlinks: bool,
    failures: &mut Vec<FileFailure>,
) -> Result<Vec<Input>, IngestError> {
    let mut found = Found::default();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|_| IngestError::NotFound {
            path: input.display().to_string(),
        })?;
        let root = input.canonicalize().map_err(|_| IngestError::NotFound {
            path: input.display().to_string(),
        })?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push(
                Input {
                    path: root.clone(),
                    real: root.clone(),
                    root: root.clone(),
                    id: DocumentId::new(name),
                    explicit: true,
                    cli_groups: None,
                },
                failures,
            );
            continue;
        }
        // Links leaving the root, found while walking (the filter cannot borrow `failures`).
        let outside = RefCell::new(Vec::new());
        let walker = walkdir::WalkDir::new(&root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                if e.depth() == 0 {
                    return true;
                }
                if e.file_name().to_string_lossy().starts_with('.') {
                    return false;
                }
                if follow_symlinks || !e.path_is_symlink() {
                    return true;
                }
                match e.path().canonicalize() {
                    Ok(target) if !target.starts_with(&root) => {
                        outside.borrow_mut().push(FileFailure {
                            path: e.path().display().to_string(),
                            reason: format!(
                                "symbolic link to {} leaves the ingest root {}; set ingest.follow_symlinks = true or `kb ingest --follow-symlinks` to follow it",
                                target.display(),
                                root.display()
                            ),
                        });
                        false
                    }
                    // Inside the root, or broken (which the walk reports).
                    _ => true,
                }
            });
        for entry in walker {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let real = match entry.path().canonicalize() {
                        Ok(real) => real,
                        Err(e) => {
                            failures.push(FileFailure {
                                path: entry.path().display().to_string(),
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    };
                    // A file inside the root is named by its real path, however it was reached.
                    let rel = real
                        .strip_prefix(&root)
                        .or_else(|_| entry.path().strip_prefix(&root))
                        .expect("BUG: walked paths are under their root");
                    let id = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    found.push(
                        Input {
                            path: entry.path().to_path_buf(),
                            real,
                            root: root.clone(),
                            id: DocumentId::new(id),
                            explicit: false,
                            cli_groups: None,
                        },
                        failures,
                    );
                }
                Ok(_) => {}
                Err(e) => failures.push(FileFailure {
                    path: e
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| root.display().to_string()),
                    reason: if e.loop_ancestor().is_some() {
                        "symbolic link loop".to_owned()
                    } else {
                        e.io_error()
                            .map(|io| io.to_string())
                            .unwrap_or_else(|| e.to_string())
                    },
                }),
            }
        }
        failures.extend(outside.into_inner());
    }
    Ok(found.files)
}

/// Files collected so far, with their ids and real paths.
#[derive(Default)]
struct Found {
    files: Vec<Input>,
    ids: HashSet<DocumentId>,
    reals: HashSet<PathBuf>,
}

impl Found {
    fn push(&mut self, input: Input, failures: &mut Vec<FileFailure>) {
        if !input.explicit && DocumentFormat::from_path(&input.real).is_none() {
            return;
        }
        if !self.reals.insert(input.real.clone()) {
            // The same file again, through a link: one document.
            return;
        }
        if !self.ids.insert(input.id.clone()) {
            failures.push(FileFailure {
                path: input.path.display().to_string(),
                reason: format!(
                    "another input already has document id {}; ingest it separately",
                    input.id
                ),
            });
            return;
        }
        self.files.push(input);
    }
}

/// The file a catalogued document comes from, if it is another one than `real`: its recorded
/// source; for a document catalogued before sources were recorded, the path it was ingested
/// as, if that is still a file elsewhere.
fn other_file(doc: &DocumentRecord, real: &Path) -> Option<String> {
    match &doc.source {
        Some(source) => (Path::new(&source.path) != real).then(|| source.path.clone()),
        None => {
            let old = Path::new(&doc.path).canonicalize().ok()?;
            (old.is_file() && old != real).then(|| old.display().to_string())
        }
    }
}

/// Why a file whose id belongs to another file is not ingested, and what to do.
fn id_taken(input: &Input, other: &str, doc: &DocumentRecord) -> String {
    let root = doc
        .source
        .as_ref()
        .map(|s| format!(" (ingested from {})", s.root))
        .unwrap_or_default();
    format!(
        "document id {id} already belongs to {other}{root}; {this} was not ingested so as not to replace it: if it is the same document moved, delete the old one with `kb docs delete {id}` and ingest again; otherwise ingest {this} from another folder, where its id differs",
        id = input.id,
        this = input.real.display(),
    )
}

/// A short human summary of a run's time.
pub fn format_duration(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if d.as_secs() >= 60 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// In-memory adapters for the tests of this crate: a catalog that follows the same write-ahead
/// protocol as the SQLite one, an index, and an embedder whose vectors are a function of the
/// text. Catalog and index can fail their n-th write (before or after applying it), which is
/// what a process killed at that moment leaves behind.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use async_trait::async_trait;
    use kb_core::{Embedding, Hit, IngestRun, InputKind, SearchQuery};
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use uuid::Uuid;

    /// Which write (counted over catalog and index together) fails, and whether it is applied
    /// before failing.
    #[derive(Debug, Default)]
    pub(crate) struct FaultPlan {
        writes: AtomicUsize,
        fail_at: Mutex<Option<(usize, bool)>>,
    }

    impl FaultPlan {
        pub(crate) fn fail_write(&self, n: usize, applied: bool) {
            self.writes.store(0, Ordering::SeqCst);
            *self.fail_at.lock().unwrap() = Some((n, applied));
        }

        pub(crate) fn clear(&self) {
            *self.fail_at.lock().unwrap() = None;
        }

        /// `None`: go on. `Some(applied)`: fail this write, after applying it if `applied`.
        fn hit(&self) -> Option<bool> {
            let n = self.writes.fetch_add(1, Ordering::SeqCst);
            match *self.fail_at.lock().unwrap() {
                Some((at, applied)) if at == n => Some(applied),
                _ => None,
            }
        }
    }

    fn injected() -> String {
        "injected failure".to_owned()
    }

    #[derive(Debug, Default)]
    struct CatalogState {
        documents: BTreeMap<DocumentId, DocumentRecord>,
        chunks: BTreeMap<DocumentId, Vec<StoredChunk>>,
        pending: BTreeSet<Uuid>,
        tombstones: BTreeSet<Uuid>,
        meta: HashMap<String, String>,
        runs: Vec<IngestRun>,
    }

    impl CatalogState {
        fn point_ids(&self) -> BTreeSet<Uuid> {
            self.chunks.values().flatten().map(|c| c.point_id).collect()
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct FakeCatalog {
        state: Mutex<CatalogState>,
        faults: Arc<FaultPlan>,
    }

    impl FakeCatalog {
        pub(crate) fn with_faults(faults: Arc<FaultPlan>) -> Self {
            Self {
                faults,
                ..Self::default()
            }
        }

        /// Drop every document's recorded source (as catalogued before sources existed).
        pub(crate) fn forget_sources(&self) {
            for doc in self.state.lock().unwrap().documents.values_mut() {
                doc.source = None;
            }
        }

        pub(crate) fn add_tombstone(&self, id: Uuid) {
            self.state.lock().unwrap().tombstones.insert(id);
        }

        /// Run a write: apply `f` unless the fault plan fails it first.
        fn write<T>(&self, f: impl FnOnce(&mut CatalogState) -> T) -> Result<T, CatalogError> {
            match self.faults.hit() {
                None => Ok(f(&mut self.state.lock().unwrap())),
                Some(applied) => {
                    if applied {
                        f(&mut self.state.lock().unwrap());
                    }
                    Err(CatalogError::Database(injected()))
                }
            }
        }
    }

    #[async_trait]
    impl Catalog for FakeCatalog {
        async fn get_document(
            &self,
            id: &DocumentId,
        ) -> Result<Option<DocumentRecord>, CatalogError> {
            Ok(self.state.lock().unwrap().documents.get(id).cloned())
        }

        async fn list_documents(&self) -> Result<Vec<DocumentRecord>, CatalogError> {
            Ok(self
                .state
                .lock()
                .unwrap()
                .documents
                .values()
                .cloned()
                .collect())
        }

        async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError> {
            Ok(self
                .state
                .lock()
                .unwrap()
                .chunks
                .get(id)
                .cloned()
                .unwrap_or_default())
        }

        async fn all_point_ids(&self) -> Result<Vec<Uuid>, CatalogError> {
            Ok(self.state.lock().unwrap().point_ids().into_iter().collect())
        }

        async fn record_pending_points(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
            self.write(|s| s.pending.extend(ids.iter().copied()))
        }

        async fn commit_document(
            &self,
            doc: &DocumentRecord,
            chunks: &[StoredChunk],
        ) -> Result<Vec<Uuid>, CatalogError> {
            self.write(|s| {
                let new: BTreeSet<Uuid> = chunks.iter().map(|c| c.point_id).collect();
                let replaced: Vec<Uuid> = s
                    .chunks
                    .get(&doc.id)
                    .into_iter()
                    .flatten()
                    .map(|c| c.point_id)
                    .filter(|id| !new.contains(id))
                    .collect();
                s.tombstones.extend(replaced.iter().copied());
                for id in &new {
                    s.pending.remove(id);
                    s.tombstones.remove(id);
                }
                let mut record = doc.clone();
                record.chunk_count = chunks.len() as u32;
                s.documents.insert(doc.id.clone(), record);
                s.chunks.insert(doc.id.clone(), chunks.to_vec());
                replaced
            })
        }

        async fn remove_document(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError> {
            self.write(|s| {
                s.documents.remove(id);
                let old: Vec<Uuid> = s
                    .chunks
                    .remove(id)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.point_id)
                    .collect();
                s.tombstones.extend(old.iter().copied());
                old
            })
        }

        async fn set_document_source(
            &self,
            id: &DocumentId,
            source: &DocumentSource,
        ) -> Result<(), CatalogError> {
            self.write(|s| {
                let doc = s.documents.get_mut(id).ok_or_else(|| {
                    CatalogError::Database(format!("document {id} is not catalogued"))
                })?;
                doc.source = Some(source.clone());
                Ok(())
            })?
        }

        async fn orphan_candidates(&self) -> Result<Vec<Uuid>, CatalogError> {
            let s = self.state.lock().unwrap();
            let committed = s.point_ids();
            let mut out: BTreeSet<Uuid> = s.tombstones.clone();
            out.extend(s.pending.iter().filter(|id| !committed.contains(id)));
            Ok(out.into_iter().collect())
        }

        async fn pending_points(&self) -> Result<Vec<Uuid>, CatalogError> {
            Ok(self.state.lock().unwrap().pending.iter().copied().collect())
        }

        async fn tombstones(&self) -> Result<Vec<Uuid>, CatalogError> {
            Ok(self
                .state
                .lock()
                .unwrap()
                .tombstones
                .iter()
                .copied()
                .collect())
        }

        async fn clear_tombstones(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
            self.write(|s| {
                for id in ids {
                    s.tombstones.remove(id);
                    s.pending.remove(id);
                }
            })
        }

        async fn get_meta(&self, key: &str) -> Result<Option<String>, CatalogError> {
            Ok(self.state.lock().unwrap().meta.get(key).cloned())
        }

        async fn set_meta(&self, key: &str, value: &str) -> Result<(), CatalogError> {
            self.set_meta_many(&[(key, value)]).await
        }

        async fn set_meta_many(&self, entries: &[(&str, &str)]) -> Result<(), CatalogError> {
            let mut s = self.state.lock().unwrap();
            for (key, value) in entries {
                s.meta.insert((*key).to_owned(), (*value).to_owned());
            }
            Ok(())
        }

        async fn start_run(&self) -> Result<i64, CatalogError> {
            let mut s = self.state.lock().unwrap();
            let id = s.runs.len() as i64 + 1;
            s.runs.push(IngestRun {
                id,
                started_at: 0,
                finished_at: None,
                status: "running".into(),
                stats: RunStats::default(),
            });
            Ok(id)
        }

        async fn finish_run(
            &self,
            run: i64,
            status: &str,
            stats: &RunStats,
        ) -> Result<(), CatalogError> {
            let mut s = self.state.lock().unwrap();
            let run = &mut s.runs[run as usize - 1];
            run.status = status.to_owned();
            run.stats = stats.clone();
            Ok(())
        }

        async fn list_runs(&self, limit: u32) -> Result<Vec<IngestRun>, CatalogError> {
            let s = self.state.lock().unwrap();
            Ok(s.runs.iter().rev().take(limit as usize).cloned().collect())
        }

        /// Runs live in this process's memory, so none can outlive the process that ran them.
        async fn interrupt_stale_runs(&self) -> Result<Vec<i64>, CatalogError> {
            Ok(Vec::new())
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct FakeIndex {
        points: Mutex<BTreeMap<Uuid, ChunkPoint>>,
        dims: Mutex<Option<usize>>,
        faults: Arc<FaultPlan>,
        /// Calls to `upsert`.
        upserts: AtomicUsize,
    }

    impl FakeIndex {
        pub(crate) fn upsert_calls(&self) -> usize {
            self.upserts.load(Ordering::SeqCst)
        }

        pub(crate) fn with_faults(faults: Arc<FaultPlan>) -> Self {
            Self {
                faults,
                ..Self::default()
            }
        }

        pub(crate) fn snapshot(&self) -> BTreeMap<Uuid, ChunkPoint> {
            self.points.lock().unwrap().clone()
        }

        /// A point no catalog knows about; returns its id.
        pub(crate) fn insert_stray(&self) -> Uuid {
            let mut points = self.points.lock().unwrap();
            let template = points
                .values()
                .next()
                .expect("an index with points")
                .clone();
            let id = Uuid::new_v4();
            points.insert(id, ChunkPoint { id, ..template });
            id
        }

        /// Lose everything, collection included (a deleted index folder).
        pub(crate) fn wipe(&self) {
            self.points.lock().unwrap().clear();
            *self.dims.lock().unwrap() = None;
        }

        fn write(&self, f: impl FnOnce(&mut BTreeMap<Uuid, ChunkPoint>)) -> Result<(), IndexError> {
            if self.dims.lock().unwrap().is_none() {
                return Err(IndexError::Other("no collection; call ensure".into()));
            }
            match self.faults.hit() {
                None => {
                    f(&mut self.points.lock().unwrap());
                    Ok(())
                }
                Some(applied) => {
                    if applied {
                        f(&mut self.points.lock().unwrap());
                    }
                    Err(IndexError::Unavailable(injected()))
                }
            }
        }
    }

    #[async_trait]
    impl VectorIndex for FakeIndex {
        async fn ensure(&self, dims: usize) -> Result<(), IndexError> {
            let mut current = self.dims.lock().unwrap();
            match *current {
                Some(found) if found != dims => Err(IndexError::DimensionMismatch {
                    expected: dims,
                    found,
                }),
                _ => {
                    *current = Some(dims);
                    Ok(())
                }
            }
        }

        async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<(), IndexError> {
            self.upserts.fetch_add(1, Ordering::SeqCst);
            self.write(|all| {
                for p in points {
                    all.insert(p.id, p);
                }
            })
        }

        /// Dense ranking by dot product whatever the mode: ingest never searches by text.
        async fn search(&self, query: &SearchQuery<'_>) -> Result<Vec<Hit>, IndexError> {
            let filter = query.filter;
            let points = self.points.lock().unwrap();
            let mut hits: Vec<Hit> = points
                .values()
                .filter(|p| filter.doc_ids.is_empty() || filter.doc_ids.contains(&p.payload.doc_id))
                .map(|p| {
                    let score = p.vector.iter().zip(query.vector).map(|(a, b)| a * b).sum();
                    Hit {
                        id: p.id,
                        score,
                        cosine: score,
                        payload: p.payload.clone(),
                    }
                })
                .collect();
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            hits.truncate(query.k);
            Ok(hits)
        }

        async fn delete_points(&self, ids: &[Uuid]) -> Result<(), IndexError> {
            self.write(|all| {
                for id in ids {
                    all.remove(id);
                }
            })
        }

        async fn delete_document(&self, id: &DocumentId) -> Result<(), IndexError> {
            self.write(|all| all.retain(|_, p| &p.payload.doc_id != id))
        }

        async fn point_ids(&self) -> Result<Vec<Uuid>, IndexError> {
            Ok(self.points.lock().unwrap().keys().copied().collect())
        }

        async fn count(&self) -> Result<u64, IndexError> {
            Ok(self.points.lock().unwrap().len() as u64)
        }

        async fn optimize(&self) -> Result<(), IndexError> {
            Ok(())
        }
    }

    type Hook = Box<dyn Fn(usize) + Send + Sync>;

    /// Tokens are whitespace-separated words; vectors are derived from the SHA-256 of the text.
    pub(crate) struct FakeEmbedder {
        name: String,
        max_input: usize,
        delay: Duration,
        calls: AtomicUsize,
        /// Called with the 1-based number of each embedding call, before it answers.
        on_call: Mutex<Option<Hook>>,
    }

    impl Default for FakeEmbedder {
        fn default() -> Self {
            Self::named("fake-model")
        }
    }

    impl std::fmt::Debug for FakeEmbedder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("FakeEmbedder")
                .field("name", &self.name)
                .finish_non_exhaustive()
        }
    }

    impl FakeEmbedder {
        pub(crate) fn named(name: &str) -> Self {
            Self {
                name: name.to_owned(),
                max_input: 256,
                delay: Duration::ZERO,
                calls: AtomicUsize::new(0),
                on_call: Mutex::new(None),
            }
        }

        pub(crate) fn with_max_input(max_input: usize) -> Self {
            Self {
                max_input,
                ..Self::default()
            }
        }

        pub(crate) fn with_delay(delay: Duration) -> Self {
            Self {
                delay,
                ..Self::default()
            }
        }

        pub(crate) fn on_call(&self, hook: impl Fn(usize) + Send + Sync + 'static) {
            *self.on_call.lock().unwrap() = Some(Box::new(hook));
        }

        pub(crate) fn calls(&self) -> u64 {
            self.calls.load(Ordering::SeqCst) as u64
        }

        pub(crate) fn vector(text: &str) -> Embedding {
            content_hash(text.as_bytes())
                .as_bytes()
                .chunks(8)
                .take(8)
                .map(|c| c.iter().map(|b| *b as f32).sum::<f32>() / 1000.0)
                .collect()
        }
    }

    #[async_trait]
    impl Embedder for FakeEmbedder {
        async fn embed(
            &self,
            inputs: &[String],
            _: InputKind,
        ) -> Result<Vec<Embedding>, ModelError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(hook) = &*self.on_call.lock().unwrap() {
                hook(n);
            }
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            Ok(inputs.iter().map(|t| Self::vector(t)).collect())
        }

        fn dimensions(&self) -> usize {
            8
        }

        fn max_input_tokens(&self) -> usize {
            self.max_input
        }

        fn model_id(&self) -> String {
            format!("fake:{}", self.name)
        }

        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    /// An ingestor over these adapters that cuts documents into chunks of at most 16 words.
    pub(crate) fn ingestor_over(
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        embedder: Arc<dyn Embedder>,
        batch_size: usize,
    ) -> Ingestor {
        grouped_ingestor_over(catalog, index, embedder, batch_size, GroupCommit::default())
    }

    /// [`ingestor_over`] with a group commit policy.
    pub(crate) fn grouped_ingestor_over(
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        embedder: Arc<dyn Embedder>,
        batch_size: usize,
        group_commit: GroupCommit,
    ) -> Ingestor {
        let options = IngestOptions {
            split: SplitOptions {
                chunk_tokens: 16,
                overlap_tokens: 0,
            },
            pacing: Pacing {
                batch_max_inputs: batch_size,
                batch_max_tokens: 10_000,
                concurrency: 1,
                batch_retries: 0,
            },
            group_commit,
            ..IngestOptions::default()
        };
        Ingestor::new(catalog, index, embedder, options).expect("valid test options")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{
        FakeCatalog, FakeEmbedder, FakeIndex, FaultPlan, grouped_ingestor_over,
    };
    use super::*;
    use crate::check::check;
    use crate::progress::ProgressSnapshot;
    use std::sync::Mutex;

    fn words(n: usize, seed: &str) -> String {
        (0..n)
            .map(|i| format!("{seed}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A Markdown document of about `sections` × 2 chunks of 16 words.
    fn long_doc(sections: usize, seed: &str) -> String {
        let mut text = format!("# Handbook {seed}\n\n");
        for s in 0..sections {
            text.push_str(&format!(
                "## Section {s}\n\n{}.\n\n{}.\n\n",
                words(12, &format!("{seed}a{s}x")),
                words(12, &format!("{seed}b{s}y"))
            ));
        }
        text
    }

    struct Kb {
        catalog: Arc<FakeCatalog>,
        index: Arc<FakeIndex>,
        embedder: Arc<FakeEmbedder>,
        faults: Arc<FaultPlan>,
        ingestor: Ingestor,
        docs: tempfile::TempDir,
    }

    impl Kb {
        fn new(embedder: FakeEmbedder, batch_size: usize) -> Self {
            Self::grouped(embedder, batch_size, GroupCommit::default())
        }

        fn grouped(embedder: FakeEmbedder, batch_size: usize, group: GroupCommit) -> Self {
            let faults = Arc::new(FaultPlan::default());
            let catalog = Arc::new(FakeCatalog::with_faults(faults.clone()));
            let index = Arc::new(FakeIndex::with_faults(faults.clone()));
            let embedder = Arc::new(embedder);
            let ingestor = grouped_ingestor_over(
                catalog.clone(),
                index.clone(),
                embedder.clone(),
                batch_size,
                group,
            );
            Self {
                catalog,
                index,
                embedder,
                faults,
                ingestor,
                docs: tempfile::tempdir().unwrap(),
            }
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.docs.path().join(name), text).unwrap();
        }

        fn remove(&self, name: &str) {
            std::fs::remove_file(self.docs.path().join(name)).unwrap();
        }

        fn roots(&self) -> Vec<PathBuf> {
            vec![self.docs.path().to_path_buf()]
        }

        async fn ingest(&self, prune: bool) -> Result<IngestReport, IngestError> {
            self.ingestor
                .with_run_flags(prune, false)
                .ingest(&self.roots(), &CancellationToken::new())
                .await
        }

        async fn assert_consistent(&self, context: &str) {
            let report = check(self.catalog.as_ref(), self.index.as_ref())
                .await
                .unwrap();
            assert!(report.consistent, "{context}: {report:#?}");
            let files = std::fs::read_dir(self.docs.path()).unwrap().count() as u64;
            assert_eq!(report.documents, files, "{context}: one document per file");
        }
    }

    #[tokio::test]
    async fn cancelling_between_embedding_batches_writes_nothing_of_that_document() {
        let kb = Kb::new(FakeEmbedder::with_delay(Duration::from_millis(5)), 2);
        kb.write("a-small.md", "# Small\n\nJust one chunk of text.\n");
        kb.write("b-large.md", &long_doc(6, "large"));
        let cancel = CancellationToken::new();
        let on_call = cancel.clone();
        // Call 1 embeds the small document; calls 2.. the large one, in batches of two chunks.
        kb.embedder.on_call(move |n| {
            if n == 3 {
                on_call.cancel();
            }
        });

        let report = kb.ingestor.ingest(&kb.roots(), &cancel).await.unwrap();

        assert!(report.interrupted);
        assert_eq!(kb.embedder.calls(), 3, "stopped after the batch in flight");
        assert_eq!(report.stats.added, 1, "{report:?}");
        let ids: Vec<_> = kb
            .catalog
            .list_documents()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, [DocumentId::new("a-small.md")]);
        let state = check(kb.catalog.as_ref(), kb.index.as_ref()).await.unwrap();
        assert!(state.consistent, "{state:#?}");
        assert_eq!(state.index_points, 1, "no point of the large document");
        let runs = kb.catalog.list_runs(1).await.unwrap();
        assert_eq!(runs[0].status, "interrupted");

        kb.embedder.on_call(|_| {});
        let rerun = kb.ingest(false).await.unwrap();

        assert!(!rerun.interrupted);
        assert_eq!((rerun.stats.added, rerun.stats.unchanged), (1, 1));
        kb.assert_consistent("after the rerun").await;
    }

    #[tokio::test]
    async fn a_cancelled_run_stops_before_the_next_document() {
        // One chunk per batch, so that each document is a batch of its own.
        let kb = Kb::new(FakeEmbedder::default(), 1);
        kb.write("a.md", "# A\n\nFirst.\n");
        kb.write("b.md", "# B\n\nSecond.\n");
        let cancel = CancellationToken::new();
        let on_call = cancel.clone();
        kb.embedder.on_call(move |_| on_call.cancel());

        let report = kb.ingestor.ingest(&kb.roots(), &cancel).await.unwrap();

        assert!(report.interrupted);
        assert_eq!(report.stats.added, 1, "the document in flight is finished");
        assert_eq!(kb.embedder.calls(), 1);
    }

    /// Every write to catalog or index, failed before or after it is applied, is a moment a
    /// process can be killed at. Whatever the moment, the next run leaves catalog and index in
    /// agreement. (The SIGKILL version of this, against SQLite and the embedded index, is
    /// `tests/crash.rs` at the workspace root.)
    #[tokio::test]
    async fn a_run_stopped_at_any_write_is_finished_consistently_by_the_next_run() {
        // Writing every batch and document as it lands, or in groups of a few batches: every
        // write of either is a crash point.
        let small_groups = GroupCommit {
            max_points: 4,
            max_documents: 2,
            max_delay: Duration::from_secs(60),
        };
        for group in [GroupCommit::none(), small_groups] {
            stop_at_every_write(group).await;
        }
    }

    async fn stop_at_every_write(group: GroupCommit) {
        let mut scenarios = 0;
        for applied in [false, true] {
            for at in 0.. {
                let kb = Kb::grouped(FakeEmbedder::default(), 3, group);
                kb.write("keep.md", &long_doc(2, "keep"));
                kb.write("edit.md", &long_doc(3, "old"));
                kb.write("gone.md", &long_doc(2, "gone"));
                kb.ingest(false).await.unwrap();
                kb.write("edit.md", &long_doc(2, "new"));
                kb.remove("gone.md");
                kb.write("added.md", &long_doc(2, "added"));

                kb.faults.fail_write(at, applied);
                let stopped = kb.ingest(true).await;
                kb.faults.clear();
                let context = format!("write {at} failed (applied: {applied})");
                if stopped.is_ok() {
                    assert!(at > 5, "{context}: the run made only {at} writes");
                    kb.assert_consistent(&context).await;
                    break;
                }
                scenarios += 1;

                let rerun = kb.ingest(true).await;

                assert!(rerun.is_ok(), "{context}: {rerun:?}");
                kb.assert_consistent(&context).await;
                let texts: Vec<String> = kb
                    .index
                    .snapshot()
                    .into_values()
                    .map(|p| p.payload.text)
                    .collect();
                assert!(texts.iter().any(|t| t.contains("newa0x0")), "{context}");
                assert!(!texts.iter().any(|t| t.contains("olda0x0")), "{context}");
                assert!(!texts.iter().any(|t| t.contains("gonea0x0")), "{context}");
            }
        }
        assert!(scenarios > 10, "{group:?}: only {scenarios} crash points");
    }

    #[tokio::test]
    async fn a_group_commit_writes_many_batches_in_one_index_write() {
        // 8 documents of about 4 chunks, embedded two chunks per call.
        let kb = Kb::new(FakeEmbedder::default(), 2);
        for i in 0..8 {
            kb.write(&format!("doc{i}.md"), &long_doc(2, &format!("d{i}")));
        }

        let report = kb.ingest(false).await.unwrap();

        assert_eq!(report.stats.added, 8);
        assert!(report.stats.embedding_calls >= 12, "{report:?}");
        assert_eq!(
            kb.index.upsert_calls(),
            1,
            "every point of the run fits in one group"
        );
        kb.assert_consistent("after a grouped run").await;
        assert_eq!(
            kb.index.snapshot().len() as u64,
            report.stats.chunks,
            "every chunk is in the index"
        );
    }

    #[tokio::test]
    async fn groups_are_written_when_full_or_late() {
        let by_size = GroupCommit {
            max_points: 6,
            max_documents: 1000,
            max_delay: Duration::from_secs(60),
        };
        let kb = Kb::grouped(FakeEmbedder::default(), 2, by_size);
        for i in 0..8 {
            kb.write(&format!("doc{i}.md"), &long_doc(2, &format!("d{i}")));
        }
        let report = kb.ingest(false).await.unwrap();
        let points = report.stats.chunks as usize;
        // A group closes at the first landing that brings it to 6 points or more (batches of 2).
        assert_eq!(
            kb.index.upsert_calls(),
            points.div_ceil(6),
            "{points} points"
        );
        kb.assert_consistent("groups by size").await;

        // A slow engine: each landing comes after the delay, so each batch is written alone.
        let by_time = GroupCommit {
            max_points: 1000,
            max_documents: 1000,
            max_delay: Duration::from_millis(1),
        };
        let kb = Kb::grouped(
            FakeEmbedder::with_delay(Duration::from_millis(20)),
            2,
            by_time,
        );
        for i in 0..3 {
            kb.write(&format!("doc{i}.md"), &long_doc(2, &format!("d{i}")));
        }
        let report = kb.ingest(false).await.unwrap();
        assert_eq!(
            kb.index.upsert_calls() as u64,
            report.stats.embedding_calls,
            "one write per landing"
        );
        kb.assert_consistent("groups by time").await;
    }

    #[tokio::test]
    async fn the_first_run_stopped_at_any_write_is_finished_by_the_next() {
        for at in 0.. {
            let kb = Kb::new(FakeEmbedder::default(), 2);
            kb.write("a.md", &long_doc(2, "a"));
            kb.write("b.md", &long_doc(1, "b"));
            kb.faults.fail_write(at, at % 2 == 1);
            let first = kb.ingest(false).await;
            kb.faults.clear();
            if first.is_ok() {
                break;
            }
            kb.ingest(false).await.unwrap();
            kb.assert_consistent(&format!("write {at} failed")).await;
        }
    }

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

        let (report, docs) =
            ingest_roots(&kb.ingestor, &kb.catalog, &[b.path().to_path_buf()]).await;

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
        let (adopted, docs) =
            ingest_roots(&kb.ingestor, &kb.catalog, &[a.path().to_path_buf()]).await;

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
        let (report, docs) =
            ingest_roots(&pruning, &kb.catalog, std::slice::from_ref(&finance)).await;

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
}
