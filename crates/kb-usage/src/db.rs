//! The database the ledger lives in: the catalog's own, a SQLite file (`{data_dir}/kb.db`) or
//! the Postgres database of `catalog.url`.

use crate::error::UsageError;
use kb_catalog::{CatalogLocation, DatabaseUrl, files};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::path::Path;
use std::time::Duration;

/// The workspace's migration sets: the same folders `kb-catalog` embeds, so whichever of the
/// two opens a database first brings it to the same schema, and the other finds nothing to
/// do.
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connections of the ledger's pool: one writer task and an occasional report.
const CONNECTIONS: u32 = 2;

/// A pool over the ledger's database, migrated. Cheap to clone.
#[derive(Clone)]
pub struct UsageDb {
    pub(crate) pool: Pool,
    /// The file's path or the URL without its password, for messages.
    shown: String,
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl std::fmt::Debug for UsageDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UsageDb").field(&self.shown).finish()
    }
}

impl UsageDb {
    /// Open the ledger where the catalog is: a SQLite file is created if missing.
    pub async fn open_at(location: &CatalogLocation) -> Result<Self, UsageError> {
        match location {
            CatalogLocation::File(path) => Self::open(path).await,
            CatalogLocation::Postgres(url) => Self::open_postgres(url).await,
        }
    }

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

    /// Connect to the Postgres database at `url` and apply pending migrations.
    pub async fn open_postgres(url: &DatabaseUrl) -> Result<Self, UsageError> {
        let open_err = |source| UsageError::Open {
            path: url.to_string(),
            source,
        };
        let pool = kb_catalog::connect_postgres(url, CONNECTIONS)
            .await
            .map_err(open_err)?;
        POSTGRES.run(&pool).await.map_err(UsageError::Migration)?;
        Ok(Self {
            pool: Pool::Postgres(pool),
            shown: url.to_string(),
        })
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
            .max_connections(CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let mut db = Self::from_pool(pool).await?;
        db.shown = path.display().to_string();
        Ok(db)
    }

    /// Use an existing SQLite pool and apply migrations.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, UsageError> {
        SQLITE.run(&pool).await.map_err(UsageError::Migration)?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            shown: "SQLite".to_owned(),
        })
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}
