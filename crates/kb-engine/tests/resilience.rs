//! Routing and resilience against two fake engines: endpoint `a` misbehaves, endpoint `b` is
//! healthy. Calls must still succeed, and the usage records must show what happened on which
//! endpoint. Timeouts are small so that each test takes well under 3 s (the soak test under 30);
//! the tests that say how long something takes run on a frozen clock (see `common`).

use futures::StreamExt;
use kb_core::{ChatDelta, ChatModel, Embedder, InputKind, ModelError};
use kb_engine::{
    BreakerConfig, CallRecord, CircuitState, EngineClient, EngineConfig, INTERRUPTED,
    MemoryRecorder, ModelKind,
};
use kb_testkit::{FakeEngine, Fault, Route};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::*;

/// Endpoint `a` (to break) and `b` (healthy), a client over both, and its records.
struct Pair {
    a: FakeEngine,
    b: FakeEngine,
    client: EngineClient,
    records: Arc<MemoryRecorder>,
}

impl Pair {
    async fn start() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(change: impl FnOnce(&mut EngineConfig)) -> Self {
        let a = engine().await;
        let b = engine().await;
        let mut config = config(vec![endpoint("a", &a), endpoint("b", &b)]);
        change(&mut config);
        let records = Arc::new(MemoryRecorder::new());
        let client = EngineClient::new(config)
            .expect("valid test config")
            .with_recorder(records.clone());
        Self {
            a,
            b,
            client,
            records,
        }
    }

    /// `(endpoint, outcome)` of each record, in order.
    fn outcomes(&self) -> Vec<(String, String)> {
        outcomes(&self.records.records())
    }

    fn circuit(&self, endpoint: usize) -> CircuitState {
        self.client.health()[endpoint].circuit
    }
}

fn outcomes(records: &[CallRecord]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r.endpoint.clone(), r.outcome.clone()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(e, o)| ((*e).to_owned(), (*o).to_owned()))
        .collect()
}

/// The whole text of a stream, or its first error.
async fn drain(mut stream: kb_core::ChatStream) -> Result<String, ModelError> {
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item? {
            ChatDelta::Text(t) => text.push_str(&t),
            ChatDelta::Usage(_) => {}
        }
    }
    Ok(text)
}

async fn embed(client: &EngineClient) -> Result<Vec<Vec<f32>>, ModelError> {
    client
        .embedder(options())
        .embed(&texts(&["annual leave", "remote work"]), InputKind::Passage)
        .await
}

async fn complete(client: &EngineClient) -> Result<String, ModelError> {
    Ok(client.chat(None).complete(&question()).await?.content)
}

async fn stream(client: &EngineClient) -> Result<String, ModelError> {
    drain(client.chat(None).stream(&question()).await?).await
}

/// Which call a scenario makes: embeddings (ingest), a chat answer, a streamed chat answer.
#[derive(Debug, Clone, Copy)]
enum Call {
    Embed,
    Complete,
    Stream,
}

impl Call {
    fn route(self) -> Route {
        match self {
            Self::Embed => Route::Embeddings,
            Self::Complete | Self::Stream => Route::Chat,
        }
    }

    fn kind(self) -> ModelKind {
        match self {
            Self::Embed => ModelKind::Embed,
            Self::Complete | Self::Stream => ModelKind::Chat,
        }
    }

    /// Make the call and check its result is the right one.
    async fn succeeds(self, client: &EngineClient) -> Result<(), String> {
        match self {
            Self::Embed => {
                let vectors = embed(client).await.map_err(|e| format!("{e:?}"))?;
                if vectors.len() != 2 || vectors.iter().any(|v| v.len() != DIMS) {
                    return Err(format!("wrong vectors: {vectors:?}"));
                }
            }
            Self::Complete | Self::Stream => {
                let answer = if matches!(self, Self::Complete) {
                    complete(client).await
                } else {
                    stream(client).await
                };
                let answer = answer.map_err(|e| format!("{e:?}"))?;
                if answer != expected_answer() {
                    return Err(format!("wrong answer: {answer:?}"));
                }
            }
        }
        Ok(())
    }
}

/// With `fault` on every request of endpoint `a`, each call succeeds through `b`, and the
/// records show exactly one failed attempt on `a` (`outcome`) then one success on `b`: exactly
/// at the timeout when `a` keeps silent (hangs, or is slower than the timeout), else before it.
///
/// Runs on a frozen clock: the test must be `#[tokio::test(start_paused = true)]`.
async fn survives(fault: Fault, calls: &[Call], outcome: &str) {
    let silent = matches!(fault, Fault::Hang | Fault::Delay(_));
    for &call in calls {
        // Arrange: a fresh pair per call, as a failure rests the route for the next one.
        let clock = Frozen::hold();
        let pair = Pair::start().await;
        pair.a.set_failure_rate(call.route(), 1.0, fault.clone());
        let what = format!("{call:?} with {fault:?} on a");

        // Act: for a silent `a`, the clock up to 1 ms before the timeout, then to it.
        let mut run = pin!(call.succeeds(&pair.client));
        let mut b_before_the_timeout = 0;
        if silent {
            drive_until(&mut run, "a has the request", || {
                pair.a.calls(call.route()) == 1
            })
            .await;
            clock.advance(TIMEOUT - Duration::from_millis(1)).await;
            still_pending(&mut run, "gave up on a before the timeout").await;
            b_before_the_timeout = pair.b.calls(call.route());
            clock.advance(Duration::from_millis(1)).await;
        }
        // The clock moves while a holds the request and b has not got one (a cut body comes
        // after a pause of the fake's own).
        let a_has_it = || pair.a.calls(call.route()) == 1 && pair.b.calls(call.route()) == 0;
        let result = if silent {
            finish(&mut run).await
        } else {
            finish_advancing(&mut run, a_has_it).await
        };

        // Assert
        assert!(result.is_ok(), "{what}: {result:?}");
        let records = pair.records.records();
        assert_eq!(
            outcomes(&records),
            pairs(&[("a", outcome), ("b", "ok")]),
            "{what}: {records:#?}"
        );
        assert!(records.iter().all(|r| r.kind == call.kind()), "{records:?}");
        assert!(records[1].prompt_tokens > 0, "{records:?}");
        assert_eq!(
            (pair.a.calls(call.route()), pair.b.calls(call.route())),
            (1, 1)
        );
        assert_eq!(
            b_before_the_timeout, 0,
            "{what}: failed over before the timeout"
        );
        if silent {
            assert_eq!(clock.elapsed(), TIMEOUT, "{what}: time to fail over");
        } else {
            assert!(
                clock.elapsed() < TIMEOUT,
                "{what}: waited {:?}",
                clock.elapsed()
            );
        }
    }
}

const ALL: &[Call] = &[Call::Embed, Call::Complete, Call::Stream];

#[tokio::test(start_paused = true)]
async fn rate_limited_endpoint_429_with_retry_after_fails_over() {
    let fault = Fault::RateLimited {
        retry_after: Some(Duration::from_secs(1)),
    };
    survives(fault, ALL, "429").await;
}

#[tokio::test(start_paused = true)]
async fn endpoint_answering_500_fails_over() {
    survives(Fault::Status(500), ALL, "500").await;
}

#[tokio::test(start_paused = true)]
async fn endpoint_answering_502_fails_over() {
    survives(Fault::Status(502), ALL, "502").await;
}

#[tokio::test(start_paused = true)]
async fn endpoint_answering_504_fails_over() {
    survives(Fault::Status(504), ALL, "504").await;
}

#[tokio::test(start_paused = true)]
async fn hanging_endpoint_times_out_and_fails_over() {
    survives(Fault::Hang, ALL, "timeout").await;
}

#[tokio::test(start_paused = true)]
async fn endpoint_slower_than_the_timeout_fails_over() {
    survives(Fault::Delay(Duration::from_secs(2)), ALL, "timeout").await;
}

#[tokio::test(start_paused = true)]
async fn stream_cut_before_the_first_token_and_cut_bodies_fail_over() {
    survives(Fault::CutStream { after_chunks: 0 }, ALL, "transport_error").await;
}

#[tokio::test(start_paused = true)]
async fn plain_answer_cut_after_n_chunks_fails_over() {
    // A plain (non-streamed) body is cut halfway whatever N: nothing reached the caller yet.
    survives(
        Fault::CutStream { after_chunks: 3 },
        &[Call::Embed, Call::Complete],
        "transport_error",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn malformed_json_fails_over() {
    survives(Fault::MalformedJson, ALL, "malformed").await;
}

#[tokio::test(start_paused = true)]
async fn wrong_vector_dimensions_fail_over() {
    survives(
        Fault::WrongDimensions(3),
        &[Call::Embed],
        "wrong_dimensions",
    )
    .await;
}

#[tokio::test]
async fn stream_cut_after_its_first_tokens_is_interrupted_and_recorded() {
    // Arrange: after the first token the answer cannot fail over (two answers are never
    // spliced): the caller gets the text so far and then INTERRUPTED, to retry or show.
    let pair = Pair::start().await;
    pair.a
        .set_failure_rate(Route::Chat, 1.0, Fault::CutStream { after_chunks: 2 });

    // Act
    let result = stream(&pair.client).await;

    // Assert
    assert!(
        matches!(&result, Err(ModelError::Transient { message, .. }) if message == INTERRUPTED),
        "{result:?}"
    );
    assert_eq!(pair.outcomes(), pairs(&[("a", "interrupted")]));
    assert_eq!(pair.b.calls(Route::Chat), 0);
    let health = pair.client.health();
    assert_eq!(health[0].in_flight, 0, "{health:?}");
}

#[tokio::test]
async fn dropped_stream_is_recorded_as_cancelled_and_releases_its_load() {
    // Arrange
    let pair = Pair::start().await;
    pair.a.set_stream_chunk_delay(Duration::from_millis(20));
    let mut stream = pair.client.chat(None).stream(&question()).await.unwrap();
    let first = stream.next().await;
    let in_flight = pair.client.health()[0].in_flight;

    // Act
    drop(stream);

    // Assert
    assert!(matches!(first, Some(Ok(ChatDelta::Text(_)))), "{first:?}");
    assert_eq!(in_flight, 1);
    assert_eq!(pair.client.health()[0].in_flight, 0);
    assert_eq!(pair.outcomes(), pairs(&[("a", "cancelled")]));
}

#[tokio::test(start_paused = true)]
async fn cooldown_after_429_respects_retry_after_while_the_other_endpoint_carries_on() {
    // Arrange
    let clock = Frozen::hold();
    let pair = Pair::start().await;
    pair.a.push_fault(
        Route::Embeddings,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        },
    );

    // Act: calls during the second a rests (every 200 ms, the last 1 ms before its end), then
    // after it.
    embed(&pair.client).await.unwrap();
    for step in [200, 200, 200, 200, 199] {
        clock.advance(Duration::from_millis(step)).await;
        embed(&pair.client).await.unwrap();
    }
    let a_during = pair.a.calls(Route::Embeddings);
    let health_during = pair.client.health();
    clock.advance(Duration::from_millis(1)).await;
    for _ in 0..4 {
        embed(&pair.client).await.unwrap();
    }

    // Assert
    assert_eq!(a_during, 1, "a got calls while resting");
    assert_eq!(health_during[0].keys_cooling, 1);
    assert_eq!(health_during[0].circuit, CircuitState::Closed);
    assert!(
        pair.a.calls(Route::Embeddings) >= 2,
        "a back after the rest"
    );
    assert_eq!(pair.outcomes()[0], ("a".to_owned(), "429".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_after_consecutive_failures_then_probes_and_closes() {
    // Arrange
    let clock = Frozen::hold();
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let pair = Pair::with(|c| {
        c.breaker = BreakerConfig {
            failures: 3,
            cooldown_ms: 300,
        }
    })
    .await;
    pair.a
        .set_failure_rate(Route::Embeddings, 1.0, Fault::Status(500));

    // Act + Assert: opens after 3 failures on a; every call succeeds through b. Between calls,
    // 15 ms: longer than a's rest after a failure (base_delay_ms 10), so a is tried again.
    for _ in 0..30 {
        embed(&pair.client).await.unwrap();
        if pair.circuit(0) == CircuitState::Open {
            break;
        }
        clock.advance(Duration::from_millis(15)).await;
    }
    assert_eq!(pair.circuit(0), CircuitState::Open);
    assert_eq!(pair.a.calls(Route::Embeddings), 3);

    // Open: no call reaches a, until the last millisecond of the cooldown (300 ms).
    for _ in 0..6 {
        embed(&pair.client).await.unwrap();
    }
    clock.advance(Duration::from_millis(299)).await;
    embed(&pair.client).await.unwrap();
    assert_eq!(pair.a.calls(Route::Embeddings), 3, "a called while open");
    assert_eq!(pair.circuit(0), CircuitState::Open);

    // Half-open after the cooldown: one probe, which fails: open again.
    clock.advance(Duration::from_millis(1)).await;
    assert_eq!(pair.circuit(0), CircuitState::HalfOpen);
    for _ in 0..4 {
        embed(&pair.client).await.unwrap();
    }
    assert_eq!(pair.a.calls(Route::Embeddings), 4, "exactly one probe");
    assert_eq!(pair.circuit(0), CircuitState::Open);

    // a recovers: the next probe succeeds and closes the breaker; a gets calls again.
    pair.a.clear_faults();
    clock.advance(Duration::from_millis(300)).await;
    for _ in 0..4 {
        embed(&pair.client).await.unwrap();
    }
    assert_eq!(pair.circuit(0), CircuitState::Closed);
    assert!(pair.a.calls(Route::Embeddings) >= 6);
    assert_eq!(pair.circuit(1), CircuitState::Closed);

    let logged = logs.text();
    for message in [
        "circuit breaker opened",
        "circuit breaker half-open",
        "circuit breaker opened again",
        "circuit breaker closed",
    ] {
        let line = logged
            .lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("{message:?} not logged in {logged}"));
        assert!(
            line.contains("WARN") && line.contains("endpoint=\"a\""),
            "{line}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn calls_go_to_the_endpoint_with_fewer_requests_in_flight() {
    // Arrange: a answers in 500 ms, b at once; equal weights.
    let clock = Frozen::hold();
    let pair = Pair::with(|c| c.timeouts.request_ms = 2_000).await;
    pair.a.set_failure_rate(
        Route::Embeddings,
        1.0,
        Fault::Delay(Duration::from_millis(500)),
    );
    let client = pair.client.clone();

    // Act: 24 calls, 4 at a time; a's answers come when the clock reaches 500 ms, once every
    // call has been sent (b carried all the others meanwhile).
    let mut all = pin!(
        futures::stream::iter(0..24)
            .map(|_| {
                let client = client.clone();
                async move { embed(&client).await }
            })
            .buffer_unordered(4)
            .collect::<Vec<_>>()
    );
    drive_until(&mut all, "every call was sent", || {
        pair.a.calls(Route::Embeddings) + pair.b.calls(Route::Embeddings) == 24
    })
    .await;
    clock.advance(Duration::from_millis(500)).await;
    let results = finish(&mut all).await;

    // Assert
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let (a, b) = (
        pair.a.calls(Route::Embeddings),
        pair.b.calls(Route::Embeddings),
    );
    assert!(a <= 6 && b >= 18, "a {a}, b {b}");
    assert!(pair.client.health().iter().all(|h| h.in_flight == 0));
}

#[tokio::test]
async fn request_budget_sends_the_third_call_in_a_minute_elsewhere() {
    // Arrange
    let pair = Pair::with(|c| c.endpoints[0].requests_per_minute = Some(2)).await;

    // Act
    for _ in 0..6 {
        embed(&pair.client).await.unwrap();
    }

    // Assert
    assert_eq!(pair.a.calls(Route::Embeddings), 2);
    assert_eq!(pair.b.calls(Route::Embeddings), 4);
    assert!(pair.records.records().iter().all(CallRecord::is_ok));
}

#[tokio::test]
async fn token_budget_counts_the_reported_usage_not_the_estimate() {
    // Arrange: the estimate of 20 four-letter words is 44 tokens; the fake engine reports 20.
    // With 70 tokens a minute, a second call fits on a only if the first was corrected to 20.
    let pair = Pair::with(|c| c.endpoints[0].tokens_per_minute = Some(70)).await;
    let input = vec![["word"; 20].join(" ")];
    let embedder = pair.client.embedder(options());

    // Act
    for _ in 0..6 {
        embedder.embed(&input, InputKind::Passage).await.unwrap();
    }

    // Assert: turns a, b, a, b, then b only (a has 40 of 70 and a call needs 44).
    assert_eq!(pair.a.calls(Route::Embeddings), 2);
    assert_eq!(pair.b.calls(Route::Embeddings), 4);
    assert_eq!(pair.records.records()[0].prompt_tokens, 20);
}

#[tokio::test(start_paused = true)]
async fn used_up_budget_on_every_endpoint_is_a_quick_rate_limited_error() {
    // Arrange
    let clock = Frozen::hold();
    let a = engine().await;
    let mut ep = endpoint("a", &a);
    ep.requests_per_minute = Some(1);
    let client = EngineClient::new(config(vec![ep])).unwrap();
    embed(&client).await.unwrap();

    // Act: the clock stands still: the call must not wait for the budget.
    let err = finish(&mut pin!(embed(&client))).await.unwrap_err();

    // Assert
    assert_eq!(clock.elapsed(), Duration::ZERO, "waited for the budget");
    assert!(matches!(err, ModelError::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("requests_per_minute"), "{err}");
    let after = err.retry_after().expect("retry_after is set");
    assert_eq!(
        after,
        Duration::from_secs(60),
        "the budget's window after the first call"
    );
    assert_eq!(a.calls(Route::Embeddings), 1);
}

#[tokio::test(start_paused = true)]
async fn all_routes_failing_is_a_quick_retryable_error_with_retry_after() {
    // Arrange
    let clock = Frozen::hold();
    let pair = Pair::start().await;
    pair.a
        .set_failure_rate(Route::Embeddings, 1.0, Fault::Status(500));
    pair.b
        .set_failure_rate(Route::Embeddings, 1.0, Fault::Status(502));
    let resting = || pair.client.health().iter().all(|h| h.in_flight == 0);

    // Act: the clock moves while both routes rest between attempts.
    let err = finish_advancing(&mut pin!(embed(&pair.client)), resting)
        .await
        .unwrap_err();

    // Assert: at most the backoff caps of the 4 rests between 5 attempts (10, 20, 40 and 80
    // ms; the clock moves 1 ms at a time, so up to 1 ms more each).
    let most = Duration::from_millis(10 + 20 + 40 + 80 + 4);
    assert!(clock.elapsed() <= most, "{:?}", clock.elapsed());
    assert!(matches!(err, ModelError::Transient { .. }), "{err:?}");
    assert!(err.retry_after().is_some(), "{err:?}");
    assert!(
        err.to_string().contains("gave up after 5 attempts"),
        "{err}"
    );
    let records = pair.records.records();
    assert_eq!(records.len(), 5, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.outcome == "500" || r.outcome == "502"),
        "{records:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn every_breaker_open_fails_at_once_with_retry_after_and_no_engine_call() {
    // Arrange
    let clock = Frozen::hold();
    let pair = Pair::with(|c| {
        c.breaker = BreakerConfig {
            failures: 2,
            cooldown_ms: 2_000,
        }
    })
    .await;
    pair.a
        .set_failure_rate(Route::Chat, 1.0, Fault::Status(503));
    pair.b.set_failure_rate(Route::Chat, 1.0, Fault::Hang);
    // The clock moves while nothing is on its way: a has answered, and b holds every request
    // sent to it (b's were sent, ended in the records, or are in flight).
    let settled = || {
        let health = pair.client.health();
        let b_ended = pair
            .records
            .records()
            .iter()
            .filter(|r| r.endpoint == "b")
            .count();
        health[0].in_flight == 0 && pair.b.calls(Route::Chat) == b_ended + health[1].in_flight
    };
    let first = finish_advancing(&mut pin!(complete(&pair.client)), settled)
        .await
        .unwrap_err();
    let calls = (pair.a.calls(Route::Chat), pair.b.calls(Route::Chat));
    let opened = clock.elapsed();

    // Act: the clock stands still: the call must not wait.
    let err = finish(&mut pin!(complete(&pair.client))).await.unwrap_err();

    // Assert
    assert!(first.is_retryable(), "{first:?}");
    assert_eq!(calls, (2, 2));
    assert_eq!(clock.elapsed(), opened, "waited for an endpoint");
    assert!(matches!(err, ModelError::Transient { .. }), "{err:?}");
    assert!(err.to_string().contains("circuit breaker open"), "{err}");
    let after = err.retry_after().expect("retry_after is set");
    assert!(
        after > Duration::from_millis(500) && after <= Duration::from_secs(2),
        "{after:?}"
    );
    assert_eq!(
        (pair.a.calls(Route::Chat), pair.b.calls(Route::Chat)),
        calls
    );
    assert!(
        pair.client
            .health()
            .iter()
            .all(|h| h.circuit == CircuitState::Open)
    );
}

#[tokio::test]
async fn keys_never_appear_in_records_logs_or_errors() {
    // Arrange
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let a = FakeEngine::builder()
        .dimensions(DIMS)
        .required_api_key("sk-a-GOOD-0123456789")
        .start()
        .await;
    let b = FakeEngine::builder()
        .dimensions(DIMS)
        .required_api_key("sk-b-ONLY-QWXZKVJPRB")
        .start()
        .await;
    let mut ep_a = endpoint("a", &a);
    ep_a.api_keys = vec![
        "sk-a-REVOKED-9876543210".into(),
        "sk-a-GOOD-0123456789".into(),
    ];
    let mut ep_b = endpoint("b", &b);
    ep_b.api_keys = vec!["sk-b-ONLY-QWXZKVJPRB".into()];
    a.set_failure_rate(Route::Chat, 1.0, Fault::Status(500));
    let records = Arc::new(MemoryRecorder::new());
    let client = EngineClient::new(config(vec![ep_a, ep_b]))
        .unwrap()
        .with_recorder(records.clone());
    b.push_fault(Route::Embeddings, Fault::RateLimited { retry_after: None });
    b.set_failure_rate(Route::Chat, 1.0, Fault::Status(400));

    // Act
    let mut shown = Vec::new();
    for _ in 0..3 {
        shown.push(format!("{:?}", embed(&client).await.map(|v| v.len())));
    }
    shown.push(format!("{:?}", complete(&client).await));
    shown.push(format!("{:?}", stream(&client).await));
    let records = records.records();
    let serialised = serde_json::to_string(&records).unwrap();
    let logged = logs.text();
    let shown = shown.join(" ");

    // Assert
    assert!(records.len() >= 5, "{records:?}");
    for key in [
        "REVOKED",
        "GOOD",
        "ONLY",
        "9876543210",
        "0123456789",
        "QWXZKVJPRB",
    ] {
        assert!(!serialised.contains(key), "{key} recorded in {serialised}");
        assert!(!logged.contains(key), "{key} logged in {logged}");
        assert!(!shown.contains(key), "{key} shown in {shown}");
    }
    assert_eq!(logged.matches("the key is disabled").count(), 1, "{logged}");
    let refused: Vec<_> = records.iter().filter(|r| r.outcome == "401").collect();
    assert_eq!(refused.len(), 1, "{records:?}");
    assert_eq!(refused[0].endpoint, "a");
}

#[tokio::test]
async fn soak_concurrent_calls_with_one_flaky_endpoint_show_no_errors() {
    // Arrange: a fails 20% of calls at random (500), and rate-limits some more (429 without
    // Retry-After, interleaved with successes: the fake's Retry-After is whole seconds, which
    // would rest a for the whole run); streams come word by word.
    let pair = Pair::start().await;
    for route in [Route::Embeddings, Route::Chat] {
        pair.a.set_failure_rate(route, 0.2, Fault::Status(500));
        for _ in 0..5 {
            let limited = Fault::RateLimited { retry_after: None };
            pair.a.push_fault(route, limited);
            pair.a.push_fault(route, Fault::Delay(Duration::ZERO));
        }
    }
    for engine in [&pair.a, &pair.b] {
        engine.set_stream_chunk_delay(Duration::from_millis(2));
    }
    let client = pair.client.clone();
    // Real time, not a frozen clock: the soak is about real concurrency. Its bound only catches
    // a stall: 200 calls take under 1 s on an idle 2-core machine (the time is printed), so
    // 30 s leaves a loaded runner thirty times that.
    let started = Instant::now();

    // Act
    let results: Vec<(usize, Result<(), String>)> = futures::stream::iter(0..200_usize)
        .map(|i| {
            let client = client.clone();
            async move {
                let call = [Call::Embed, Call::Complete, Call::Stream][i % 3];
                (i, call.succeeds(&client).await)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    // Assert
    let elapsed = started.elapsed();
    let errors: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    let records = pair.records.records();
    let failed_on_a = records
        .iter()
        .filter(|r| r.endpoint == "a" && !r.is_ok())
        .count();
    let failed_on_b = records
        .iter()
        .filter(|r| r.endpoint == "b" && !r.is_ok())
        .count();
    let mut by_outcome = std::collections::BTreeMap::<(String, String), usize>::new();
    for r in &records {
        *by_outcome
            .entry((r.endpoint.clone(), r.outcome.clone()))
            .or_default() += 1;
    }
    eprintln!(
        "soak: 200 calls in {elapsed:?}; {} attempts: {by_outcome:?}",
        records.len()
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(failed_on_b, 0);
    assert!(
        failed_on_a >= 10,
        "the faults were not exercised: {failed_on_a}"
    );
    assert_eq!(records.iter().filter(|r| r.is_ok()).count(), 200);
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert!(pair.client.health().iter().all(|h| h.in_flight == 0));
}
