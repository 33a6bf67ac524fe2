//! HTTP errors: one JSON shape, `{"error": {"code", "message"}}`, with stable snake_case codes.
//!
//! What a dependency said when it failed (an engine's response body, a Qdrant status, endpoint
//! names, attempt counts) is logged, never sent: a caller gets a stable message per kind of
//! failure ([`UpstreamFailure`]), so an engine cannot pass text through kb to its callers.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kb_answer::AnswerError;
use kb_core::{CatalogError, IndexError, KeyStoreError, ModelError};
use kb_ingest::IngestError;
use serde_json::json;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing, invalid or revoked API key; send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("this route needs an admin key")]
    Forbidden,
    /// Allowed to call the route, but not to do this (e.g. ingest outside `ingest.roots`);
    /// the message says what to do instead.
    #[error("{0}")]
    Refused(String),
    #[error("too many requests for this key; retry after {} s", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("the request body is over the server's limit (server.max_body_bytes)")]
    PayloadTooLarge,
    #[error("no document with id {0}")]
    DocumentNotFound(String),
    #[error("no such route")]
    NotFound,
    #[error("the request took longer than the server allows (server.request_timeout_secs)")]
    Timeout,
    /// kb itself says why it cannot serve (e.g. `/readyz`); `message` is sent as is.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The engine or the index failed. The response carries `failure`'s stable message; the
    /// cause as the dependency worded it, `detail`, goes to the log only.
    #[error("{failure}")]
    Upstream {
        failure: UpstreamFailure,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// The `Host` header names another server: refused on a loopback listener, where only a
    /// DNS-rebinding page would send it ([`crate::host`]).
    #[error(
        "the Host header does not name this server; a server on a loopback address answers \
         requests for localhost, 127.0.0.1 or [::1] only"
    )]
    MisdirectedRequest,
    #[error("internal error")]
    Internal(String),
}

/// What went wrong upstream, worded for callers: never the dependency's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamFailure {
    #[error("the engine is unavailable; try again later")]
    EngineUnavailable,
    #[error("the engine is rate limited; try again later")]
    EngineRateLimited,
    #[error("the engine stream was interrupted: the answer is incomplete; ask again")]
    EngineInterrupted,
    #[error("the engine refused the request")]
    EngineRefused,
    #[error("the engine answered with an error")]
    EngineFailed,
    #[error("the vector index is unavailable; try again later")]
    IndexUnavailable,
}

impl UpstreamFailure {
    /// Whether a later retry may succeed (503 with `Retry-After`), else 502.
    fn is_transient(self) -> bool {
        match self {
            Self::EngineUnavailable
            | Self::EngineRateLimited
            | Self::EngineInterrupted
            | Self::IndexUnavailable => true,
            Self::EngineRefused | Self::EngineFailed => false,
        }
    }
}

impl ApiError {
    /// The HTTP status and the stable code.
    pub fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden | Self::Refused(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::DocumentNotFound(_) => (StatusCode::NOT_FOUND, "document_not_found"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
            Self::Upstream { failure, .. } if failure.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable")
            }
            Self::Upstream { .. } => (StatusCode::BAD_GATEWAY, "upstream_error"),
            Self::MisdirectedRequest => (StatusCode::MISDIRECTED_REQUEST, "misdirected_request"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl ApiError {
    /// The JSON error body, also sent as the data of an SSE `error` event.
    pub fn to_json_body(&self) -> serde_json::Value {
        let (_, code) = self.parts();
        json!({"error": {"code": code, "message": self.to_string()}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        match &self {
            Self::Internal(detail) => {
                tracing::error!(code, error = %detail, "request failed");
            }
            Self::Upstream {
                failure, detail, ..
            } if failure.is_transient() => {
                tracing::warn!(code, error = %detail, "request failed");
            }
            Self::Upstream { detail, .. } => {
                tracing::error!(code, error = %detail, "request failed");
            }
            Self::Unavailable { message, .. } => {
                tracing::warn!(code, error = %message, "request failed");
            }
            _ => {}
        }
        let body = Json(self.to_json_body());
        let mut response = (status, body).into_response();
        let retry_after = match &self {
            Self::Unavailable { retry_after, .. } => Some(retry_after.unwrap_or(DEFAULT_RETRY)),
            Self::Upstream {
                failure,
                retry_after,
                ..
            } if failure.is_transient() => Some(retry_after.unwrap_or(DEFAULT_RETRY)),
            // Rounded up: retrying at the floor would be refused again.
            Self::RateLimited { retry_after } => {
                Some(Duration::from_secs(retry_after.as_secs_f64().ceil() as u64))
            }
            _ => None,
        };
        if let Some(wait) = retry_after {
            let secs = wait.as_secs().max(1);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("BUG: digits are a header value"),
            );
        }
        if let Self::Unauthorized = &self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Retry-After of a 503 when the cause named no wait.
const DEFAULT_RETRY: Duration = Duration::from_secs(5);

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
        let (failure, retry_after) = match &e {
            ModelError::Transient {
                message,
                retry_after,
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
            // The caller can fix this one, so it is theirs (400), in kb's words.
            ModelError::ContextLengthExceeded(_) => {
                return Self::InvalidRequest(
                    "the question and its sources are too long for the model; shorten the \
                     question or the conversation, or lower top_k"
                        .into(),
                );
            }
            ModelError::InvalidRequest(_) => (UpstreamFailure::EngineRefused, None),
            ModelError::Permanent(_) => (UpstreamFailure::EngineFailed, None),
        };
        Self::Upstream {
            failure,
            detail: e.to_string(),
            retry_after,
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Unavailable(_) | IndexError::Locked(_) => Self::Upstream {
                failure: UpstreamFailure::IndexUnavailable,
                detail: e.to_string(),
                retry_after: None,
            },
            IndexError::DimensionMismatch { .. } | IndexError::Other(_) => {
                Self::Internal(e.to_string())
            }
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<AnswerError> for ApiError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::InvalidRequest(m) => Self::InvalidRequest(m),
            AnswerError::Embedding(m) | AnswerError::Chat(m) => m.into(),
            AnswerError::Index(i) => i.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Catalog(c) => c.into(),
            IngestError::Index(i) => i.into(),
            IngestError::Model(m) => m.into(),
            IngestError::NotFound { .. }
            | IngestError::ModelChanged { .. }
            | IngestError::Split(_)
            | IngestError::Pacing(_)
            | IngestError::EmptyGroups { .. } => Self::InvalidRequest(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &str = "SECRET-ENGINE-BODY-7f3a";

    fn body_of(error: ApiError) -> (StatusCode, Option<String>, String) {
        let body = error.to_json_body().to_string();
        let response = error.into_response();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), retry_after, body)
    }

    #[test]
    fn no_model_error_passes_the_engines_words_to_the_caller() {
        // Arrange
        let said = || format!("engine endpoint primary: http 503: {MARKER}");
        let errors = [
            ModelError::Transient {
                message: said(),
                retry_after: None,
            },
            ModelError::RateLimited {
                message: said(),
                retry_after: Some(Duration::from_secs(3)),
            },
            ModelError::ContextLengthExceeded(said()),
            ModelError::InvalidRequest(said()),
            ModelError::Permanent(said()),
        ];

        for error in errors {
            // Act
            let (status, _, body) = body_of(ApiError::from(error));

            // Assert
            assert!(!body.contains(MARKER), "{status}: {body}");
            assert!(!body.contains("primary"), "{status}: {body}");
        }
    }

    #[test]
    fn engine_failures_map_to_stable_codes_and_statuses() {
        // Act
        let unavailable = body_of(
            ModelError::Transient {
                message: MARKER.into(),
                retry_after: None,
            }
            .into(),
        );
        let limited = body_of(
            ModelError::RateLimited {
                message: MARKER.into(),
                retry_after: Some(Duration::from_secs(3)),
            }
            .into(),
        );
        let refused = body_of(ModelError::InvalidRequest(MARKER.into()).into());
        let too_long = body_of(ModelError::ContextLengthExceeded(MARKER.into()).into());

        // Assert
        assert_eq!(unavailable.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.1.as_deref(), Some("5"), "default wait");
        assert!(
            unavailable.2.contains("upstream_unavailable"),
            "{}",
            unavailable.2
        );
        assert_eq!(limited.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(limited.1.as_deref(), Some("3"), "the engine's wait");
        assert_eq!(refused.0, StatusCode::BAD_GATEWAY);
        assert!(
            refused.2.contains("the engine refused the request"),
            "{}",
            refused.2
        );
        assert_eq!(too_long.0, StatusCode::BAD_REQUEST);
        assert!(too_long.2.contains("top_k"), "{}", too_long.2);
    }

    #[test]
    fn an_interrupted_stream_says_the_answer_is_incomplete() {
        // Arrange
        let cut = ModelError::Transient {
            message: kb_engine::INTERRUPTED.to_owned(),
            retry_after: None,
        };

        // Act
        let error = ApiError::from(cut);

        // Assert
        assert_eq!(error.parts().1, "upstream_unavailable");
        assert!(error.to_string().contains("incomplete"), "{error}");
    }

    #[test]
    fn index_errors_keep_the_index_words_out_of_the_response() {
        // Act
        let (status, retry_after, body) =
            body_of(IndexError::Unavailable(format!("grpc status: {MARKER}")).into());

        // Assert
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after.is_some());
        assert!(!body.contains(MARKER), "{body}");
        assert!(body.contains("vector index"), "{body}");
    }
}
