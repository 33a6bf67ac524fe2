//! Client of OpenAI-compatible engines (vLLM, TEI, llama.cpp server, OpenAI, gateways):
//! embeddings, chat completions and SSE streaming, behind kb-core's [`Embedder`] and
//! [`ChatModel`] traits.
//!
//! One [`EngineClient`] holds every configured endpoint and key. Each call picks a route
//! (endpoint × key) among the eligible ones (serving the model kind, key not refused, not
//! cooling down, circuit breaker not open, client-side budget left), preferring the fewest
//! requests in flight relative to the endpoint's weight, ties by weighted round-robin. It
//! classifies what went wrong into [`ModelError`], and retries with backoff and failover:
//!
//! | engine answer | error | what the client does |
//! |---|---|---|
//! | 429 | `RateLimited` | route rests for `Retry-After` (or the backoff); retry elsewhere |
//! | 5xx, 408, timeout, connection error, malformed body | `Transient` | route rests for the backoff; retry elsewhere; counts against the endpoint's breaker |
//! | 401, 403 | `Permanent` | key disabled until restart (logged once, at error); try another key |
//! | 4xx mentioning the context length | `ContextLengthExceeded` | returned at once |
//! | other 4xx | `InvalidRequest` | returned at once |
//! | vectors of the wrong length | `Permanent` | try the other endpoints (never this one again in the call); counts against the breaker |
//!
//! An endpoint with `engine.breaker.failures` consecutive failures is opened by its circuit
//! breaker: no calls for `engine.breaker.cooldown_ms`, then one call probes it (success closes
//! the breaker, failure opens it again); each change is logged at warn. Endpoints may have
//! client-side budgets (`requests_per_minute`, `tokens_per_minute`): a call over budget goes
//! to another endpoint, or waits within its deadline.
//!
//! When every attempt failed, the last `RateLimited`/`Transient` error is returned with
//! `retry_after` set to when a route is free again, for a `503` with `Retry-After`; when only
//! endpoints with an open breaker are left, at once.
//!
//! Each attempt emits one `engine call` event (endpoint, model, kind, tokens, latency, outcome)
//! inside an `engine.embed` / `engine.chat` span, adds to [`EngineClient::stats`], and hands a
//! [`CallRecord`] to the [`UsageRecorder`] set with [`EngineClient::with_recorder`]. API keys
//! never appear in `Debug`, serialised settings, logs, errors or records.
//!
//! # Modules
//! Imports point one way: from the adapters to the client, from the client to its parts, and
//! from there to the leaves.
//!
//! ```text
//! chat, embed      ChatModel / Embedder adapters     → client, client::{attempt, classify, wire}, kind, tokens
//! client           EngineClient, the retry loop      → client::{attempt, route, meter, classify}, config, error, kind, usage, clock
//! client::attempt  one request on one route, ended   → client::{route, meter, classify}, kind, usage, clock
//! client::route    endpoints × keys, the next route  → client::{breaker, budget, classify}, config, kind, clock
//! client::meter    counters, the usage recorder      → usage
//! client::breaker  one endpoint's circuit breaker    → client::classify
//! usage            CallRecord, UsageRecorder         → kind
//! config           the [engine] settings             → error
//! client::{classify, budget, wire}, kind, tokens, clock, error: no imports from the crate
//! ```
//!
//! [`Embedder`]: kb_core::Embedder
//! [`ChatModel`]: kb_core::ChatModel
//! [`ModelError`]: kb_core::ModelError

mod chat;
mod client;
mod clock;
mod config;
mod embed;
mod error;
mod kind;
mod tokens;
mod usage;

pub use chat::{INTERRUPTED, RemoteChat};
pub use client::{CircuitState, EndpointHealth, EngineClient, EngineStats};
pub use config::{
    BreakerConfig, EndpointConfig, EngineConfig, REDACTED, RetryConfig, TimeoutConfig,
};
pub use embed::{RemoteEmbedder, RemoteEmbedderOptions};
pub use error::EngineError;
pub use kind::ModelKind;
pub use tokens::estimate_tokens;
pub use usage::{CallRecord, FanOut, MemoryRecorder, UsageRecorder};
