//! What each lower layer's failure tells the caller: every domain error is matched
//! exhaustively, and a failure the caller cannot fix stays the [`ApiError`]'s source.

use super::{ApiError, Cause, UpstreamFailure};
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use kb_answer::AnswerError;
use kb_core::{CatalogError, IndexError, KeyStoreError, ModelError};
use kb_ingest::IngestError;
use std::time::Duration;

/// How a failure of the engine or the index is answered, decided before the failure itself is
/// moved into the response as its cause.
enum Verdict {
    Upstream {
        failure: UpstreamFailure,
        retry_after: Option<Duration>,
    },
    Internal,
    /// The caller can fix it: a 400 in kb's words, nothing to log.
    Caller(&'static str),
}

impl Verdict {
    fn of_model(error: &ModelError) -> Self {
        let (failure, retry_after) = match error {
            ModelError::Transient {
                message,
                retry_after,
                ..
            } => {
                let failure = if message.starts_with(kb_engine::INTERRUPTED) {
                    UpstreamFailure::EngineInterrupted
                } else {
                    UpstreamFailure::EngineUnavailable
                };
                (failure, *retry_after)
            }
            ModelError::RateLimited { retry_after, .. } => {
                (UpstreamFailure::EngineRateLimited, *retry_after)
            }
            ModelError::ContextLengthExceeded { .. } => {
                return Self::Caller(
                    "the question and its sources are too long for the model; shorten the \
                     question or the conversation, or lower top_k",
                );
            }
            ModelError::InvalidRequest { .. } => (UpstreamFailure::EngineRefused, None),
            ModelError::Permanent { .. } => (UpstreamFailure::EngineFailed, None),
        };
        Self::Upstream {
            failure,
            retry_after,
        }
    }

    fn of_index(error: &IndexError) -> Self {
        match error {
            IndexError::Unavailable { .. } | IndexError::Locked(_) => Self::Upstream {
                failure: UpstreamFailure::IndexUnavailable,
                retry_after: None,
            },
            IndexError::DimensionMismatch { .. } | IndexError::Other { .. } => Self::Internal,
        }
    }

    /// The response, with `cause` (the failure judged, or an error that wraps it) as source.
    fn caused_by(self, cause: impl Into<Cause>) -> ApiError {
        match self {
            Self::Upstream {
                failure,
                retry_after,
            } => ApiError::Upstream {
                failure,
                cause: cause.into(),
                retry_after,
            },
            Self::Internal => ApiError::Internal(cause.into()),
            Self::Caller(message) => ApiError::InvalidRequest(message.into()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::InvalidRequest(rejection.body_text())
        }
    }
}

impl From<KeyStoreError> for ApiError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Store(c) => c.into(),
            KeyStoreError::NameTaken(_) | KeyStoreError::Invalid(_) => {
                Self::InvalidRequest(e.to_string())
            }
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        Verdict::of_model(&e).caused_by(e)
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        Verdict::of_index(&e).caused_by(e)
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        Self::internal(e)
    }
}

impl From<AnswerError> for ApiError {
    fn from(e: AnswerError) -> Self {
        let verdict = match &e {
            AnswerError::InvalidRequest(m) => return Self::InvalidRequest(m.clone()),
            AnswerError::Embedding(m) | AnswerError::Chat(m) => Verdict::of_model(m),
            AnswerError::Index(i) => Verdict::of_index(i),
        };
        verdict.caused_by(e)
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let verdict = match &e {
            IngestError::Catalog(_) => Verdict::Internal,
            IngestError::Index(i) => Verdict::of_index(i),
            IngestError::Model(m) => Verdict::of_model(m),
            IngestError::NotFound { .. }
            | IngestError::ModelChanged { .. }
            | IngestError::Split(_)
            | IngestError::Pacing(_)
            | IngestError::EmptyGroups { .. } => return Self::InvalidRequest(e.to_string()),
        };
        verdict.caused_by(e)
    }
}
