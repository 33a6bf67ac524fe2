//! The record of every attempt the client sends to an engine, for a usage ledger or metrics.
//!
//! The client hands each [`CallRecord`] to a [`UsageRecorder`] set with
//! [`EngineClient::with_recorder`](crate::EngineClient::with_recorder). Records name the
//! endpoint, never the key.

use crate::kind::ModelKind;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// One attempt: a request sent to one endpoint, successful or not (each retry is one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// When the request was sent.
    pub at: SystemTime,
    /// The endpoint's configured `name`.
    pub endpoint: String,
    /// The model name sent in the request.
    pub model: String,
    pub kind: ModelKind,
    /// As the engine reported (0 when it did not, e.g. for failed attempts).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// From sending the request to its end (for a stream: its last chunk, or when it was
    /// dropped).
    pub latency_ms: u64,
    /// `ok`; the HTTP status (`429`, `500`, ...); `timeout`, `connect_error`,
    /// `transport_error`, `malformed`, `wrong_dimensions`; `interrupted` (a stream broke after
    /// its first token); `cancelled` (the caller dropped the call or the stream).
    pub outcome: String,
}

impl CallRecord {
    pub fn is_ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// Where the client sends its [`CallRecord`]s.
///
/// `record` is called on the task that made the call, once per attempt, without locks held:
/// keep it quick and non-blocking (send to a channel or a buffer for anything slow, such as a
/// database write).
pub trait UsageRecorder: Send + Sync + Debug {
    fn record(&self, record: &CallRecord);
}

/// Hands every record to each of several recorders, in order (e.g. metrics and a ledger).
#[derive(Debug, Default)]
pub struct FanOut(Vec<Arc<dyn UsageRecorder>>);

impl FanOut {
    pub fn new(recorders: Vec<Arc<dyn UsageRecorder>>) -> Self {
        Self(recorders)
    }
}

impl UsageRecorder for FanOut {
    fn record(&self, record: &CallRecord) {
        for recorder in &self.0 {
            recorder.record(record);
        }
    }
}

/// Keeps the records in memory: for tests, and for metrics read now and then.
#[derive(Debug, Default)]
pub struct MemoryRecorder {
    limit: Option<usize>,
    records: Mutex<VecDeque<CallRecord>>,
}

impl MemoryRecorder {
    /// Keeps every record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the last `limit` records (at least 1): a bounded memory for a long-running server.
    pub fn bounded(limit: usize) -> Self {
        Self {
            limit: Some(limit.max(1)),
            records: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<CallRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The records kept, oldest first.
    pub fn records(&self) -> Vec<CallRecord> {
        self.lock().iter().cloned().collect()
    }

    /// The records kept, oldest first, and forget them.
    pub fn take(&self) -> Vec<CallRecord> {
        self.lock().drain(..).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl UsageRecorder for MemoryRecorder {
    fn record(&self, record: &CallRecord) {
        let mut records = self.lock();
        if self.limit.is_some_and(|limit| records.len() >= limit) {
            records.pop_front();
        }
        records.push_back(record.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: &str) -> CallRecord {
        CallRecord {
            at: SystemTime::UNIX_EPOCH,
            endpoint: "a".to_owned(),
            model: "m".to_owned(),
            kind: ModelKind::Chat,
            prompt_tokens: 1,
            completion_tokens: 2,
            latency_ms: 3,
            outcome: outcome.to_owned(),
        }
    }

    #[test]
    fn bounded_recorder_keeps_the_most_recent_records() {
        // Arrange
        let recorder = MemoryRecorder::bounded(2);

        // Act
        for outcome in ["500", "429", "ok"] {
            recorder.record(&record(outcome));
        }

        // Assert
        let outcomes: Vec<String> = recorder.take().into_iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, ["429", "ok"]);
        assert!(recorder.is_empty());
    }

    #[test]
    fn fan_out_hands_each_record_to_every_recorder() {
        // Arrange
        let (metrics, ledger) = (
            Arc::new(MemoryRecorder::new()),
            Arc::new(MemoryRecorder::new()),
        );
        let fan_out = FanOut::new(vec![metrics.clone(), ledger.clone()]);

        // Act
        fan_out.record(&record("ok"));
        fan_out.record(&record("503"));

        // Assert
        assert_eq!(metrics.records(), ledger.records());
        assert_eq!(ledger.len(), 2);
    }

    #[test]
    fn record_serialises_with_the_kind_in_lowercase() {
        // Act
        let json = serde_json::to_value(record("ok")).unwrap();

        // Assert
        assert_eq!(json["kind"], "chat");
        assert_eq!(json["endpoint"], "a");
        assert_eq!(json["outcome"], "ok");
    }
}
