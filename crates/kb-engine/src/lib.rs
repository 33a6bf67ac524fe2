//! Client of OpenAI-compatible engines (vLLM, TEI, llama.cpp server, OpenAI, gateways):
//! embeddings, chat completions and SSE streaming, behind kb-core's [`Embedder`] and
//! [`ChatModel`] traits.
//!
//! One [`EngineClient`] holds every configured endpoint and key. Each call picks a route
//! (endpoint × key) by weight, classifies what went wrong into [`ModelError`], and retries
//! with backoff and failover:
//!
//! | engine answer | error | what the client does |
//! |---|---|---|
//! | 429 | `RateLimited` | route rests for `Retry-After` (or the backoff); retry elsewhere |
//! | 5xx, 408, timeout, connection error, malformed body | `Transient` | route rests for the backoff; retry elsewhere |
//! | 401, 403 | `Permanent` | key disabled until restart (logged once); try another key |
//! | 4xx mentioning the context length | `ContextLengthExceeded` | returned at once |
//! | other 4xx | `InvalidRequest` | returned at once |
//! | vectors of the wrong length | `Permanent` | returned at once |
//!
//! When every attempt failed, the last `RateLimited`/`Transient` error is returned with
//! `retry_after` set to when a route is free again, for a `503` with `Retry-After`.
//!
//! Each attempt emits one `engine call` event (endpoint, model, kind, tokens, latency, outcome)
//! inside an `engine.embed` / `engine.chat` span, and adds to [`EngineClient::stats`]. API keys
//! never appear in `Debug`, serialised settings, logs or errors.
//!
//! [`Embedder`]: kb_core::Embedder
//! [`ChatModel`]: kb_core::ChatModel
//! [`ModelError`]: kb_core::ModelError

mod chat;
mod classify;
mod client;
mod config;
mod embed;
mod error;
mod tokens;

pub use chat::{INTERRUPTED, RemoteChat};
pub use client::{EngineClient, EngineStats, ModelKind};
pub use config::{EndpointConfig, EngineConfig, REDACTED, RetryConfig, TimeoutConfig};
pub use embed::{RemoteEmbedder, RemoteEmbedderOptions};
pub use error::EngineError;
pub use tokens::estimate_tokens;
