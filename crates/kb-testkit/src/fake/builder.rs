//! Options of the fake engine, and starting it on loopback.

use axum::Router;
use axum::routing::{get, post};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::FakeEngine;
use super::routes::{chat_completions, embeddings, models};
use super::state::{Mutable, Shared};

/// Options for [`FakeEngine`]; start it with [`FakeEngineBuilder::start`].
#[derive(Debug, Clone)]
pub struct FakeEngineBuilder {
    dimensions: usize,
    required_api_key: Option<String>,
    embed_model: String,
    chat_model: String,
    reverse_embedding_order: bool,
    seed: u64,
    port: u16,
}

impl Default for FakeEngineBuilder {
    fn default() -> Self {
        Self {
            dimensions: 384,
            required_api_key: None,
            embed_model: "fake-embed".to_owned(),
            chat_model: "fake-chat".to_owned(),
            reverse_embedding_order: false,
            seed: 0,
            port: 0,
        }
    }
}

impl FakeEngineBuilder {
    /// Length of the embeddings (default 384); can be changed later with
    /// [`FakeEngine::set_dimensions`].
    pub fn dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = dimensions;
        self
    }

    /// Answer `401` unless the request carries `Authorization: Bearer {key}`.
    pub fn required_api_key(mut self, key: impl Into<String>) -> Self {
        self.required_api_key = Some(key.into());
        self
    }

    /// Model name listed by `/v1/models` for embeddings (default `fake-embed`).
    pub fn embed_model(mut self, model: impl Into<String>) -> Self {
        self.embed_model = model.into();
        self
    }

    /// Model name listed by `/v1/models` for chat (default `fake-chat`).
    pub fn chat_model(mut self, model: impl Into<String>) -> Self {
        self.chat_model = model.into();
        self
    }

    /// List embeddings in reverse order (each keeps its right `index`), as some gateways do.
    pub fn reverse_embedding_order(mut self, reverse: bool) -> Self {
        self.reverse_embedding_order = reverse;
        self
    }

    /// Seed of the random draws behind [`FakeEngine::set_failure_rate`] (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Listen on this loopback port (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Bind `127.0.0.1:PORT` and serve until the returned engine is dropped.
    ///
    /// # Panics
    /// When the loopback port cannot be bound (taken, or a broken test machine).
    pub async fn start(self) -> FakeEngine {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("fake engine: could not bind 127.0.0.1:{}: {e}", self.port));
        let addr = listener
            .local_addr()
            .expect("BUG: a bound listener has a local address");
        let shutdown = CancellationToken::new();
        let state = Arc::new(Shared {
            embed_model: self.embed_model,
            chat_model: self.chat_model,
            required_api_key: self.required_api_key,
            reverse_embedding_order: self.reverse_embedding_order,
            shutdown: shutdown.clone(),
            calls: [AtomicUsize::new(0), AtomicUsize::new(0)],
            embedded_inputs: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            streamed_chunks: AtomicUsize::new(0),
            abandoned_streams: AtomicUsize::new(0),
            mutable: Mutex::new(Mutable {
                dimensions: self.dimensions,
                chat_reply: None,
                cited_source: 1,
                miscited_as: None,
                obey_injections: false,
                next_chat_replies: VecDeque::new(),
                requests: [Vec::new(), Vec::new()],
                chunk_delay: Duration::ZERO,
                queues: [VecDeque::new(), VecDeque::new()],
                rates: [None, None],
                rng: StdRng::seed_from_u64(self.seed),
                last_requests: [None, None],
                latency: Duration::ZERO,
                embedding_log: Vec::new(),
            }),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .with_state(state.clone());
        let signal = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!(%error, "fake engine stopped with an error");
            }
        });
        tracing::debug!(%addr, "fake engine started");
        FakeEngine {
            state,
            addr,
            shutdown,
        }
    }
}
