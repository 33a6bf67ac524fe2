//! Setup shared by the engine client's test binaries: fake engines, a client config with
//! small delays and timeouts, a question whose fake answer is known, and log capture.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use kb_core::{ChatMessage, ChatRequest};
use kb_engine::{
    BreakerConfig, EndpointConfig, EngineClient, EngineConfig, RemoteEmbedderOptions, RetryConfig,
    TimeoutConfig,
};
use kb_testkit::{FakeEngine, fake_answer};
use std::ops::Range;
use std::time::{Duration, Instant};

pub const DIMS: usize = 8;

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
            request_ms: 400,
            first_token_ms: 400,
            idle_ms: 300,
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

/// The time since `started` is within `range`.
#[track_caller]
pub fn assert_took(started: Instant, range: Range<Duration>) {
    let took = started.elapsed();
    assert!(range.contains(&took), "took {took:?}, expected {range:?}");
}

/// Log capture, shared with the workspace's other test binaries.
pub use kb_testkit::CapturedLogs;
