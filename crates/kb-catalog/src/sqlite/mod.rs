//! The catalog in one SQLite file (`{data_dir}/kb.db`, WAL): the embedded default.
//!
//! `catalog` implements [`Catalog`](kb_core::Catalog) one query per method; `documents`
//! swaps a document's chunks; `write_ahead` drops the pending records and tombstones of
//! committed points; `keys` is the [`KeyStore`](kb_core::KeyStore). Whether a run's process
//! is gone is told by its pid and host (`crate::runs`).

mod catalog;
mod documents;
mod keys;
mod write_ahead;

use kb_core::CatalogError;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use crate::files;
use crate::sql::{db_err, parse_uuid};

/// SQLite's migrations; `migrations/postgres/` has the same versions.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite catalog. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pub(crate) pool: SqlitePool,
}

impl SqliteCatalog {
    /// Open (creating if missing) the database file at `path` and apply pending migrations.
    ///
    /// The file and its `-wal`/`-shm` are made private to this user, and a folder created for
    /// them is 0700 ([`files`]).
    pub async fn open(path: &Path) -> Result<Self, CatalogError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::create_private_dir(parent).map_err(|e| {
                CatalogError::database(format!("cannot create folder {}", parent.display()), e)
            })?;
            files::warn_if_open_to_others(parent);
        }
        files::secure_database_files(path, true).map_err(|e| {
            CatalogError::database(format!("cannot make {} private", path.display()), e)
        })?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|e| CatalogError::database(path.display().to_string(), e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| CatalogError::database(format!("cannot open {}", path.display()), e))?;
        Self::from_pool(pool).await
    }

    /// Use an existing pool (e.g. from `#[sqlx::test]`) and apply migrations.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, CatalogError> {
        MIGRATOR.run(&pool).await.map_err(CatalogError::migration)?;
        Ok(Self { pool })
    }

    /// The point ids a query selects (its one column).
    async fn point_id_query(&self, sql: &str, what: &str) -> Result<Vec<Uuid>, CatalogError> {
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(what))?;
        rows.iter().map(|s| parse_uuid(s)).collect()
    }

    /// Every row a query selects, converted.
    async fn all_rows<T>(
        &self,
        sql: &str,
        what: &str,
        convert: fn(&sqlx::sqlite::SqliteRow) -> Result<T, CatalogError>,
    ) -> Result<Vec<T>, CatalogError> {
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(what))?;
        rows.iter().map(convert).collect()
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

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
