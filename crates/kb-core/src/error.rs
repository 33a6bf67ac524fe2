//! Error enums at the boundaries, classified by what the caller can do about them.
//!
//! Each message describes kb's own layer ("catalog database error: cannot open kb.db"); what
//! the dependency said (sqlx, qdrant, reqwest, ...) travels as the error's
//! [`source`](std::error::Error::source), attached by the constructors that take a `cause`
//! (or by [`ModelError::with_source`]). Show an error to a person with [`chain`], which names
//! every cause once.

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// A dependency's error, kept as the cause of a boundary error.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// An embedding or chat model failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Worth retrying later (5xx, timeout, connection reset, cut stream).
    #[error("model temporarily unavailable: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
        #[source]
        source: Option<BoxError>,
    },
    /// The engine said 429.
    #[error("model rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
        #[source]
        source: Option<BoxError>,
    },
    /// The input does not fit the model; retrying will not help.
    #[error("input too long for the model: {message}")]
    ContextLengthExceeded {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The engine rejected the request (400-class); retrying will not help.
    #[error("model rejected the request: {message}")]
    InvalidRequest {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Authentication failed (401/403) or the engine answered something unusable.
    #[error("model error: {message}")]
    Permanent {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl ModelError {
    pub fn transient(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after,
            source: None,
        }
    }

    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::RateLimited {
            message: message.into(),
            retry_after,
            source: None,
        }
    }

    pub fn context_length_exceeded(message: impl Into<String>) -> Self {
        Self::ContextLengthExceeded {
            message: message.into(),
            source: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            source: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
            source: None,
        }
    }

    /// The same error, caused by `cause` (what the dependency said).
    pub fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        match &mut self {
            Self::Transient { source, .. }
            | Self::RateLimited { source, .. }
            | Self::ContextLengthExceeded { source, .. }
            | Self::InvalidRequest { source, .. }
            | Self::Permanent { source, .. } => *source = Some(cause.into()),
        }
        self
    }

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
    #[error("vector index unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error(
        "vector index is locked by another process ({0}); stop it, or send the command to the running server"
    )]
    Locked(String),
    #[error(
        "vector index holds {found}-dimensional vectors but the embedder makes {expected}; run `kb reindex` after changing the embedding model"
    )]
    DimensionMismatch { expected: usize, found: usize },
    #[error("vector index error: {message}")]
    Other {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl IndexError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::Other {
            message: message.into(),
            source: None,
        }
    }

    /// `message` (what kb was doing), caused by `cause` (what the index engine said).
    pub fn unavailable_because(message: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(cause.into()),
        }
    }

    /// `message` (what kb was doing), caused by `cause` (what the index engine said).
    pub fn other_because(message: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Other {
            message: message.into(),
            source: Some(cause.into()),
        }
    }
}

/// The catalog (SQLite) failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {message}")]
    Database {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("catalog migration failed")]
    Migration(#[source] BoxError),
    #[error("catalog data is inconsistent: {message}")]
    Corrupt {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl CatalogError {
    /// The database failed while kb was doing `what` (`"cannot open kb.db"`).
    pub fn database(what: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Database {
            message: what.into(),
            source: Some(cause.into()),
        }
    }

    /// A database operation kb refused without asking the database (a missing row).
    pub fn database_refused(message: impl Into<String>) -> Self {
        Self::Database {
            message: message.into(),
            source: None,
        }
    }

    pub fn migration(cause: impl Into<BoxError>) -> Self {
        Self::Migration(cause.into())
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt {
            message: message.into(),
            source: None,
        }
    }

    /// Stored data kb cannot read: `message` names it, `cause` is the parser's complaint.
    pub fn corrupt_because(message: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Corrupt {
            message: message.into(),
            source: Some(cause.into()),
        }
    }
}

/// An error and each of its causes, `: `-separated (`a: b: c`), for a person or a log line.
///
/// A cause whose text the layer above already shows (some dependencies repeat their source
/// in their own message) is left out, so each cause is named once.
pub fn chain<'a>(error: &'a (dyn Error + 'static)) -> Chain<'a> {
    Chain(error)
}

/// What [`chain`] returns: displays the error and its causes.
#[derive(Clone, Copy)]
pub struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_error_is_the_source_and_the_chain_names_it_once() {
        // Arrange
        let io = std::io::Error::other("disk I/O error");

        // Act
        let error = CatalogError::database("cannot open kb.db", io);

        // Assert
        let source = error.source().expect("the dependency error is the source");
        assert_eq!(source.to_string(), "disk I/O error");
        assert_eq!(
            error.to_string(),
            "catalog database error: cannot open kb.db"
        );
        assert_eq!(
            chain(&error).to_string(),
            "catalog database error: cannot open kb.db: disk I/O error"
        );
    }

    #[test]
    fn with_source_keeps_the_classification() {
        // Act
        let error = ModelError::transient("engine endpoint primary", None)
            .with_source(std::io::Error::other("connection refused"));

        // Assert
        assert!(error.is_retryable());
        assert_eq!(
            chain(&error).to_string(),
            "model temporarily unavailable: engine endpoint primary: connection refused"
        );
    }

    #[test]
    fn a_cause_the_layer_above_already_shows_is_not_repeated() {
        // Arrange: a wrapper that embeds its source in its own message.
        #[derive(Debug, thiserror::Error)]
        #[error("reading: {0}")]
        struct Repeats(#[source] std::io::Error);
        let error =
            IndexError::other_because("cannot load index", Repeats(std::io::Error::other("gone")));

        // Act
        let text = chain(&error).to_string();

        // Assert
        assert_eq!(text, "vector index error: cannot load index: reading: gone");
    }
}
