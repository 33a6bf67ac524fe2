//! Setup shared by the engine client's test binaries: fake engines, a client config with
//! small delays and timeouts, a question whose fake answer is known, log capture, and a
//! frozen clock.
//!
//! # Time in these tests
//! Tests that say how long something takes (a `Retry-After`, a timeout, a cooldown, a breaker's
//! rest) run on tokio's paused clock (`#[tokio::test(start_paused = true)]`), which the client
//! reads too, and hold it still with [`Frozen`]: the fake engines answer over real loopback
//! sockets, and the clock moves only when the test [`advance`](Frozen::advance)s it. So they
//! assert exact virtual durations, whatever the load of the machine. Tokio's own auto-advance
//! is not used: it jumps to the next timer whenever the runtime waits for I/O, and would fire
//! a request timeout while the fake engine's answer is on its way.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use kb_core::{ChatMessage, ChatRequest};
use kb_engine::{
    BreakerConfig, EndpointConfig, EngineClient, EngineConfig, RemoteEmbedderOptions, RetryConfig,
    TimeoutConfig,
};
use kb_testkit::{FakeEngine, fake_answer};
use std::future::Future;
use std::time::{Duration, Instant};

pub const DIMS: usize = 8;

/// [`config`]'s `request_ms` and `first_token_ms`.
pub const TIMEOUT: Duration = Duration::from_millis(400);

/// [`config`]'s `idle_ms`.
pub const IDLE_TIMEOUT: Duration = Duration::from_millis(300);

/// An endpoint named `name` on `engine`, serving `fake-embed` and `fake-chat`.
pub fn endpoint(name: &str, engine: &FakeEngine) -> EndpointConfig {
    EndpointConfig {
        name: name.to_owned(),
        base_url: engine.base_url(),
        embed_model: Some("fake-embed".to_owned()),
        chat_model: Some("fake-chat".to_owned()),
        ..EndpointConfig::default()
    }
}

/// Small delays and timeouts, so that each test takes well under 3 s.
pub fn config(endpoints: Vec<EndpointConfig>) -> EngineConfig {
    EngineConfig {
        endpoints,
        retry: RetryConfig {
            max_attempts: 5,
            base_delay_ms: 10,
            max_delay_ms: 100,
            deadline_ms: 2_500,
        },
        timeouts: TimeoutConfig {
            connect_ms: 500,
            request_ms: TIMEOUT.as_millis() as u64,
            first_token_ms: TIMEOUT.as_millis() as u64,
            idle_ms: IDLE_TIMEOUT.as_millis() as u64,
        },
        breaker: BreakerConfig {
            failures: 5,
            cooldown_ms: 30_000,
        },
    }
}

pub fn client(endpoints: Vec<EndpointConfig>) -> EngineClient {
    EngineClient::new(config(endpoints)).expect("valid test config")
}

pub async fn engine() -> FakeEngine {
    FakeEngine::builder().dimensions(DIMS).start().await
}

pub fn options() -> RemoteEmbedderOptions {
    RemoteEmbedderOptions {
        dimensions: DIMS,
        ..RemoteEmbedderOptions::default()
    }
}

pub fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub fn question() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("Answer from the sources and cite them."),
            ChatMessage::user(
                "[1] Employees get 25 days of paid leave. Unused days expire.\n\
                 [2] Remote work needs approval.\n\nQuestion: how much leave do I get?",
            ),
        ],
        max_tokens: Some(200),
        temperature: Some(0.0),
    }
}

/// What the fake engine answers to [`question`].
pub fn expected_answer() -> String {
    let q = question();
    fake_answer(q.messages.iter().map(|m| {
        let role = match m.role {
            kb_core::Role::System => "system",
            kb_core::Role::User => "user",
            kb_core::Role::Assistant => "assistant",
        };
        (role, m.content.as_str())
    }))
}

/// How long a frozen-clock helper waits, in real time, for what only needs loopback I/O and a
/// few polls (micro- to milliseconds): far beyond any slowness of a loaded machine, it turns a
/// call that never gets there (a bug) into a failure instead of a hang.
const REAL_LIMIT: Duration = Duration::from_secs(20);

/// Tokio's paused clock, held still while this lives: no auto-advance (a blocking task runs,
/// which inhibits it: see `tokio::time::pause`, "Preventing auto-advance"), so time moves only by
/// [`advance`](Self::advance). Make it first thing in a `#[tokio::test(start_paused = true)]`.
pub struct Frozen {
    release: Option<std::sync::mpsc::Sender<()>>,
    started: tokio::time::Instant,
}

impl Frozen {
    pub fn hold() -> Self {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            // Ends when `release` is dropped.
            let _ = wait.recv();
        });
        Self {
            release: Some(release),
            started: tokio::time::Instant::now(),
        }
    }

    /// Virtual time since [`hold`](Self::hold): what the test advanced.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Move the clock: timers due by then fire (the futures waiting on them run when polled).
    pub async fn advance(&self, by: Duration) {
        tokio::time::advance(by).await;
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        drop(self.release.take());
    }
}

/// Wait `real` of real time without moving a paused clock (a blocking task inhibits its
/// auto-advance), letting I/O and other tasks run meanwhile.
async fn real_pause(real: Duration) {
    tokio::task::spawn_blocking(move || std::thread::sleep(real))
        .await
        .expect("BUG: a sleeping blocking task does not panic");
}

/// Poll `call` until `ready()` holds (checked every real millisecond) without moving the
/// clock; panics if `call` ends first.
#[track_caller]
pub fn drive_until<'a, F: Future + Unpin>(
    call: &'a mut F,
    what: &'a str,
    ready: impl Fn() -> bool + 'a,
) -> impl Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let started = Instant::now();
        while !ready() {
            assert!(
                started.elapsed() < REAL_LIMIT,
                "{caller}: not the case after {REAL_LIMIT:?} of real time: {what}"
            );
            tokio::select! {
                biased;
                _ = &mut *call => panic!("{caller}: the call ended before {what}"),
                () = real_pause(Duration::from_millis(1)) => {}
            }
        }
    }
}

/// Poll `call` for a while (50 ms of real time) without moving the clock; panics if it ends:
/// `what` would have happened too early.
#[track_caller]
pub fn still_pending<'a, F: Future + Unpin>(
    call: &'a mut F,
    what: &'a str,
) -> impl Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        tokio::select! {
            biased;
            _ = &mut *call => panic!("{caller}: the call ended: {what}"),
            () = real_pause(Duration::from_millis(50)) => {}
        }
    }
}

/// Poll `call` to its end without moving the clock.
#[track_caller]
pub fn finish<F: Future + Unpin>(call: &mut F) -> impl Future<Output = F::Output> + '_ {
    finish_advancing(call, || false)
}

/// Poll `call` to its end, moving the clock by 1 ms whenever `idle()` holds (checked every real
/// millisecond): when nothing is on its way between the client and an engine, as tokio's
/// auto-advance would, but never while an answer is in transit.
#[track_caller]
pub fn finish_advancing<'a, F: Future + Unpin>(
    call: &'a mut F,
    idle: impl Fn() -> bool + 'a,
) -> impl Future<Output = F::Output> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < REAL_LIMIT,
                "{caller}: the call did not end in {REAL_LIMIT:?} of real time"
            );
            tokio::select! {
                biased;
                out = &mut *call => return out,
                () = real_pause(Duration::from_millis(1)) => {}
            }
            if idle() {
                tokio::time::advance(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Log capture, shared with the workspace's other test binaries.
pub use kb_testkit::CapturedLogs;
