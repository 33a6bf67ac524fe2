//! Who is still running an ingest, across machines: the process that starts a run holds a
//! session advisory lock on it, on a connection of its own, until it finishes the run.
//!
//! Postgres frees a session's locks when the session ends: when the process exits or is
//! killed (its socket closes), or when its machine is gone (the server's TCP keepalives,
//! set short on this connection, notice within about a minute). A run still `running` whose
//! lock another session can take is therefore a run of a process that is gone. If the
//! connection to Postgres is lost while the process goes on, its run is marked interrupted
//! by the next run: the run's own commits stay valid, and that next run reconciles the index
//! as after any interrupted run.

use kb_core::CatalogError;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::PgCatalog;
use crate::runs::RunOwner;
use crate::sql::{db_err, now};

/// The first key of every run lock (`pg_advisory_lock(int4, int4)`): "kb" and 1, so that
/// kb's locks do not meet another application's in the same database.
pub(crate) const RUN_LOCK_CLASS: i32 = 0x6b62_0001;

/// The second key of a run's lock: its id (ids past 2^31 wrap, sharing a lock with a run
/// 2^31 ids older, long finished).
fn run_lock_key(run: i64) -> i32 {
    i32::try_from(run.rem_euclid(i64::from(i32::MAX))).expect("BUG: the remainder fits")
}

/// The connections holding the locks of the runs this process is running, by run id.
#[derive(Debug, Default, Clone)]
pub(super) struct RunLocks(Arc<Mutex<HashMap<i64, PgConnection>>>);

impl RunLocks {
    fn insert(&self, run: i64, connection: PgConnection) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run, connection);
    }

    fn take(&self, run: i64) -> Option<PgConnection> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run)
    }

    /// Close every lock connection (their runs are then free to be marked interrupted).
    pub(super) async fn release_all(&self) {
        let connections: Vec<PgConnection> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        for connection in connections {
            close(connection).await;
        }
    }
}

async fn close(connection: PgConnection) {
    if let Err(error) = connection.close().await {
        tracing::debug!(%error, "closing an ingest run's lock connection");
    }
}

impl PgCatalog {
    /// Record a new run and lock it on a connection of its own, kept until
    /// [`finish`](Self::finish_run_lock). The row becomes visible to others with its lock
    /// already held, so no other process can take it for a dead one.
    pub(super) async fn start_locked_run(&self) -> Result<i64, CatalogError> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(db_err("start run: connect"))?
            .detach();
        // Notice a vanished machine within about a minute (these are the server's keepalives
        // on this session's socket) rather than the system's two hours.
        sqlx::query(
            "SELECT set_config('tcp_keepalives_idle', '30', false), \
                    set_config('tcp_keepalives_interval', '10', false), \
                    set_config('tcp_keepalives_count', '3', false)",
        )
        .execute(&mut connection)
        .await
        .map_err(db_err("start run: keepalives"))?;
        let me = RunOwner::current();
        let mut tx = connection.begin().await.map_err(db_err("begin"))?;
        let run: i64 = sqlx::query_scalar(
            "INSERT INTO ingest_runs (started_at, status, host, pid, process_token) \
             VALUES ($1, 'running', $2, $3, $4) RETURNING id",
        )
        .bind(now())
        .bind(&me.host)
        .bind(i64::from(me.pid))
        .bind(&me.token)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("start run"))?;
        // A session lock taken in a transaction outlives its commit.
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(RUN_LOCK_CLASS)
            .bind(run_lock_key(run))
            .execute(&mut *tx)
            .await
            .map_err(db_err("start run: lock"))?;
        tx.commit().await.map_err(db_err("commit run"))?;
        self.runs.insert(run, connection);
        Ok(run)
    }

    /// Release a finished run's lock, if this process holds it.
    pub(super) async fn finish_run_lock(&self, run: i64) {
        if let Some(connection) = self.runs.take(run) {
            close(connection).await;
        }
    }

    /// Mark the `running` runs whose lock is free as `interrupted`: their processes are gone.
    pub(super) async fn interrupt_unlocked_runs(&self) -> Result<Vec<i64>, CatalogError> {
        let running: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM ingest_runs WHERE status = 'running' ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err("list running runs"))?;
        let mut stale = Vec::new();
        for run in running {
            // A transaction lock: taken only if no session holds the run's lock, and freed
            // at commit, so that two processes checking at once mark a run once.
            let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
                .bind(RUN_LOCK_CLASS)
                .bind(run_lock_key(run))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err("check run lock"))?;
            if !free {
                continue;
            }
            let marked = sqlx::query(
                "UPDATE ingest_runs SET status = 'interrupted', finished_at = $1 \
                 WHERE id = $2 AND status = 'running'",
            )
            .bind(now())
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(db_err("mark run interrupted"))?;
            tx.commit()
                .await
                .map_err(db_err("commit interrupted run"))?;
            if marked.rows_affected() == 1 {
                stale.push(run);
            }
        }
        if !stale.is_empty() {
            tracing::warn!(runs = ?stale, "marked ingest runs of processes that are gone as interrupted");
        }
        Ok(stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_the_run_id_below_2_pow_31() {
        assert_eq!(run_lock_key(1), 1);
        assert_eq!(run_lock_key(i64::from(i32::MAX) - 1), i32::MAX - 1);
        assert_eq!(run_lock_key(i64::from(i32::MAX) + 5), 5);
        assert!(run_lock_key(i64::MAX) >= 0);
    }
}
