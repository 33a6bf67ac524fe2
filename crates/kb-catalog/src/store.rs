//! The catalog the settings name: a SQLite file (the embedded default) or a Postgres database
//! that several processes share.

use async_trait::async_trait;
use kb_core::{
    ApiKeyRecord, Catalog, CatalogError, DocumentId, DocumentRecord, DocumentSource, IngestRun,
    KeyStore, KeyStoreError, RunStats, StoredChunk,
};
use secrecy::SecretString;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use uuid::Uuid;

use crate::{DatabaseUrl, NewKey, PgCatalog, SqliteCatalog};

/// Where the catalog (and the API keys and usage ledger beside it) lives.
#[derive(Debug, Clone)]
pub enum CatalogLocation {
    /// A SQLite file (`catalog.path`, default `{data_dir}/kb.db`).
    File(PathBuf),
    /// A Postgres database (`catalog.url`).
    Postgres(DatabaseUrl),
}

impl fmt::Display for CatalogLocation {
    /// The file's path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// The opened catalog, of either backend: a [`Catalog`] and a [`KeyStore`]. Cheap to clone.
#[derive(Debug, Clone)]
pub enum CatalogStore {
    Sqlite(SqliteCatalog),
    Postgres(PgCatalog),
}

/// `$body` with `$c` bound to the backend's catalog.
macro_rules! each {
    ($self:expr, $c:ident => $body:expr) => {
        match $self {
            CatalogStore::Sqlite($c) => $body,
            CatalogStore::Postgres($c) => $body,
        }
    };
}

impl CatalogStore {
    /// Open the catalog at `location` (creating a missing SQLite file) and apply pending
    /// migrations.
    pub async fn open(location: &CatalogLocation) -> Result<Self, CatalogError> {
        Ok(match location {
            CatalogLocation::File(path) => Self::Sqlite(SqliteCatalog::open(path).await?),
            CatalogLocation::Postgres(url) => Self::Postgres(PgCatalog::open(url).await?),
        })
    }

    /// Make a key and store its hash; the key is returned once.
    pub async fn issue_key(
        &self,
        new: &NewKey,
    ) -> Result<(ApiKeyRecord, SecretString), KeyStoreError> {
        crate::keys::issue_key(self, new).await
    }

    /// Check that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), CatalogError> {
        each!(self, c => c.ping().await)
    }

    pub async fn close(&self) {
        each!(self, c => c.close().await)
    }
}

#[async_trait]
impl Catalog for CatalogStore {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, CatalogError> {
        each!(self, c => c.get_document(id).await)
    }

    async fn list_documents(&self) -> Result<Vec<DocumentRecord>, CatalogError> {
        each!(self, c => c.list_documents().await)
    }

    async fn find_message(&self, message_id: &str) -> Result<Option<DocumentId>, CatalogError> {
        each!(self, c => c.find_message(message_id).await)
    }

    async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError> {
        each!(self, c => c.chunks(id).await)
    }

    async fn chunk_range(
        &self,
        id: &DocumentId,
        ordinals: RangeInclusive<u32>,
    ) -> Result<Vec<StoredChunk>, CatalogError> {
        each!(self, c => c.chunk_range(id, ordinals).await)
    }

    async fn all_point_ids(&self) -> Result<Vec<Uuid>, CatalogError> {
        each!(self, c => c.all_point_ids().await)
    }

    async fn record_pending_points(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        each!(self, c => c.record_pending_points(ids).await)
    }

    async fn commit_document(
        &self,
        doc: &DocumentRecord,
        chunks: &[StoredChunk],
    ) -> Result<Vec<Uuid>, CatalogError> {
        each!(self, c => c.commit_document(doc, chunks).await)
    }

    async fn commit_documents(
        &self,
        docs: &[(DocumentRecord, Vec<StoredChunk>)],
    ) -> Result<Vec<Uuid>, CatalogError> {
        each!(self, c => c.commit_documents(docs).await)
    }

    async fn remove_document(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError> {
        each!(self, c => c.remove_document(id).await)
    }

    async fn set_document_source(
        &self,
        id: &DocumentId,
        source: &DocumentSource,
    ) -> Result<(), CatalogError> {
        each!(self, c => c.set_document_source(id, source).await)
    }

    async fn orphan_candidates(&self) -> Result<Vec<Uuid>, CatalogError> {
        each!(self, c => c.orphan_candidates().await)
    }

    async fn pending_points(&self) -> Result<Vec<Uuid>, CatalogError> {
        each!(self, c => c.pending_points().await)
    }

    async fn tombstones(&self) -> Result<Vec<Uuid>, CatalogError> {
        each!(self, c => c.tombstones().await)
    }

    async fn clear_tombstones(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        each!(self, c => c.clear_tombstones(ids).await)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, CatalogError> {
        each!(self, c => c.get_meta(key).await)
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        each!(self, c => c.set_meta(key, value).await)
    }

    async fn set_meta_many(&self, entries: &[(&str, &str)]) -> Result<(), CatalogError> {
        each!(self, c => c.set_meta_many(entries).await)
    }

    async fn start_run(&self) -> Result<i64, CatalogError> {
        each!(self, c => c.start_run().await)
    }

    async fn finish_run(
        &self,
        run: i64,
        status: &str,
        stats: &RunStats,
    ) -> Result<(), CatalogError> {
        each!(self, c => c.finish_run(run, status, stats).await)
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<IngestRun>, CatalogError> {
        each!(self, c => c.list_runs(limit).await)
    }

    async fn interrupt_stale_runs(&self) -> Result<Vec<i64>, CatalogError> {
        each!(self, c => c.interrupt_stale_runs().await)
    }
}

#[async_trait]
impl KeyStore for CatalogStore {
    async fn insert_key(&self, key: &ApiKeyRecord, key_hash: &str) -> Result<(), KeyStoreError> {
        each!(self, c => c.insert_key(key, key_hash).await)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, KeyStoreError> {
        each!(self, c => c.list_keys().await)
    }

    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        each!(self, c => c.revoke_key(id_or_name).await)
    }

    async fn find_active_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        each!(self, c => c.find_active_key(key_hash).await)
    }
}
