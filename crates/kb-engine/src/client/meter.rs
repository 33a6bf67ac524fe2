//! What the client counts over its life ([`EngineStats`]) and where it sends each attempt's
//! [`CallRecord`].

use crate::usage::{CallRecord, UsageRecorder};
use kb_core::Usage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Counters since the client was created (every attempt counts as a call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Attempts sent to an engine.
    pub calls: u64,
    /// Attempts that failed (including streams interrupted after their first token).
    pub failures: u64,
    /// Sum of the `usage.prompt_tokens` the engines reported.
    pub prompt_tokens: u64,
    /// Sum of the `usage.completion_tokens` the engines reported.
    pub completion_tokens: u64,
}

/// The counters behind [`EngineStats`] and the client's [`UsageRecorder`], if any.
#[derive(Default)]
pub(super) struct Meter {
    calls: AtomicU64,
    failures: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    recorder: RwLock<Option<Arc<dyn UsageRecorder>>>,
}

impl Meter {
    pub fn set_recorder(&self, recorder: Arc<dyn UsageRecorder>) {
        *self.recorder.write().unwrap_or_else(|e| e.into_inner()) = Some(recorder);
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.completion_tokens.load(Ordering::Relaxed),
        }
    }

    /// An attempt was sent.
    pub fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt failed.
    pub fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The tokens an engine reported for an attempt.
    pub fn count_tokens(&self, usage: Usage) {
        self.prompt_tokens
            .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(usage.completion_tokens, Ordering::Relaxed);
    }

    /// Hand the record `make` builds to the recorder, if there is one, outside the lock.
    pub fn record(&self, make: impl FnOnce() -> CallRecord) {
        let recorder = self
            .recorder
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(recorder) = recorder {
            recorder.record(&make());
        }
    }
}
