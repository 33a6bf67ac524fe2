//! Test helpers for kb (a dev-dependency only).
//!
//! The main piece is [`FakeEngine`]: an OpenAI-compatible engine on `127.0.0.1:0` that serves
//! `/v1/embeddings`, `/v1/chat/completions` (plain and SSE) and `/v1/models`, deterministically,
//! and that misbehaves on request ([`Fault`]) so that retries, failover and stream handling can
//! be tested without a real model.
//!
//! ```no_run
//! # async fn demo() {
//! use kb_testkit::{FakeEngine, Fault, Route};
//!
//! let engine = FakeEngine::builder().dimensions(8).start().await;
//! engine.push_fault(Route::Embeddings, Fault::Status(503));
//! let base_url = engine.base_url(); // "http://127.0.0.1:PORT/v1"
//! # let _ = base_url;
//! # }
//! ```
//!
//! The deterministic "models" are exposed as plain functions too ([`fake_embedding`],
//! [`fake_answer`]) so that tests can compute what the engine will answer.
//!
//! [`memory`] holds in-memory adapters of kb-core's traits (catalog, index, embedder) for tests
//! that need no engine, database or index on disk, with a [`memory::FaultPlan`] that fails a
//! chosen write.

mod fake;
mod fault;
mod logs;
pub mod memory;
mod text;

pub use fake::{EmbeddingRequest, FakeEngine, FakeEngineBuilder};
pub use fault::{Fault, Route};
pub use logs::{CaptureGuard, CapturedLogs};
pub use text::{
    PromptSource, fake_answer, fake_answer_citing, fake_embedding, obedient_answer, prompt_sources,
    word_count,
};
