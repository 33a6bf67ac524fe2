//! Pacing of embedding calls: cross-document batches capped by input count *and* tokens, and
//! the retry of one failed batch.
//!
//! The pipeline feeds chunks of consecutive documents into a [`Batcher`], which closes a batch
//! as soon as one more chunk would break either cap. Each batch is embedded by its own task
//! ([`embed_batch`]); the pipeline keeps at most [`Pacing::concurrency`] of them in flight.
//! A batch that fails with a retryable error (429, 5xx, timeout, used-up client budget) waits
//! for the engine's `Retry-After` (else a growing backoff) and is sent again on its own: the
//! batches that succeeded meanwhile are never embedded twice.
//!
//! The engine client (`kb-engine`) already retries each request and applies the endpoints'
//! `requests_per_minute` / `tokens_per_minute` budgets; this level only takes over once the
//! engine client gave up on a request, so that a long rate-limit episode slows a run down
//! instead of stopping it.

use kb_core::error::chain;
use kb_core::{Embedder, Embedding, InputKind, ModelError};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How embedding calls are sized and paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pacing {
    /// Most inputs (chunks) in one embedding call.
    pub batch_max_inputs: usize,
    /// Most tokens (in the embedder's own count) in one embedding call.
    pub batch_max_tokens: usize,
    /// Most embedding calls in flight at once.
    pub concurrency: usize,
    /// Times a batch that failed with a retryable error is sent again before the run stops.
    pub batch_retries: u32,
}

impl Default for Pacing {
    /// As `[ingest]` sets it by default.
    fn default() -> Self {
        crate::IngestConfig::default().pacing()
    }
}

/// The pacing settings cannot work with this embedder.
#[derive(Debug, thiserror::Error)]
#[error("invalid pacing settings: {0}")]
pub struct PacingError(String);

impl Pacing {
    /// Check the settings against the embedder: a chunk of the largest size the splitter makes
    /// (the embedder's input limit) must fit in a batch on its own.
    pub fn validate(&self, embedder: &dyn Embedder) -> Result<(), PacingError> {
        if self.batch_max_inputs == 0 {
            return Err(PacingError(
                "ingest.batch_max_inputs must be at least 1".into(),
            ));
        }
        if self.concurrency == 0 {
            return Err(PacingError("ingest.concurrency must be at least 1".into()));
        }
        let limit = embedder.max_input_tokens();
        if self.batch_max_tokens < limit {
            return Err(PacingError(format!(
                "ingest.batch_max_tokens = {} is below the embedder's input limit ({limit} tokens): a full chunk would not fit in a batch",
                self.batch_max_tokens
            )));
        }
        Ok(())
    }
}

/// Longest wait between two attempts of a batch when the engine did not say how long.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One chunk in a batch: who it belongs to, and what to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchItem<K> {
    pub key: K,
    pub text: String,
    pub tokens: usize,
}

/// Chunks embedded in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch<K> {
    pub items: Vec<BatchItem<K>>,
    pub tokens: usize,
}

impl<K> Batch<K> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            tokens: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// One batch per item, for finding the input an engine refuses.
    pub fn into_singletons(self) -> Vec<Batch<K>> {
        self.items
            .into_iter()
            .map(|item| Batch {
                tokens: item.tokens,
                items: vec![item],
            })
            .collect()
    }
}

/// Packs items into batches within both caps, in the order they come.
#[derive(Debug)]
pub(crate) struct Batcher<K> {
    max_inputs: usize,
    max_tokens: usize,
    open: Batch<K>,
}

impl<K> Batcher<K> {
    pub fn new(pacing: &Pacing) -> Self {
        Self {
            max_inputs: pacing.batch_max_inputs.max(1),
            max_tokens: pacing.batch_max_tokens,
            open: Batch::new(),
        }
    }

    /// Add an item; returns the batch it closed, if adding it would have broken a cap. An item
    /// over the token cap on its own (not made by the splitter, whose chunks fit the embedder's
    /// limit, which [`Pacing::validate`] keeps under the cap) travels alone.
    pub fn push(&mut self, item: BatchItem<K>) -> Option<Batch<K>> {
        let full = !self.open.items.is_empty()
            && (self.open.len() >= self.max_inputs
                || self.open.tokens + item.tokens > self.max_tokens);
        let closed = full.then(|| std::mem::replace(&mut self.open, Batch::new()));
        self.open.tokens += item.tokens;
        self.open.items.push(item);
        closed
    }

    /// The batch being filled, if it holds anything.
    pub fn flush(&mut self) -> Option<Batch<K>> {
        (!self.open.items.is_empty()).then(|| std::mem::replace(&mut self.open, Batch::new()))
    }
}

/// What one batch's embedding came to, with what it cost.
#[derive(Debug)]
pub(crate) struct BatchOutcome<K> {
    pub batch: Batch<K>,
    pub result: Result<Vec<Embedding>, BatchError>,
    /// Calls made to the embedder (1 + retries).
    pub calls: u32,
    /// Time spent waiting between attempts.
    pub waited: Duration,
    pub started: Instant,
    pub finished: Instant,
}

#[derive(Debug)]
pub(crate) enum BatchError {
    /// The embedder failed (after the retries, if the error was retryable).
    Model(ModelError),
    /// The run was cancelled while the batch waited to be retried.
    Cancelled,
}

/// Embed one batch, retrying it alone on retryable errors as described in the module docs.
pub(crate) async fn embed_batch<K>(
    embedder: &dyn Embedder,
    batch: Batch<K>,
    retries: u32,
    cancel: CancellationToken,
) -> BatchOutcome<K> {
    let started = Instant::now();
    let texts: Vec<String> = batch.items.iter().map(|i| i.text.clone()).collect();
    let mut calls = 0;
    let mut waited = Duration::ZERO;
    let result = loop {
        calls += 1;
        let error = match embedder.embed(&texts, InputKind::Passage).await {
            Ok(vectors) if vectors.len() == texts.len() => break Ok(vectors),
            Ok(vectors) => ModelError::permanent(format!(
                "embedder returned {} vectors for {} inputs",
                vectors.len(),
                texts.len()
            )),
            Err(e) => e,
        };
        if !error.is_retryable() || calls > retries {
            break Err(BatchError::Model(error));
        }
        let wait = error.retry_after().unwrap_or_else(|| backoff(calls));
        tracing::warn!(
            error = %chain(&error),
            inputs = texts.len(),
            attempt = calls,
            wait_ms = wait.as_millis() as u64,
            "embedding batch failed; retrying it alone"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => waited += wait,
            () = cancel.cancelled() => break Err(BatchError::Cancelled),
        }
    };
    BatchOutcome {
        batch,
        result,
        calls,
        waited,
        started,
        finished: Instant::now(),
    }
}

/// 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`], before attempt `attempt + 1`.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(MAX_BACKOFF)
}

/// Total length of the union of time intervals: the wall time during which at least one
/// embedding call was in flight.
pub(crate) fn busy_time(mut intervals: Vec<(Instant, Instant)>) -> Duration {
    intervals.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in intervals {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: u32, tokens: usize) -> BatchItem<u32> {
        BatchItem {
            key,
            text: format!("chunk {key}"),
            tokens,
        }
    }

    fn pacing(inputs: usize, tokens: usize) -> Pacing {
        Pacing {
            batch_max_inputs: inputs,
            batch_max_tokens: tokens,
            ..Pacing::default()
        }
    }

    fn pack(pacing: &Pacing, sizes: &[usize]) -> Vec<Vec<u32>> {
        let mut batcher = Batcher::new(pacing);
        let mut out: Vec<Batch<u32>> = sizes
            .iter()
            .enumerate()
            .filter_map(|(i, t)| batcher.push(item(i as u32, *t)))
            .collect();
        out.extend(batcher.flush());
        out.iter()
            .map(|b| b.items.iter().map(|i| i.key).collect())
            .collect()
    }

    #[test]
    fn batches_close_at_the_input_cap() {
        let batches = pack(&pacing(3, 1000), &[1; 7]);
        assert_eq!(batches, [vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    }

    #[test]
    fn batches_close_before_the_token_cap_is_passed() {
        let batches = pack(&pacing(100, 10), &[4, 4, 3, 9, 1, 10]);
        assert_eq!(batches, [vec![0, 1], vec![2], vec![3, 4], vec![5]]);
    }

    #[test]
    fn an_empty_batcher_flushes_nothing() {
        let mut batcher: Batcher<u32> = Batcher::new(&Pacing::default());
        assert!(batcher.flush().is_none());
    }

    #[test]
    fn busy_time_counts_overlapping_calls_once() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let busy = busy_time(vec![
            (t + ms(10), t + ms(30)),
            (t, t + ms(20)),
            (t + ms(50), t + ms(60)),
        ]);
        assert_eq!(busy, ms(40));
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
