//! kb's retrieval evaluation over datasets in the BEIR layout (`corpus.jsonl`,
//! `queries.jsonl`, `qrels.tsv`).
//!
//! [`run`] writes the corpus as Markdown files, ingests them with kb's own pipeline (so the
//! real splitter, embedder and index are measured), runs every judged query through
//! `Answerer::search`, maps chunk hits to documents (best chunk per document) and reports
//! recall@1/5/10, MRR@10, nDCG@10 and search latency per retrieval mode (dense, sparse =
//! BM25, hybrid = both fused by RRF), a sweep of the refusal threshold, optionally with
//! answer checks (does `Answerer::ask` cite a relevant document?).
//!
//! - [`dataset`] reads and checks a dataset folder,
//! - [`corpus`] turns corpus documents into files and file names back into corpus ids,
//! - [`metrics`] holds the formulas,
//! - [`calibration`] sweeps the refusal threshold over in-scope and out-of-scope questions,
//! - [`report`] the serialisable report and its Markdown table.
//!
//! Re-running over the same data folder re-embeds nothing: ingest sees unchanged hashes.

pub mod calibration;
pub mod corpus;
pub mod dataset;
pub mod error;
pub mod metrics;
pub mod report;
mod run;

pub use calibration::{Calibration, InScopeCosines, ThresholdRow};
pub use dataset::{CorpusDoc, Dataset, Query};
pub use error::EvalError;
pub use metrics::{Metrics, Percentiles, QueryScores};
pub use report::{
    AnswerChecks, DatasetSummary, EmbedderSummary, EvalReport, IngestSummary, Latency, ModeReport,
    QueryOutcome,
};
pub use run::{EvalComponents, EvalOptions, run};
