//! kb's ingest pipeline: files → text → token-sized chunks → embeddings → vector index,
//! with the catalog recording documents, chunks and runs.
//!
//! - [`loader`] reads one file into text plus metadata,
//! - [`split`] cuts text into chunks sized in the embedder's own tokens,
//! - [`pipeline`] drives a run: walk, compare hashes, embed in batches, write ahead, commit.

pub mod check;
pub mod loader;
pub mod pipeline;
pub mod progress;
pub mod split;

pub use check::{ConsistencyReport, RepairReport, check, repair};
pub use loader::{
    DocumentFormat, FrontMatter, LoadError, LoadLimits, LoadedDocument, SourceFormat, load_file,
    read_sidecar, sidecar_path,
};
pub use pipeline::{
    DocumentAction, FileFailure, IngestError, IngestOptions, IngestReport, Ingestor, StageTimings,
};
pub use progress::{NoProgress, Phase, Progress, ProgressSnapshot};
pub use split::{ChunkSplitter, SplitOptions};
