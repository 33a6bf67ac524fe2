//! Faults that answer a request before its route does any work (errors, a rate limit, a
//! delay, a hang); the others spoil the body later (see `stream`).

use crate::fault::Fault;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::errors::{error_response, unauthorized};
use super::state::AppState;

/// What to do with a request once its fault is known: answer at once, or go on.
pub(super) async fn apply_early_fault(state: &AppState, fault: &Option<Fault>) -> Option<Response> {
    match fault.as_ref()? {
        Fault::RateLimited { retry_after } => {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "fake engine: injected rate limit",
            );
            if let Some(after) = retry_after {
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&secs.to_string()).expect("BUG: digits are a header"),
                );
            }
            Some(response)
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            };
            Some(error_response(
                status,
                kind,
                &format!("fake engine: injected {code}"),
            ))
        }
        Fault::ErrorBody { status, message } => Some(error_response(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "server_error",
            message,
        )),
        Fault::ContextLengthExceeded => Some(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "This model's maximum context length is 512 tokens. However, you requested 913 tokens. \
             Please reduce the length of the input.",
        )),
        Fault::Unauthorized => Some(unauthorized()),
        Fault::Delay(delay) => {
            tokio::time::sleep(*delay).await;
            None
        }
        Fault::Hang => Some(state.hang().await),
        Fault::MalformedJson
        | Fault::CutStream { .. }
        | Fault::StallStream { .. }
        | Fault::WrongDimensions(_) => None,
    }
}
