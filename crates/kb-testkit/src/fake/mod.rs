//! The fake OpenAI-compatible engine: an axum server on loopback with switchable faults.
//!
//! The rooms: `builder` holds the options and starts the server; `state` what the engine
//! counts, records and is told to do; `routes` the three endpoints; `faults` the faults that
//! answer before a route does its work; `stream` streamed and spoiled bodies; `errors` the
//! OpenAI-style error answers. This module holds [`FakeEngine`], the handle tests hold.

mod builder;
mod errors;
mod faults;
mod routes;
mod state;
mod stream;

#[cfg(test)]
mod tests;

pub use builder::FakeEngineBuilder;
pub use state::EmbeddingRequest;

use crate::fault::{Fault, Route};
use serde_json::Value;
use state::Shared;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A fake OpenAI-compatible engine on loopback; stops when dropped.
///
/// Counters count every request a route received, including refused and faulted ones.
#[derive(Debug)]
pub struct FakeEngine {
    state: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl FakeEngine {
    /// Start with the default options (384 dimensions, no API key required).
    pub async fn start() -> FakeEngine {
        FakeEngineBuilder::default().start().await
    }

    /// Options other than the defaults.
    pub fn builder() -> FakeEngineBuilder {
        FakeEngineBuilder::default()
    }

    /// `http://127.0.0.1:PORT/v1`, the value for an endpoint's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The socket address the engine listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queue a one-shot fault: the next request on `route` gets it (faults are used in order).
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.state.lock().queues[route.index()].push_back(fault);
    }

    /// From now on, each request on `route` with no queued fault gets `fault` with probability
    /// `rate` (clamped to 0..=1; 0 turns the mode off).
    pub fn set_failure_rate(&self, route: Route, rate: f64, fault: Fault) {
        let rate = rate.clamp(0.0, 1.0);
        self.state.lock().rates[route.index()] = (rate > 0.0).then_some((rate, fault));
    }

    /// Drop every queued fault and failure rate, on both routes.
    pub fn clear_faults(&self) {
        let mut m = self.state.lock();
        m.queues.iter_mut().for_each(VecDeque::clear);
        m.rates = [None, None];
    }

    /// Answer every chat request with this text instead of the extractive answer (`None` to go
    /// back), e.g. to test an answer citing a source that does not exist.
    pub fn set_chat_reply(&self, reply: Option<String>) {
        self.state.lock().chat_reply = reply;
    }

    /// Play a model that quotes and cites source `[n]` only (default `[1]`; see
    /// [`fake_answer_citing`](crate::fake_answer_citing)), e.g. to test that an answer lists
    /// exactly the sources it cites when several were retrieved.
    pub fn set_cited_source(&self, n: u32) {
        self.state.lock().cited_source = n;
    }

    /// Play a model that gets its citation wrong: it quotes source `[n]` of
    /// [`set_cited_source`](Self::set_cited_source) but writes `[wrong]` after it (`None`:
    /// cite what it quotes again).
    pub fn set_miscited_as(&self, wrong: Option<u32>) {
        self.state.lock().miscited_as = wrong;
    }

    /// Play a model that obeys instructions planted in its sources (see
    /// [`obedient_answer`](crate::obedient_answer)): when a message holds one, the answer is
    /// what it asks for; otherwise the usual answer.
    pub fn set_obey_injections(&self, obey: bool) {
        self.state.lock().obey_injections = obey;
    }

    /// Answer the next chat request with this text (one-shot replies are used in order, before
    /// [`set_chat_reply`](Self::set_chat_reply)'s and the extractive answer), e.g. to play a
    /// model that rewrites a follow-up question.
    pub fn push_chat_reply(&self, reply: impl Into<String>) {
        self.state.lock().next_chat_replies.push_back(reply.into());
    }

    /// Change the length of the embeddings returned from now on.
    pub fn set_dimensions(&self, dimensions: usize) {
        self.state.lock().dimensions = dimensions;
    }

    /// Pause between streamed chunks (default none), to watch an answer arrive piece by piece.
    pub fn set_stream_chunk_delay(&self, delay: Duration) {
        self.state.lock().chunk_delay = delay;
    }

    /// Requests received on `route` since start or the last [`reset_counters`](Self::reset_counters).
    pub fn calls(&self, route: Route) -> usize {
        self.state.calls[route.index()].load(Ordering::SeqCst)
    }

    /// Inputs embedded and answered with success since start or the last reset.
    pub fn embedded_inputs(&self) -> usize {
        self.state.embedded_inputs.load(Ordering::SeqCst)
    }

    /// Body chunks of streamed responses handed to the connection (SSE frames of a chat stream).
    pub fn streamed_chunks(&self) -> usize {
        self.state.streamed_chunks.load(Ordering::SeqCst)
    }

    /// Streamed responses whose client went away before the last chunk.
    pub fn abandoned_streams(&self) -> usize {
        self.state.abandoned_streams.load(Ordering::SeqCst)
    }

    /// Set the call and input counters back to zero, and forget the embedding requests seen.
    pub fn reset_counters(&self) {
        self.state
            .calls
            .iter()
            .for_each(|c| c.store(0, Ordering::SeqCst));
        self.state.embedded_inputs.store(0, Ordering::SeqCst);
        self.state.max_in_flight.store(0, Ordering::SeqCst);
        self.state.lock().embedding_log.clear();
    }

    /// Answer every embedding request only after this long (default none), so that requests
    /// overlap and [`max_embeddings_in_flight`](Self::max_embeddings_in_flight) shows how many
    /// a client sends at once. Applies together with any fault.
    pub fn set_embedding_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Every embedding request with a valid body, in the order they arrived, with whether it was
    /// answered with embeddings (`false`: a fault answered it).
    pub fn embedding_requests(&self) -> Vec<EmbeddingRequest> {
        self.state.lock().embedding_log.clone()
    }

    /// The most embedding requests that were being served at the same moment.
    pub fn max_embeddings_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Body of the last request on `route` that was valid JSON.
    pub fn last_request(&self, route: Route) -> Option<Value> {
        self.state.lock().last_requests[route.index()].clone()
    }

    /// Bodies of every request on `route` that was valid JSON, oldest first.
    pub fn requests(&self, route: Route) -> Vec<Value> {
        self.state.lock().requests[route.index()].clone()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
