//! The ways the fake engine can misbehave on purpose.

use std::time::Duration;

/// Which endpoint of the fake engine a fault or a counter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/chat/completions`, plain or streamed.
    Chat,
}

impl Route {
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Embeddings => 0,
            Self::Chat => 1,
        }
    }
}

/// One misbehaviour, applied to one request (queued with [`push_fault`]) or to a random share
/// of requests ([`set_failure_rate`]).
///
/// [`push_fault`]: crate::FakeEngine::push_fault
/// [`set_failure_rate`]: crate::FakeEngine::set_failure_rate
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests`, with `Retry-After` in whole seconds (rounded up) when given.
    RateLimited { retry_after: Option<Duration> },
    /// This status (e.g. 500, 502, 503, 504, or 400) with an OpenAI-style JSON error body.
    Status(u16),
    /// This status with an OpenAI-style JSON error body whose `error.message` is `message`:
    /// words of the engine's own (a marker, a context-length complaint) to follow through kb.
    ErrorBody { status: u16, message: String },
    /// `400` whose body says the input exceeds the model's maximum context length.
    ContextLengthExceeded,
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Never answer (until the fake engine is dropped).
    Hang,
    /// `200` with a body that is not valid JSON (for a stream: a first chunk that is not JSON).
    MalformedJson,
    /// Close the connection abruptly after this many content chunks, without `[DONE]`.
    ///
    /// For a stream, the opening role-only chunk is always sent and not counted, so
    /// `after_chunks: 0` cuts before the first token. For a plain request, the connection closes
    /// halfway through the body.
    CutStream { after_chunks: usize },
    /// Like [`Fault::CutStream`] but the connection stays open and silent (until the fake engine
    /// is dropped): exercises idle and first-token timeouts.
    StallStream { after_chunks: usize },
    /// Embeddings with this many dimensions instead of the configured number (chat ignores it).
    WrongDimensions(usize),
    /// `401 Unauthorized`, whatever the key.
    Unauthorized,
}
