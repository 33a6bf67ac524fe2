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
//!
//! The rooms: `inputs` walks the inputs and gives each file its document id; `prepare`
//! reads, compares and splits one file; `commit` takes the embedded batches and writes them
//! in groups (write-ahead records, upsert, catalog commit); `report` holds what a run
//! reports. This module holds the public API and the run loop that drives them.

mod commit;
mod inputs;
mod prepare;
mod report;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

pub use commit::GroupCommit;
pub use report::{
    DocumentAction, FileFailure, FileNote, IngestReport, PacingReport, StageTimings,
    format_duration,
};

use crate::batch::{BatchItem, BatchOutcome, Pacing, PacingError, busy_time, embed_batch};
use crate::progress::{NoProgress, Phase, Progress, Tracker};
use crate::split::{ChunkSplitter, SplitConfigError, SplitOptions};
use crate::{IngestConfig, LoadLimits, RunRequest};
use commit::{ItemKey, Work};
use inputs::{Input, Seen, collect_inputs};
use kb_core::{Catalog, CatalogError, DocumentId, Embedder, IndexError, ModelError, VectorIndex};
use prepare::{FileError, Prepared, PreparedFile};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
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
    /// What the file readers may do: file size, expansion of containers, spreadsheet cells,
    /// OCR (`ingest.max_file_bytes`, `ingest.ocr`).
    pub load_limits: LoadLimits,
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

impl IngestOptions {
    /// The run settings `[ingest]` gives: no run flags, no default tags or owner.
    pub fn from_config(config: &IngestConfig) -> Self {
        Self {
            split: config.split(),
            pacing: config.pacing(),
            load_limits: config.load_limits(),
            default_groups: config.default_groups.clone(),
            default_tags: Vec::new(),
            default_owner: None,
            prune: false,
            follow_symlinks: config.follow_symlinks,
            dry_run: false,
            group_commit: GroupCommit::default(),
        }
    }
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self::from_config(&IngestConfig::default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("embedding failed; the run stopped here, run the same command again to resume")]
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

    /// The same ingestor with the flags and default metadata of `run` (its paths are the
    /// caller's to check and pass to [`Self::ingest`]).
    pub fn for_run(&self, run: &RunRequest) -> Self {
        let mut this = self
            .with_run_flags(run.prune, run.dry_run)
            .with_default_metadata(run.groups.clone(), run.tags.clone(), run.owner.clone());
        if run.follow_symlinks {
            this.options.follow_symlinks = true;
        }
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
        let files = collect_inputs(
            inputs,
            self.options.follow_symlinks,
            &mut report.failures,
            &mut report.passed_over,
        )?;
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
        let mut seen = Seen::default();
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
                    seen.ids.insert(input.id.clone());
                    seen.files.insert(input.real.clone());
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
                        self.read_file(file, &mut work, report, tracker, &mut seen)
                            .await?;
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
        // Documents inside a file that the file no longer holds (an attachment taken out of a
        // message) go whether or not the run prunes: the file they came from was read whole.
        self.remove_parts_gone(&seen, report).await?;
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

    /// Take a file that was read, compared and split: queue its chunks (and those of the
    /// documents inside it) for embedding. Unchanged and skipped documents are settled here.
    async fn read_file(
        &self,
        file: PreparedFile,
        work: &mut Work,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
        seen: &mut Seen,
    ) -> Result<(), IngestError> {
        let PreparedFile {
            input,
            outcome,
            parts,
            notes,
            read_ms,
            split_ms,
        } = file;
        report.timings.read_ms += read_ms;
        report.timings.split_ms += split_ms;
        report.notes.extend(notes.into_iter().map(|note| FileNote {
            path: input.path.display().to_string(),
            note,
        }));
        if outcome.is_ok() && !parts.is_empty() {
            // Every document counts as a file in the progress shown.
            tracker.snapshot.files_total += parts.len() as u64;
        }
        if matches!(
            outcome,
            Ok(Prepared::Done(_) | Prepared::Moved(_) | Prepared::Split(_))
        ) {
            seen.read_whole.insert(input.real.clone());
        }
        self.take_document(input, outcome, work, report, tracker, seen)
            .await?;
        for (input, outcome) in parts {
            seen.ids.insert(input.id.clone());
            self.take_document(input, outcome, work, report, tracker, seen)
                .await?;
        }
        Ok(())
    }

    async fn take_document(
        &self,
        input: Input,
        outcome: Result<Prepared, FileError>,
        work: &mut Work,
        report: &mut IngestReport,
        tracker: &mut Tracker<'_>,
        seen: &mut Seen,
    ) -> Result<(), IngestError> {
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
            Ok(Prepared::Split(mut doc)) => {
                if doc
                    .unquoted
                    .as_ref()
                    .is_some_and(|u| seen.messages.contains(&u.message_id))
                {
                    doc.drop_quotation();
                }
                if let Some(id) = doc.message_id() {
                    seen.messages.insert(id.to_owned());
                }
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
