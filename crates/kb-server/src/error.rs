//! HTTP errors: one JSON shape, `{"error": {"code", "message"}}`, with stable snake_case codes.

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
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the engine answered with an error")]
    Upstream(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the stable code.
    pub fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::DocumentNotFound(_) => (StatusCode::NOT_FOUND, "document_not_found"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
            Self::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
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
            Self::Internal(detail) | Self::Upstream(detail) => {
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
        match e {
            ModelError::Transient {
                retry_after,
                message,
            }
            | ModelError::RateLimited {
                retry_after,
                message,
            } => Self::Unavailable {
                message: format!("the engine is unavailable, try again later ({message})"),
                retry_after,
            },
            ModelError::ContextLengthExceeded(m) => Self::InvalidRequest(format!(
                "the question and sources are too long for the model: {m}"
            )),
            ModelError::InvalidRequest(m) | ModelError::Permanent(m) => Self::Upstream(m),
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Unavailable(m) | IndexError::Locked(m) => Self::Unavailable {
                message: format!("the vector index is unavailable ({m})"),
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
            | IngestError::Pacing(_) => Self::InvalidRequest(e.to_string()),
        }
    }
}
