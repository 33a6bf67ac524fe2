//! What can stop an evaluation.

use kb_answer::AnswerError;
use kb_core::CatalogError;
use kb_ingest::IngestError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A dataset file is missing or unreadable.
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a dataset file is malformed (`line` counts from 1).
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The dataset as a whole is unusable (e.g. no query has a relevance judgement).
    #[error("{}: {message}", path.display())]
    Dataset { path: PathBuf, message: String },
    /// The scratch folder for the corpus files could not be written.
    #[error("scratch folder {}", path.display())]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ingesting the corpus")]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("query {query_id}")]
    Query {
        query_id: String,
        #[source]
        source: AnswerError,
    },
    #[error("invalid evaluation options: {0}")]
    Options(String),
    #[error("evaluation interrupted")]
    Interrupted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_dataset_names_the_io_error_once() {
        // Arrange
        let io = std::io::Error::other("permission denied");

        // Act
        let error = EvalError::Read {
            path: "queries.jsonl".into(),
            source: io,
        };

        // Assert
        assert!(std::error::Error::source(&error).is_some());
        assert_eq!(
            kb_core::error::chain(&error).to_string(),
            "queries.jsonl: cannot read: permission denied"
        );
    }
}
