//! [`ErrorCode`]: every stable code kb's API answers with, its HTTP status and what it means.
//! Responses serialise it ([`super::ErrorBody`], the OpenAI facade's `code`) and the OpenAPI
//! document lists it ([`PartialSchema`]), both from the one table below.

use axum::http::StatusCode;
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// Declares [`ErrorCode`] from one row per code: variant, code, status, description.
macro_rules! error_codes {
    ($($variant:ident => $code:literal, $status:ident, $description:literal;)+) => {
        /// A stable, snake_case error code: the `code` of every error body kb sends.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $description] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order the API document lists them.
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            /// The code as responses spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The status of the responses that carry this code.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(Self::$variant => StatusCode::$status,)+
                }
            }

            /// What the code means, for the API document.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => $description,)+
                }
            }
        }
    };
}

error_codes! {
    InvalidRequest => "invalid_request", BAD_REQUEST,
        "The body or a parameter is malformed or out of range; the message names the field.";
    Unauthorized => "unauthorized", UNAUTHORIZED,
        "No API key, or an unknown or revoked one.";
    Forbidden => "forbidden", FORBIDDEN,
        "The key may not do this: a reader key on an admin route, or an ingest the server's \
         `ingest.roots` do not allow.";
    DocumentNotFound => "document_not_found", NOT_FOUND,
        "No document has this id, or none the key may read (the same answer for both).";
    ChunkNotFound => "chunk_not_found", NOT_FOUND,
        "The document has no chunk with this number.";
    NotFound => "not_found", NOT_FOUND,
        "No such route.";
    ModelNotFound => "model_not_found", NOT_FOUND,
        "The OpenAI-compatible facade was asked for a model other than `kb` (OpenAI-style body).";
    RequestTimeout => "request_timeout", REQUEST_TIMEOUT,
        "The request took longer than the server allows (`server.request_timeout_secs`).";
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE,
        "The body is over the server's limit (`server.max_body_bytes`).";
    MisdirectedRequest => "misdirected_request", MISDIRECTED_REQUEST,
        "The `Host` header names another server: a server on a loopback address answers \
         requests for its own names only.";
    RateLimited => "rate_limited", TOO_MANY_REQUESTS,
        "Too many requests for this key; `Retry-After` says when to try again.";
    InternalError => "internal_error", INTERNAL_SERVER_ERROR,
        "kb failed; the server's log says why.";
    UpstreamError => "upstream_error", BAD_GATEWAY,
        "The engine refused the request or answered with an error; retrying will not help.";
    UpstreamUnavailable => "upstream_unavailable", SERVICE_UNAVAILABLE,
        "The engine or the vector index is unavailable, or the server is not ready; \
         `Retry-After` says when to try again.";
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A string schema enumerating [`ErrorCode::ALL`], each described with its status.
impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<String> = Self::ALL
            .iter()
            .map(|code| {
                format!(
                    "- `{}` ({}): {}",
                    code.as_str(),
                    code.status().as_u16(),
                    code.description()
                )
            })
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Self::ALL.iter().map(|code| code.as_str())))
            .description(Some(format!(
                "Stable snake_case error code, and the HTTP status it comes with:\n{}",
                codes.join("\n")
            )))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}
