//! What the engine shares with its handlers: counters, recorded requests, and what tests
//! told it to do (faults, replies, dimensions, delays).

use crate::fault::{Fault, Route};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::errors::{error_response, unauthorized};

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) embed_model: String,
    pub(super) chat_model: String,
    pub(super) required_api_key: Option<String>,
    pub(super) reverse_embedding_order: bool,
    pub(super) shutdown: CancellationToken,
    pub(super) calls: [AtomicUsize; 2],
    pub(super) embedded_inputs: AtomicUsize,
    /// Embedding requests being served now, and the most there ever were.
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    pub(super) streamed_chunks: AtomicUsize,
    pub(super) abandoned_streams: AtomicUsize,
    pub(super) mutable: Mutex<Mutable>,
}

/// One embedding request as the fake engine saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingRequest {
    /// The `input` texts, in order.
    pub inputs: Vec<String>,
    /// Answered with embeddings (a fault that only delays counts as answered).
    pub succeeded: bool,
}

/// Counts an embedding request as in flight for as long as it lives.
pub(super) struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    pub(super) fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub(super) struct Mutable {
    pub(super) dimensions: usize,
    pub(super) chat_reply: Option<String>,
    pub(super) cited_source: u32,
    pub(super) miscited_as: Option<u32>,
    pub(super) obey_injections: bool,
    pub(super) next_chat_replies: VecDeque<String>,
    pub(super) requests: [Vec<Value>; 2],
    pub(super) chunk_delay: Duration,
    pub(super) queues: [VecDeque<Fault>; 2],
    pub(super) rates: [Option<(f64, Fault)>; 2],
    pub(super) rng: StdRng,
    pub(super) last_requests: [Option<Value>; 2],
    pub(super) latency: Duration,
    pub(super) embedding_log: Vec<EmbeddingRequest>,
}

pub(super) type AppState = Arc<Shared>;

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Mutable> {
        // A panicking test thread must not take the other tests' engine down with it.
        self.mutable.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count the call, parse and record the body, check the key, draw the fault.
    pub(super) fn admit(
        &self,
        route: Route,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(Value, Option<Fault>), Box<Response>> {
        self.calls[route.index()].fetch_add(1, Ordering::SeqCst);
        let request: Value = serde_json::from_slice(body).map_err(|e| {
            Box::new(error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("request body is not JSON: {e}"),
            ))
        })?;
        let mut m = self.lock();
        m.last_requests[route.index()] = Some(request.clone());
        m.requests[route.index()].push(request.clone());
        if let Some(key) = &self.required_api_key {
            let expected = format!("Bearer {key}");
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                return Err(Box::new(unauthorized()));
            }
        }
        let fault = match m.queues[route.index()].pop_front() {
            Some(fault) => Some(fault),
            None => match m.rates[route.index()].clone() {
                Some((rate, fault)) if m.rng.random_bool(rate) => Some(fault),
                _ => None,
            },
        };
        Ok((request, fault))
    }

    pub(super) async fn hang(&self) -> Response {
        self.shutdown.cancelled().await;
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "fake engine shutting down",
        )
    }
}
