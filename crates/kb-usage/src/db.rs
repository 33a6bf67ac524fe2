//! The SQLite file the ledger lives in: the catalog's own (`{data_dir}/kb.db`).

use crate::error::UsageError;
use kb_catalog::files;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

/// The workspace's one migration set: the same folder `kb-catalog` embeds, so whichever of the
/// two opens a file first brings it to the same schema, and the other finds nothing to do.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A pool over the ledger's SQLite file, migrated. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UsageDb {
    pub(crate) pool: SqlitePool,
}

impl UsageDb {
    /// Open (creating if missing) the SQLite file at `path` in WAL mode and apply pending
    /// migrations. Readers (`kb usage`) and a running server may have it open together. The
    /// file and its `-wal`/`-shm` are made private to this user ([`files`]).
    pub async fn open(path: &Path) -> Result<Self, UsageError> {
        Self::connect(path, true).await
    }

    /// Like [`open`](Self::open), but a missing file is an error instead of a new database.
    pub async fn open_existing(path: &Path) -> Result<Self, UsageError> {
        Self::connect(path, false).await
    }

    async fn connect(path: &Path, create: bool) -> Result<Self, UsageError> {
        let open_err = |source| UsageError::Open {
            path: path.display().to_string(),
            source,
        };
        // The catalog's file: private to this user, as `kb-catalog` makes it.
        if create && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::create_private_dir(parent).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        }
        files::secure_database_files(path, create).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Self::from_pool(pool).await
    }

    /// Use an existing pool and apply migrations.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, UsageError> {
        MIGRATOR.run(&pool).await.map_err(UsageError::Migration)?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
