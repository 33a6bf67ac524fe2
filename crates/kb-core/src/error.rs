//! Error enums at the boundaries, classified by what the caller can do about them.

use std::time::Duration;

/// An embedding or chat model failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Worth retrying later (5xx, timeout, connection reset, cut stream).
    #[error("model temporarily unavailable: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The engine said 429.
    #[error("model rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The input does not fit the model; retrying will not help.
    #[error("input too long for the model: {0}")]
    ContextLengthExceeded(String),
    /// The engine rejected the request (400-class); retrying will not help.
    #[error("model rejected the request: {0}")]
    InvalidRequest(String),
    /// Authentication failed (401/403) or the engine answered something unusable.
    #[error("model error: {0}")]
    Permanent(String),
}

impl ModelError {
    /// Whether a retry (perhaps on another route) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::RateLimited { .. })
    }

    /// How long the engine asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } | Self::RateLimited { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// The vector index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("vector index unavailable: {0}")]
    Unavailable(String),
    #[error(
        "vector index is locked by another process ({0}); stop it, or send the command to the running server"
    )]
    Locked(String),
    #[error(
        "vector index holds {found}-dimensional vectors but the embedder makes {expected}; run `kb reindex` after changing the embedding model"
    )]
    DimensionMismatch { expected: usize, found: usize },
    #[error("vector index error: {0}")]
    Other(String),
}

/// The catalog (SQLite) failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Database(String),
    #[error("catalog migration failed: {0}")]
    Migration(String),
    #[error("catalog data is inconsistent: {0}")]
    Corrupt(String),
}
