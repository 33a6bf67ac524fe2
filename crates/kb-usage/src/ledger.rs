//! The writing side: a [`UsageRecorder`] that queues, and a background task that inserts in
//! batches.

use crate::config::UsageConfig;
use crate::db::{Pool, UsageDb};
use kb_engine::{CallRecord, UsageRecorder};
use sqlx::{Postgres, QueryBuilder, Sqlite};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Counters since the ledger started (also Prometheus' `kb_usage_records_total` by `result`:
/// `written`, `dropped`, `failed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Records inserted.
    pub written: u64,
    /// Records never queued: the queue was full, or the ledger was closed.
    pub dropped: u64,
    /// Records queued whose insert failed (logged with the database error).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    /// Dropped since the writer last logged it.
    dropped_unlogged: AtomicU64,
    failed: AtomicU64,
}

/// The [`UsageRecorder`] to give to engine clients: it only tries to queue the record.
#[derive(Debug, Clone)]
pub struct LedgerRecorder {
    queue: mpsc::Sender<CallRecord>,
    counters: Arc<Counters>,
}

impl UsageRecorder for LedgerRecorder {
    fn record(&self, record: &CallRecord) {
        match self.queue.try_send(record.clone()) {
            Ok(()) => {}
            // Never wait: an engine call must not slow down because the ledger does. The
            // writer logs how many were dropped.
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                metrics::counter!("kb_usage_records_total", "result" => "dropped").increment(1);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .dropped_unlogged
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The ledger writer: owns the background task. [`close`](Self::close) it at shutdown so that
/// queued records are written.
#[derive(Debug)]
pub struct UsageLedger {
    db: UsageDb,
    recorder: LedgerRecorder,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl UsageLedger {
    /// Start the background writer over `db` (on the current tokio runtime).
    pub fn start(db: UsageDb, config: &UsageConfig) -> Self {
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(write_loop(
            db.clone(),
            rx,
            config.batch_size.max(1),
            stop.clone(),
            counters.clone(),
        ));
        Self {
            db,
            recorder: LedgerRecorder { queue, counters },
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// The recorder for engine clients.
    pub fn recorder(&self) -> Arc<LedgerRecorder> {
        Arc::new(self.recorder.clone())
    }

    pub fn stats(&self) -> LedgerStats {
        let c = &self.recorder.counters;
        LedgerStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Stop taking records, write every queued one, wait for the writer. Later records are
    /// dropped (and counted). Calling it again does nothing.
    pub async fn close(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "usage ledger writer ended abnormally");
        }
        let stats = self.stats();
        tracing::debug!(
            written = stats.written,
            dropped = stats.dropped,
            failed = stats.failed,
            "usage ledger closed"
        );
    }

    /// The database the ledger writes to.
    pub fn db(&self) -> &UsageDb {
        &self.db
    }
}

async fn write_loop(
    db: UsageDb,
    mut rx: mpsc::Receiver<CallRecord>,
    batch_size: usize,
    stop: CancellationToken,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        tokio::select! {
            // Both are cancel safe: a record received is in `batch`, never lost.
            received = rx.recv_many(&mut batch, batch_size) => {
                if received == 0 {
                    break; // every recorder is gone and the queue is empty
                }
                write_batch(&db, &mut batch, &counters).await;
            }
            () = stop.cancelled() => {
                rx.close();
                while rx.recv_many(&mut batch, batch_size).await > 0 {
                    write_batch(&db, &mut batch, &counters).await;
                }
                break;
            }
        }
    }
    log_drops(&counters);
}

async fn write_batch(db: &UsageDb, batch: &mut Vec<CallRecord>, counters: &Counters) {
    let n = batch.len() as u64;
    match insert(db, batch).await {
        Ok(()) => {
            metrics::counter!("kb_usage_records_total", "result" => "written").increment(n);
            counters.written.fetch_add(n, Ordering::Relaxed);
        }
        Err(error) => {
            metrics::counter!("kb_usage_records_total", "result" => "failed").increment(n);
            counters.failed.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(%error, records = n, "usage ledger: cannot write records; they are lost");
        }
    }
    batch.clear();
    log_drops(counters);
}

fn log_drops(counters: &Counters) {
    let dropped = counters.dropped_unlogged.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(
            dropped,
            total = counters.dropped.load(Ordering::Relaxed),
            "usage ledger: records dropped (queue full or ledger closed); raise usage.queue_capacity if this repeats"
        );
    }
}

async fn insert(db: &UsageDb, batch: &[CallRecord]) -> Result<(), sqlx::Error> {
    // One multi-row INSERT in one transaction, in each backend's dialect of placeholders.
    match &db.pool {
        Pool::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            insert_query::<Sqlite>(batch)
                .build()
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        Pool::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            insert_query::<Postgres>(batch)
                .build()
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
    }
}

fn insert_query<'a, DB>(batch: &'a [CallRecord]) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut query: QueryBuilder<DB> = QueryBuilder::new(
        "INSERT INTO engine_calls (at_ms, endpoint, model, kind, prompt_tokens, \
         completion_tokens, latency_ms, outcome) ",
    );
    query.push_values(batch, |mut row, r| {
        let at_ms =
            r.at.duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or_default();
        row.push_bind(at_ms)
            .push_bind(r.endpoint.as_str())
            .push_bind(r.model.as_str())
            .push_bind(r.kind.as_str())
            .push_bind(saturating_i64(r.prompt_tokens))
            .push_bind(saturating_i64(r.completion_tokens))
            .push_bind(saturating_i64(r.latency_ms))
            .push_bind(r.outcome.as_str());
    });
    query
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
