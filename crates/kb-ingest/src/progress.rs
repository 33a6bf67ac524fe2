//! Progress of an ingest run, for whoever shows it: a bar on a terminal, periodic log lines,
//! nothing at all (the HTTP API). The pipeline only counts and calls [`Progress::update`];
//! rendering, rates and ETAs belong to the caller, so the pipeline stays free of terminal code.

use kb_core::DocumentId;
use serde::{Deserialize, Serialize};

/// What a run is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Cleaning up after an interrupted run, opening the index.
    #[default]
    Starting,
    /// Reading, embedding and writing files.
    Files,
    /// Removing documents whose files are gone.
    Pruning,
    /// Building the index's search structures.
    Optimizing,
    /// Done (finished, interrupted or failed).
    Finished,
}

/// Counters of a run in progress. Every update carries all of them, so a renderer needs no
/// state of its own beyond what it wants to compute (rates, ETA).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    pub phase: Phase,
    /// Files found by walking the inputs.
    pub files_total: u64,
    /// Files dealt with so far: ingested, unchanged or skipped.
    pub files_done: u64,
    /// Chunks embedded so far.
    pub chunks: u64,
    /// Tokens embedded so far (in the embedder's own tokens).
    pub tokens: u64,
    /// Calls made to the embedder so far.
    pub embedding_calls: u64,
    /// The document being worked on.
    pub current: Option<DocumentId>,
}

/// Receives progress updates. Called from the ingest task between steps (after each file,
/// after each embedding batch, when the phase changes), so implementations must be quick: set a
/// bar's position, or log at most every few seconds.
pub trait Progress: Send + Sync {
    fn update(&self, snapshot: &ProgressSnapshot);
}

/// A closure is a progress sink.
impl<F> Progress for F
where
    F: Fn(&ProgressSnapshot) + Send + Sync,
{
    fn update(&self, snapshot: &ProgressSnapshot) {
        self(snapshot)
    }
}

/// Ignores progress (the HTTP API, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: &ProgressSnapshot) {}
}

/// The pipeline's side: the running counters and the sink they go to.
pub(crate) struct Tracker<'a> {
    sink: &'a dyn Progress,
    pub(crate) snapshot: ProgressSnapshot,
}

impl<'a> Tracker<'a> {
    pub(crate) fn new(sink: &'a dyn Progress) -> Self {
        Self {
            sink,
            snapshot: ProgressSnapshot::default(),
        }
    }

    pub(crate) fn emit(&self) {
        self.sink.update(&self.snapshot);
    }

    pub(crate) fn phase(&mut self, phase: Phase) {
        self.snapshot.phase = phase;
        if phase != Phase::Files {
            self.snapshot.current = None;
        }
        self.emit();
    }
}
