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

/// How a search ranks chunks.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Retrieval {
    /// Cosine similarity of the query's embedding to the chunks' embeddings.
    #[default]
    Dense,
    /// BM25 over the chunks' words (a sparse vector per chunk, IDF from the index).
    Sparse,
    /// Dense and sparse candidates fused by reciprocal rank (RRF).
    Hybrid,
}

impl Retrieval {
    pub const ALL: [Self; 3] = [Self::Dense, Self::Sparse, Self::Hybrid];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::Sparse => "sparse",
            Self::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for Retrieval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| {
                format!("unknown retrieval mode {s:?}: expected dense, sparse or hybrid")
            })
    }
}

impl std::fmt::Display for Retrieval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One search: the question both as an embedding (dense) and as text (sparse, from which the
/// index derives its BM25 terms), how to rank, what to restrict to, how many chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchQuery<'a> {
    /// The question's embedding. Needed in every mode: it also yields [`Hit::cosine`].
    pub vector: &'a [f32],
    /// The question's text.
    pub text: &'a str,
    pub retrieval: Retrieval,
    pub filter: &'a Filter,
    pub k: usize,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: Uuid,
    /// The score the search ranked by: cosine similarity (dense), BM25 (sparse) or the RRF
    /// score (hybrid). Comparable only within one search.
    pub score: f32,
    /// Cosine similarity in [-1, 1] of the query's embedding to this chunk's, whatever the
    /// mode: the one score with a fixed scale, so the relevance threshold compares it.
    pub cosine: f32,
    pub payload: ChunkPayload,
}

#[async_trait]
pub trait VectorIndex: Send + Sync + Debug {
    /// Create the collection if missing; fail with [`IndexError::DimensionMismatch`] if it
    /// exists with other dimensions.
    async fn ensure(&self, dims: usize) -> Result<(), IndexError>;

    /// Insert or replace points (idempotent by id). The index derives each point's sparse
    /// (BM25) vector itself, from [`ChunkPayload::indexed_text`].
    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<(), IndexError>;

    /// Top `query.k` points that pass `query.filter`, best first, ranked as
    /// `query.retrieval` says.
    async fn search(&self, query: &SearchQuery<'_>) -> Result<Vec<Hit>, IndexError>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_modes_parse_and_serialize_by_their_lowercase_names() {
        for mode in Retrieval::ALL {
            assert_eq!(mode.as_str().parse::<Retrieval>(), Ok(mode));
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::json!(mode.as_str())
            );
        }
        assert!("Hybrid".parse::<Retrieval>().is_err());
        assert!(serde_json::from_str::<Retrieval>("\"bm25\"").is_err());
    }
}
