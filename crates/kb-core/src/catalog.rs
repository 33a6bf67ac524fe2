//! The catalog of documents, chunks and ingest runs (SQLite in this workspace).

use crate::document::{Chunk, DocumentId, DocumentMeta};
use crate::error::CatalogError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::ops::RangeInclusive;
use uuid::Uuid;

/// A document as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    pub id: DocumentId,
    /// Path of the source file as given at ingest.
    pub path: String,
    pub title: String,
    pub content_hash: String,
    /// Size of the source file in bytes.
    pub size_bytes: u64,
    /// Size of the extracted text in bytes.
    pub text_bytes: u64,
    pub chunk_count: u32,
    pub groups: Vec<String>,
    /// Owner, effective date and tags.
    #[serde(flatten)]
    pub meta: DocumentMeta,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Where the document was ingested from; `None` for documents catalogued before kb
    /// recorded it (until a re-ingest does). Server paths: shown to admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DocumentSource>,
}

/// Where a document comes from. Its identity follows the file: ingesting the same file from
/// another folder finds the document by `path` and keeps its id, and a different file whose
/// id is taken is refused rather than replacing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSource {
    /// Canonical absolute path of the file (symbolic links resolved).
    pub path: String,
    /// Canonical path of the ingest root it was last ingested from (the folder, or the file,
    /// named on the command line).
    pub root: String,
    /// Access groups given for it on the command line (`kb ingest --groups`), kept for later
    /// runs that give none; `None` if none were given.
    #[serde(default)]
    pub cli_groups: Option<Vec<String>>,
}

/// A chunk as stored in the catalog, with its point id in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredChunk {
    pub point_id: Uuid,
    pub chunk: Chunk,
    pub chunk_hash: String,
}

/// What one ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
    pub chunks: u64,
    pub tokens: u64,
    pub embedding_calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestRun {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    pub stats: RunStats,
}

/// The catalog. Writes that touch the index follow a write-ahead protocol so that a crash
/// at any point leaves catalog and index reconcilable:
///
/// 1. [`Catalog::record_pending_points`] before points are upserted,
/// 2. [`Catalog::commit_document`] (or [`Catalog::commit_documents`] for a group) swaps chunks
///    in one transaction and turns the replaced
///    points into tombstones,
/// 3. [`Catalog::clear_tombstones`] once the index has dropped them.
///
/// [`Catalog::orphan_candidates`] lists what a crashed run may have left in the index.
#[async_trait]
pub trait Catalog: Send + Sync + Debug {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, CatalogError>;

    async fn list_documents(&self) -> Result<Vec<DocumentRecord>, CatalogError>;

    /// The document that is the e-mail message with this Message-ID (without angle brackets),
    /// if one is catalogued (see [`crate::MessageHeaders::message_id`]).
    async fn find_message(&self, message_id: &str) -> Result<Option<DocumentId>, CatalogError>;

    async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError>;

    /// The chunks of a document whose ordinals lie in `ordinals`, in order: a cited passage
    /// and its neighbours, without reading the whole document. The default filters
    /// [`Catalog::chunks`]; a store with an index on ordinals should do better.
    async fn chunk_range(
        &self,
        id: &DocumentId,
        ordinals: RangeInclusive<u32>,
    ) -> Result<Vec<StoredChunk>, CatalogError> {
        let mut chunks = self.chunks(id).await?;
        chunks.retain(|c| ordinals.contains(&c.chunk.ordinal));
        Ok(chunks)
    }

    /// Point ids of every chunk in the catalog.
    async fn all_point_ids(&self) -> Result<Vec<Uuid>, CatalogError>;

    /// Record that these points are about to be written to the index.
    async fn record_pending_points(&self, ids: &[Uuid]) -> Result<(), CatalogError>;

    /// Replace a document and its chunks atomically. Points of the replaced version that are
    /// not among the new ones become tombstones; the new points stop being pending.
    async fn commit_document(
        &self,
        doc: &DocumentRecord,
        chunks: &[StoredChunk],
    ) -> Result<Vec<Uuid>, CatalogError>;

    /// [`Catalog::commit_document`] for several documents at once (group commit). Each document
    /// is swapped atomically; an implementation should commit them all in one transaction,
    /// which is what makes ingest fast. Returns the replaced points of all of them.
    async fn commit_documents(
        &self,
        docs: &[(DocumentRecord, Vec<StoredChunk>)],
    ) -> Result<Vec<Uuid>, CatalogError> {
        let mut replaced = Vec::new();
        for (doc, chunks) in docs {
            replaced.extend(self.commit_document(doc, chunks).await?);
        }
        Ok(replaced)
    }

    /// Remove a document; its points become tombstones, which are returned.
    async fn remove_document(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError>;

    /// Record where an unchanged document now comes from (its chunks stay as they are).
    async fn set_document_source(
        &self,
        id: &DocumentId,
        source: &DocumentSource,
    ) -> Result<(), CatalogError>;

    /// Points that may be in the index without being in the catalog: tombstones, and pending
    /// points of a run that never committed.
    async fn orphan_candidates(&self) -> Result<Vec<Uuid>, CatalogError>;

    /// Every point recorded as pending (written or about to be written to the index by a run
    /// that has not committed it yet). Empty after a run that finished.
    async fn pending_points(&self) -> Result<Vec<Uuid>, CatalogError>;

    /// Every tombstone (a point the catalog dropped that the index may still hold). Empty after
    /// a run that finished.
    async fn tombstones(&self) -> Result<Vec<Uuid>, CatalogError>;

    /// Forget tombstones and stale pending records once the index no longer holds them.
    async fn clear_tombstones(&self, ids: &[Uuid]) -> Result<(), CatalogError>;

    /// Metadata key/value (e.g. the embedding model the index was built with).
    async fn get_meta(&self, key: &str) -> Result<Option<String>, CatalogError>;

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), CatalogError>;

    /// Set several metadata keys in one transaction: all of them or none.
    async fn set_meta_many(&self, entries: &[(&str, &str)]) -> Result<(), CatalogError>;

    async fn start_run(&self) -> Result<i64, CatalogError>;

    async fn finish_run(
        &self,
        run: i64,
        status: &str,
        stats: &RunStats,
    ) -> Result<(), CatalogError>;

    async fn list_runs(&self, limit: u32) -> Result<Vec<IngestRun>, CatalogError>;

    /// Mark the runs left `running` by a process that no longer exists (killed, crashed) as
    /// `interrupted`, and return their ids. Runs of live processes are left alone. On SQLite a
    /// run is judged by its host and pid, so runs of other hosts are left alone too; on
    /// Postgres by the session lock its process holds, so a dead process on any host is found.
    async fn interrupt_stale_runs(&self) -> Result<Vec<i64>, CatalogError>;
}
