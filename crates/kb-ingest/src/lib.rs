//! kb's ingest pipeline: files → text → token-sized chunks → embeddings → vector index,
//! with the catalog recording documents, chunks and runs.
//!
//! - [`loader`] (the `kb-extract` crate) reads one file into text plus metadata,
//! - [`split`] cuts text into chunks sized in the embedder's own tokens,
//! - [`batch`] packs chunks into capped batches and retries a failed batch alone,
//! - [`pipeline`] drives a run: walk, compare hashes, embed in batches, write ahead, commit,
//! - [`reindex`] rebuilds the index from the catalog for another embedding model.

pub mod batch;
pub mod check;
mod config;
pub mod pipeline;
pub mod progress;
pub mod reindex;
pub mod split;

#[cfg(test)]
mod pacing_tests;

pub use batch::{Pacing, PacingError};
pub use check::{ConsistencyReport, RepairReport, check, repair};
pub use config::{IngestConfig, InvalidIngestConfig, OcrConfig, RunRequest};
/// The file readers, as the pipeline uses them.
pub use kb_extract as loader;
pub use kb_extract::{
    DocumentFormat, FrontMatter, LoadError, LoadLimits, LoadedDocument, SourceFormat, load_file,
    load_file_with_limits, read_sidecar, sidecar_path,
};
pub use pipeline::{
    DocumentAction, FileFailure, FileNote, GroupCommit, IngestError, IngestOptions, IngestReport,
    Ingestor, PacingReport, StageTimings,
};
pub use progress::{NoProgress, Phase, Progress, ProgressSnapshot};
pub use split::{ChunkSplitter, SplitOptions};
