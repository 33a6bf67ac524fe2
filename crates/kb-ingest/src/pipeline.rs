//! One ingest run: walk the inputs, skip what is unchanged, embed and write what changed,
//! record everything in the catalog.
//!
//! Crash safety: before points are upserted their ids are recorded as pending; the catalog
//! swaps a document's chunks in one transaction and turns replaced points into tombstones;
//! tombstones are deleted from the index afterwards. [`Ingestor::recover`] (run at the start
//! of every ingest) deletes whatever a crashed run left behind, so catalog and index agree.

use crate::loader::{DocumentFormat, LoadError, LoadedDocument, load_file};
use crate::split::{ChunkSplitter, SplitChunk, SplitConfigError, SplitOptions};
use kb_core::{
    Catalog, CatalogError, ChunkPayload, ChunkPoint, DocumentId, DocumentRecord, Embedder,
    IndexError, InputKind, ModelError, RunStats, StoredChunk, VectorIndex, content_hash, point_id,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// Settings of an ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub split: SplitOptions,
    /// Inputs per embedding call.
    pub batch_size: usize,
    /// Files larger than this are skipped.
    pub max_file_bytes: u64,
    /// Access groups of documents that name none.
    pub default_groups: Vec<String>,
    /// Remove catalogued documents under an ingested folder whose files are gone.
    pub prune: bool,
    /// Report what would change without embedding or writing anything.
    pub dry_run: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            split: SplitOptions::default(),
            batch_size: 32,
            max_file_bytes: 20 * 1024 * 1024,
            default_groups: vec!["all".into()],
            prune: false,
            dry_run: false,
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
    #[error("{path}: no such file or folder")]
    NotFound { path: String },
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

/// Wall time spent per stage, summed over documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub read_ms: u64,
    pub split_ms: u64,
    pub embed_ms: u64,
    pub upsert_ms: u64,
    pub catalog_ms: u64,
    pub total_ms: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestReport {
    pub run_id: Option<i64>,
    pub stats: RunStats,
    pub documents: Vec<(DocumentId, DocumentAction)>,
    pub failures: Vec<FileFailure>,
    pub timings: StageTimings,
    /// Stopped early on request; the next run finishes the job.
    pub interrupted: bool,
    pub dry_run: bool,
}

const META_MODEL: &str = "embedding_model";
const META_DIMS: &str = "embedding_dims";

/// Drives ingest runs over one catalog, index and embedder.
#[derive(Debug, Clone)]
pub struct Ingestor {
    catalog: Arc<dyn Catalog>,
    index: Arc<dyn VectorIndex>,
    embedder: Arc<dyn Embedder>,
    splitter: Arc<ChunkSplitter>,
    options: IngestOptions,
}

/// A file found by walking an input, with its document id.
#[derive(Debug, Clone)]
struct Input {
    path: PathBuf,
    id: DocumentId,
    /// Given by name on the command line (so an unsupported type is an error, not a skip).
    explicit: bool,
}

impl Ingestor {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        embedder: Arc<dyn Embedder>,
        options: IngestOptions,
    ) -> Result<Self, IngestError> {
        let splitter = Arc::new(ChunkSplitter::new(embedder.clone(), options.split)?);
        Ok(Self {
            catalog,
            index,
            embedder,
            splitter,
            options,
        })
    }

    /// The same ingestor with other per-run flags.
    pub fn with_run_flags(&self, prune: bool, dry_run: bool) -> Self {
        let mut this = self.clone();
        this.options.prune = prune;
        this.options.dry_run = dry_run;
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
        let started = Instant::now();
        let mut report = IngestReport {
            dry_run: self.options.dry_run,
            ..IngestReport::default()
        };
        let files = collect_inputs(inputs, &mut report.failures)?;
        if !self.options.dry_run {
            self.check_model().await?;
            self.index.ensure(self.embedder.dimensions()).await?;
            self.recover().await?;
            report.run_id = Some(self.catalog.start_run().await?);
        }
        let span = info_span!("ingest", run = report.run_id, files = files.len());
        let outcome = self
            .run(&files, inputs, cancel, &mut report)
            .instrument(span)
            .await;
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
    ) -> Result<(), IngestError> {
        let mut seen = HashSet::new();
        for input in files {
            if cancel.is_cancelled() {
                report.interrupted = true;
                info!("stopping early on request");
                return Ok(());
            }
            seen.insert(input.id.clone());
            let span = info_span!("document", id = %input.id);
            match self.ingest_file(input, report).instrument(span).await {
                Ok(Some(action)) => {
                    match action {
                        DocumentAction::Added => report.stats.added += 1,
                        DocumentAction::Updated => report.stats.updated += 1,
                        DocumentAction::Unchanged => report.stats.unchanged += 1,
                        DocumentAction::Removed => report.stats.removed += 1,
                    }
                    report.documents.push((input.id.clone(), action));
                }
                Ok(None) => {}
                Err(FileError::Skip(reason)) => {
                    warn!(path = %input.path.display(), %reason, "skipped file");
                    report.failures.push(FileFailure {
                        path: input.path.display().to_string(),
                        reason,
                    });
                }
                Err(FileError::Fatal(e)) => return Err(e),
            }
        }
        if self.options.prune {
            self.prune(roots, &seen, report).await?;
        }
        if !self.options.dry_run && (report.stats.added + report.stats.updated) > 0 {
            let t = Instant::now();
            self.index.optimize().await?;
            report.timings.upsert_ms += t.elapsed().as_millis() as u64;
        }
        Ok(())
    }

    async fn ingest_file(
        &self,
        input: &Input,
        report: &mut IngestReport,
    ) -> Result<Option<DocumentAction>, FileError> {
        let t = Instant::now();
        let path = input.path.clone();
        let max = self.options.max_file_bytes;
        let loaded = tokio::task::spawn_blocking(move || load_file(&path, max))
            .await
            .expect("BUG: file loading panicked");
        report.timings.read_ms += t.elapsed().as_millis() as u64;
        let doc = match loaded {
            Ok(doc) => doc,
            Err(LoadError::Unsupported) if !input.explicit => return Ok(None),
            Err(e) => return Err(FileError::Skip(e.to_string())),
        };
        let existing = self.catalog.get_document(&input.id).await?;
        if let Some(existing) = &existing
            && existing.content_hash == doc.content_hash
        {
            return Ok(Some(DocumentAction::Unchanged));
        }
        let action = if existing.is_some() {
            DocumentAction::Updated
        } else {
            DocumentAction::Added
        };
        if self.options.dry_run {
            return Ok(Some(action));
        }

        let t = Instant::now();
        let splitter = self.splitter.clone();
        let (text, format, title) = (doc.text.clone(), doc.format, doc.title.clone());
        let pieces = tokio::task::spawn_blocking(move || splitter.split(&text, format, &title))
            .await
            .expect("BUG: splitting panicked");
        report.timings.split_ms += t.elapsed().as_millis() as u64;
        if pieces.is_empty() {
            return Err(FileError::Skip(LoadError::NoText.to_string()));
        }

        let vectors = self.embed_chunks(&pieces, report).await?;
        self.write(input, &doc, pieces, vectors, report).await?;
        info!(?action, "document ingested");
        Ok(Some(action))
    }

    async fn embed_chunks(
        &self,
        pieces: &[SplitChunk],
        report: &mut IngestReport,
    ) -> Result<Vec<Vec<f32>>, FileError> {
        let t = Instant::now();
        let mut vectors = Vec::with_capacity(pieces.len());
        for batch in pieces.chunks(self.options.batch_size.max(1)) {
            let texts: Vec<String> = batch.iter().map(|p| p.embedding_text.clone()).collect();
            report.stats.embedding_calls += 1;
            let out = self
                .embedder
                .embed(&texts, InputKind::Passage)
                .await
                .map_err(|e| {
                    if e.is_retryable() {
                        FileError::Fatal(IngestError::Model(e))
                    } else {
                        FileError::Skip(format!("the embedding model refused it: {e}"))
                    }
                })?;
            if out.len() != texts.len() {
                return Err(FileError::Fatal(IngestError::Model(ModelError::Permanent(
                    format!(
                        "embedder returned {} vectors for {} inputs",
                        out.len(),
                        texts.len()
                    ),
                ))));
            }
            report.stats.tokens += batch
                .iter()
                .map(|p| p.chunk.token_count as u64)
                .sum::<u64>();
            vectors.extend(out);
        }
        report.timings.embed_ms += t.elapsed().as_millis() as u64;
        Ok(vectors)
    }

    async fn write(
        &self,
        input: &Input,
        doc: &LoadedDocument,
        pieces: Vec<SplitChunk>,
        vectors: Vec<Vec<f32>>,
        report: &mut IngestReport,
    ) -> Result<(), FileError> {
        let groups = if doc.front_matter.groups.is_empty() {
            self.options.default_groups.clone()
        } else {
            doc.front_matter.groups.clone()
        };
        let source_path = input.path.display().to_string();
        let mut points = Vec::with_capacity(pieces.len());
        let mut stored = Vec::with_capacity(pieces.len());
        for (piece, vector) in pieces.into_iter().zip(vectors) {
            let id = point_id(&input.id, &doc.content_hash, piece.chunk.ordinal);
            let c = piece.chunk;
            points.push(ChunkPoint {
                id,
                vector,
                payload: ChunkPayload {
                    doc_id: input.id.clone(),
                    doc_hash: doc.content_hash.clone(),
                    ordinal: c.ordinal,
                    title: doc.title.clone(),
                    path: source_path.clone(),
                    heading_path: c.heading_path.clone(),
                    text: c.text.clone(),
                    byte_start: c.byte_start,
                    byte_end: c.byte_end,
                    groups: groups.clone(),
                },
            });
            stored.push(StoredChunk {
                point_id: id,
                chunk_hash: content_hash(c.text.as_bytes()),
                chunk: c,
            });
        }
        let ids: Vec<_> = points.iter().map(|p| p.id).collect();
        report.stats.chunks += ids.len() as u64;

        let t = Instant::now();
        self.catalog.record_pending_points(&ids).await?;
        report.timings.catalog_ms += t.elapsed().as_millis() as u64;

        let t = Instant::now();
        self.index.upsert(points).await?;
        report.timings.upsert_ms += t.elapsed().as_millis() as u64;

        let t = Instant::now();
        let record = DocumentRecord {
            id: input.id.clone(),
            path: source_path,
            title: doc.title.clone(),
            content_hash: doc.content_hash.clone(),
            size_bytes: doc.size_bytes,
            text_bytes: doc.text.len() as u64,
            chunk_count: stored.len() as u32,
            groups,
            created_at: 0,
            updated_at: 0,
        };
        let replaced = self.catalog.commit_document(&record, &stored).await?;
        report.timings.catalog_ms += t.elapsed().as_millis() as u64;
        if !replaced.is_empty() {
            let t = Instant::now();
            self.index.delete_points(&replaced).await?;
            report.timings.upsert_ms += t.elapsed().as_millis() as u64;
            self.catalog.clear_tombstones(&replaced).await?;
        }
        Ok(())
    }

    /// Remove catalogued documents under the ingested folders whose files are gone.
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
            let under_root = roots.iter().any(|r| Path::new(&doc.path).starts_with(r));
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

/// A problem with one file: skip it, or stop the run.
enum FileError {
    Skip(String),
    Fatal(IngestError),
}

impl From<CatalogError> for FileError {
    fn from(e: CatalogError) -> Self {
        Self::Fatal(e.into())
    }
}

impl From<IndexError> for FileError {
    fn from(e: IndexError) -> Self {
        Self::Fatal(e.into())
    }
}

/// Expand the command-line inputs into files with their document ids, sorted by id.
fn collect_inputs(
    inputs: &[PathBuf],
    failures: &mut Vec<FileFailure>,
) -> Result<Vec<Input>, IngestError> {
    let mut files = Vec::new();
    let mut ids = HashSet::new();
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
            push_input(
                &mut files,
                &mut ids,
                root,
                DocumentId::new(name),
                true,
                failures,
            );
            continue;
        }
        let walker = walkdir::WalkDir::new(&root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let rel = entry
                        .path()
                        .strip_prefix(&root)
                        .expect("BUG: walked paths are under their root");
                    let id = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    push_input(
                        &mut files,
                        &mut ids,
                        entry.into_path(),
                        DocumentId::new(id),
                        false,
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
    }
    Ok(files)
}

fn push_input(
    files: &mut Vec<Input>,
    ids: &mut HashSet<DocumentId>,
    path: PathBuf,
    id: DocumentId,
    explicit: bool,
    failures: &mut Vec<FileFailure>,
) {
    if !explicit && DocumentFormat::from_path(&path).is_none() {
        return;
    }
    if !ids.insert(id.clone()) {
        failures.push(FileFailure {
            path: path.display().to_string(),
            reason: format!("another input already has document id {id}; ingest it separately"),
        });
        return;
    }
    files.push(Input { path, id, explicit });
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
