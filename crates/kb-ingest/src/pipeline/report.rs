//! What a run reports: per-document actions, skipped files, stage timings and pacing.

use super::Ingestor;
use super::inputs::Input;
use crate::progress::Tracker;
use kb_core::{DocumentId, RunStats};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing::warn;

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

/// Something a reader said about a file it read: a part it left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileNote {
    pub path: String,
    pub note: String,
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
    /// Files inside the ingested folders of a type kb does not read (metadata sidecars
    /// aside): not ingested, and listed so that none is missed without a word. (A file of such
    /// a type named on its own is a failure instead.)
    #[serde(default)]
    pub passed_over: Vec<String>,
    /// What the readers left out of files they read (hidden sheets, attachments of a type kb
    /// does not read, pages OCR could not read, …).
    #[serde(default)]
    pub notes: Vec<FileNote>,
    pub timings: StageTimings,
    pub pacing: PacingReport,
    /// Stopped early on request; the next run finishes the job.
    pub interrupted: bool,
    pub dry_run: bool,
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

impl Ingestor {
    /// Count a document's outcome, once it has one.
    pub(super) fn settle(
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
}
