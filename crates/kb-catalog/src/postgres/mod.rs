//! The catalog in Postgres (`catalog.url`), shared by several `kb serve` replicas and
//! `kb ingest` processes on any machines.
//!
//! Same tables and migration versions as SQLite (`migrations/postgres/`), explicit Postgres
//! SQL. Several processes write at once, so unlike SQLite (one writer at a time) the writes
//! here are made safe for concurrency:
//!
//! - commits and removals of a document first take a transaction advisory lock on its id
//!   (in one order for a group), so that two processes swapping the same document's chunks
//!   queue instead of colliding on its chunk rows;
//! - a transaction that Postgres aborts as a deadlock or serialization failure is run again
//!   ([`retrying`]);
//! - an ingest run is owned by a session advisory lock held on its own connection while it
//!   runs (`runs`): a run whose lock is free belongs to a process that is gone, on whatever
//!   machine it ran.
//!
//! `catalog` implements [`Catalog`](kb_core::Catalog), `documents` swaps a document's
//! chunks and drops write-ahead records, `keys` is the [`KeyStore`](kb_core::KeyStore).

mod catalog;
mod documents;
mod keys;
mod runs;

use kb_core::CatalogError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use crate::DatabaseUrl;
use crate::sql::{db_err, parse_uuid};
#[cfg(test)]
pub(crate) use runs::RUN_LOCK_CLASS;
use runs::RunLocks;

/// Postgres' migrations, kept in step with `migrations/sqlite/` (same versions).
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connections in a catalog's pool (each `kb serve` and `kb ingest` process has one pool).
const MAX_CONNECTIONS: u32 = 8;
/// How long a query waits for a free connection, and a connection attempt for the server.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);
/// Times a transaction aborted as a deadlock or serialization failure is run again.
const MAX_RETRIES: u32 = 8;

/// The Postgres catalog. Cheap to clone (a connection pool and the locks of the runs this
/// process is running).
#[derive(Clone)]
pub struct PgCatalog {
    pub(crate) pool: PgPool,
    runs: RunLocks,
    /// Where it is, without the password (for `Debug`).
    url: DatabaseUrl,
}

impl fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCatalog")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PgCatalog {
    /// Connect to the database at `url` and apply pending migrations (under Postgres'
    /// migration lock, so that replicas starting together migrate once).
    pub async fn open(url: &DatabaseUrl) -> Result<Self, CatalogError> {
        Self::open_within(url, ACQUIRE_TIMEOUT).await
    }

    /// [`open`](Self::open), trying to connect for at most `timeout`.
    pub(crate) async fn open_within(
        url: &DatabaseUrl,
        timeout: Duration,
    ) -> Result<Self, CatalogError> {
        let pool = connect_within(url, MAX_CONNECTIONS, timeout)
            .await
            .map_err(|e| CatalogError::database(format!("cannot connect to {url}"), e))?;
        MIGRATOR.run(&pool).await.map_err(CatalogError::migration)?;
        Ok(Self {
            pool,
            runs: RunLocks::default(),
            url: url.clone(),
        })
    }

    /// The point ids a query selects (its one column).
    async fn point_id_query(&self, sql: &str, what: &str) -> Result<Vec<Uuid>, CatalogError> {
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(what))?;
        rows.iter().map(|s| parse_uuid(s)).collect()
    }

    /// Make a key and store its hash (see [`NewKey`](crate::NewKey)); the key is returned
    /// once.
    pub async fn issue_key(
        &self,
        new: &crate::NewKey,
    ) -> Result<(kb_core::ApiKeyRecord, secrecy::SecretString), kb_core::KeyStoreError> {
        crate::keys::issue_key(self, new).await
    }

    /// Check that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err("ping"))?;
        Ok(())
    }

    /// Close the pool, and the connections holding the locks of runs still running (which
    /// frees them: the next run will mark those runs interrupted).
    pub async fn close(&self) {
        self.runs.release_all().await;
        self.pool.close().await;
    }
}

/// A pool of at most `connections` over `url` (for the usage ledger, which keeps its own
/// pool on the catalog's database). Its errors never show the password (sqlx's name the
/// host, the user or the server's complaint).
pub async fn connect(url: &DatabaseUrl, connections: u32) -> Result<PgPool, sqlx::Error> {
    connect_within(url, connections, ACQUIRE_TIMEOUT).await
}

/// [`connect`], trying for at most `timeout` (sqlx retries a server that does not answer yet,
/// e.g. one starting beside kb).
async fn connect_within(
    url: &DatabaseUrl,
    connections: u32,
    timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url.expose())?.application_name("kb");
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(timeout)
        .connect_with(options.clone())
        .await;
    match pool {
        // The pool kept retrying and says only that it timed out: one more attempt names the
        // reason (refused, unknown host, ...).
        Err(sqlx::Error::PoolTimedOut) => match PgConnection::connect_with(&options).await {
            Err(reason) => Err(reason),
            Ok(connection) => {
                let _ = connection.close().await;
                Err(sqlx::Error::PoolTimedOut)
            }
        },
        other => other,
    }
}

/// Whether Postgres aborted the transaction only because of other transactions (a deadlock
/// or a serialization failure): running it again may well succeed.
fn is_transient(error: &CatalogError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<sqlx::Error>())
        .and_then(sqlx::Error::as_database_error)
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40001" || code == "40P01")
}

/// Run `attempt` (one whole transaction) again while Postgres aborts it as a deadlock or
/// serialization failure, up to [`MAX_RETRIES`] times, with a short random pause between.
async fn retrying<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, CatalogError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CatalogError>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(error) if retries < MAX_RETRIES && is_transient(&error) => {
                retries += 1;
                tracing::debug!(
                    what,
                    retries,
                    "catalog transaction aborted by a concurrent one; running it again"
                );
                let pause = rand::random_range(5..=20 * u64::from(retries));
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A database error with a SQLSTATE, as Postgres would send it.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "sqlstate {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn failed(code: &'static str) -> CatalogError {
        db_err("commit documents")(sqlx::Error::Database(Box::new(Sqlstate(code))))
    }

    #[tokio::test]
    async fn deadlocks_and_serialization_failures_are_run_again() {
        for code in ["40P01", "40001"] {
            let attempts = AtomicU32::new(0);

            let result = retrying("test", || async {
                match attempts.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(failed(code)),
                    _ => Ok("committed"),
                }
            })
            .await;

            assert_eq!(result.unwrap(), "committed");
            assert_eq!(attempts.load(Ordering::SeqCst), 3, "{code}");
        }
    }

    #[tokio::test]
    async fn other_errors_are_returned_at_once_and_retries_end() {
        let attempts = AtomicU32::new(0);
        let unique = retrying("test", || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(failed("23505"))
        })
        .await;
        assert!(unique.is_err());
        assert_eq!(attempts.load(Ordering::SeqCst), 1);

        let attempts = AtomicU32::new(0);
        let endless = retrying("test", || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(failed("40P01"))
        })
        .await;
        assert!(is_transient(&endless.unwrap_err()));
        assert_eq!(attempts.load(Ordering::SeqCst), MAX_RETRIES + 1);
    }
}
