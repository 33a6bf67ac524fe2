//! HTTP errors: one JSON shape, `{"error": {"code", "message"}}` ([`ErrorBody`]), with the
//! stable snake_case codes of [`ErrorCode`].
//!
//! What a dependency said when it failed (an engine's response body, a Qdrant status, endpoint
//! names, attempt counts) is logged, never sent: a caller gets a stable message per kind of
//! failure ([`UpstreamFailure`]), so an engine cannot pass text through kb to its callers. The
//! failure itself stays the error's [`source`](std::error::Error::source), and the log line of
//! a 5xx prints the whole chain once.

mod code;
mod convert;
#[cfg(test)]
mod tests;

pub use code::ErrorCode;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::error::Error;
use std::fmt;
use std::time::Duration;
use utoipa::ToSchema;

/// The failure below the HTTP layer that an [`ApiError`] reports: kept for the log, never sent.
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

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
    /// Also the answer to a reader for a document its groups may not read: the same status,
    /// code and message as for a missing one, so the answer never tells that it exists.
    #[error("no document with id {0}")]
    DocumentNotFound(String),
    /// The document exists (and the caller may read it) but has no chunk numbered `n`.
    #[error(
        "document {document} has no chunk {n}; its chunks are numbered from 0 to {}",
        .count.saturating_sub(1)
    )]
    ChunkNotFound {
        document: String,
        n: u32,
        count: u32,
    },
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
    /// failure as the dependency worded it, `cause`, goes to the log only.
    #[error("{failure}")]
    Upstream {
        failure: UpstreamFailure,
        #[source]
        cause: Cause,
        retry_after: Option<Duration>,
    },
    /// The `Host` header names another server: refused on a loopback listener, where only a
    /// DNS-rebinding page would send it ([`crate::host`]).
    #[error(
        "the Host header does not name this server; a server on a loopback address answers \
         requests for localhost, 127.0.0.1 or [::1] only"
    )]
    MisdirectedRequest,
    /// kb failed: the response says no more, the log line names the cause.
    #[error("internal error")]
    Internal(#[source] Cause),
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

/// kb's error body, `{"error": {"code", "message"}}`; also the data of an SSE `error` event.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong and, where the caller can act, what to do; never a dependency's words.
    pub message: String,
}

impl ApiError {
    /// A failure of kb itself (500), `cause` logged.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    /// The stable code, which also fixes the HTTP status ([`ErrorCode::status`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Forbidden | Self::Refused(_) => ErrorCode::Forbidden,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::DocumentNotFound(_) => ErrorCode::DocumentNotFound,
            Self::ChunkNotFound { .. } => ErrorCode::ChunkNotFound,
            Self::NotFound => ErrorCode::NotFound,
            Self::Timeout => ErrorCode::RequestTimeout,
            Self::Unavailable { .. } => ErrorCode::UpstreamUnavailable,
            Self::Upstream { failure, .. } if failure.is_transient() => {
                ErrorCode::UpstreamUnavailable
            }
            Self::Upstream { .. } => ErrorCode::UpstreamError,
            Self::MisdirectedRequest => ErrorCode::MisdirectedRequest,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// The body a caller gets.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        }
    }

    /// The error and each of its causes, for the log: `a: b: c`.
    pub fn chain(&self) -> impl fmt::Display + '_ {
        kb_core::error::chain(self)
    }

    /// How long to wait before retrying, when the response says (`Retry-After`).
    fn retry_after(&self) -> Option<Duration> {
        match self {
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
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        match code {
            ErrorCode::InternalError | ErrorCode::UpstreamError => {
                tracing::error!(code = code.as_str(), error = %self.chain(), "request failed");
            }
            ErrorCode::UpstreamUnavailable => {
                tracing::warn!(code = code.as_str(), error = %self.chain(), "request failed");
            }
            _ => {}
        }
        let mut response = (code.status(), Json(self.body())).into_response();
        if let Some(wait) = self.retry_after() {
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
