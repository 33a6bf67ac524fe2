//! The vector index: embedded Qdrant in a local folder, or a Qdrant server.

use crate::document::{ChunkPayload, DocumentId};
use crate::error::IndexError;
use crate::model::Embedding;
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use uuid::Uuid;

/// A chunk ready for the index.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkPoint {
    pub id: Uuid,
    pub vector: Embedding,
    pub payload: ChunkPayload,
}

/// Restricts a search. Empty lists mean "no restriction" for that field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Only these documents.
    #[serde(default)]
    pub doc_ids: Vec<DocumentId>,
    /// Only documents readable by at least one of these groups (`all` is readable by anyone).
    /// `None` means the caller may read everything (admin, local CLI).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Only documents with at least one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only documents effective on or after this day (documents without a date are left out).
    #[serde(default)]
    pub effective_from: Option<NaiveDate>,
    /// Only documents effective on or before this day (documents without a date are left out).
    #[serde(default)]
    pub effective_to: Option<NaiveDate>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: Uuid,
    /// Cosine similarity in [-1, 1].
    pub score: f32,
    pub payload: ChunkPayload,
}

#[async_trait]
pub trait VectorIndex: Send + Sync + Debug {
    /// Create the collection if missing; fail with [`IndexError::DimensionMismatch`] if it
    /// exists with other dimensions.
    async fn ensure(&self, dims: usize) -> Result<(), IndexError>;

    /// Insert or replace points (idempotent by id).
    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<(), IndexError>;

    /// Top `k` points by cosine similarity that pass `filter`, best first.
    async fn search(
        &self,
        query: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Hit>, IndexError>;

    /// Remove points by id (missing ids are ignored).
    async fn delete_points(&self, ids: &[Uuid]) -> Result<(), IndexError>;

    /// Remove every point of a document.
    async fn delete_document(&self, id: &DocumentId) -> Result<(), IndexError>;

    /// Every point id in the index (for consistency checks).
    async fn point_ids(&self) -> Result<Vec<Uuid>, IndexError>;

    /// Number of points.
    async fn count(&self) -> Result<u64, IndexError>;

    /// Build search structures after a bulk load (a no-op where the backend does it itself).
    async fn optimize(&self) -> Result<(), IndexError>;
}
