//! `GET /metrics` in Prometheus text format.
//!
//! The recorder is process-wide and the tests of this binary run side by side, so the server
//! measured here is a `kb serve` process of its own: nothing but this test moves its counters,
//! and each can be asserted to move by exactly what the test did.

use crate::served::KbServe;
use crate::stream::parse_events;
use kb_testkit::{FakeEngine, Route};
use serde_json::json;
use std::collections::BTreeMap;

/// A scrape of `server`'s `/metrics`.
async fn scrape(server: &KbServe) -> Metrics {
    let (status, text) = server.get_text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    Metrics::parse(&text)
}

/// A sample's labels, as (name, value) pairs.
type Labels<'a> = &'a [(&'a str, &'a str)];

/// A scrape: the value of each sample by name and label set.
struct Metrics(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Metrics {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            let value = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            samples.insert((name.to_owned(), labels), value);
        }
        Self(samples)
    }

    /// The sample `name` with exactly these labels; 0 when it was never recorded.
    fn get(&self, name: &str, labels: Labels) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }
}

#[tokio::test]
async fn metrics_count_requests_answers_refusals_engine_calls_and_tokens_exactly() {
    // Arrange: a server of its own answering from the fake engine, two documents ingested.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("lockers.md"),
        "# Lockers\n\nEvery employee gets a personal locker on the second floor. Keys are issued by reception.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("parking.md"),
        "# Parking\n\nThe car park behind the building has forty spaces. Parking permits are issued by facilities.\n",
    )
    .unwrap();
    let config = data.path().join("kb.toml");
    std::fs::write(
        &config,
        format!(
            "[chat]\nenabled = true\n\n[[engine.endpoints]]\nname = \"metrics-fake\"\n\
             base_url = \"{}\"\nchat_model = \"fake-chat\"\n",
            engine.base_url()
        ),
    )
    .unwrap();
    let server = KbServe::start(data.path(), Some(&config)).await;
    let (status, report) = server
        .post("/v1/admin/ingest", &json!({"paths": [docs.path()]}))
        .await;
    assert_eq!(status, 200, "ingest: {report}");
    let before = scrape(&server).await;
    let chat_calls_before = engine.calls(Route::Chat);

    // Act: a generated answer with one marker naming no source, a refusal, a streamed
    // answer and a request with a wrong key.
    engine.push_chat_reply("Lockers are on the second floor [1]. Ask reception [7].");
    let (status, generated) = server
        .post("/v1/ask", &json!({"question": "Where is my locker?"}))
        .await;
    assert_eq!(status, 200, "{generated}");
    assert_eq!(generated["mode"], "generative", "{generated}");
    assert_eq!(generated["removed_citations"], 1, "{generated}");
    let (status, refused) = server
        .post(
            "/v1/ask",
            &json!({"question": "Who won the football world cup in 1998?"}),
        )
        .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["mode"], "not_found", "{refused}");
    let (status, body) = server
        .post_as(
            &server.admin_token,
            "/v1/ask/stream",
            &json!({"question": "Where do I park my car?"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let events = parse_events(body.as_str().expect("an event stream"));
    let streamed = &events.last().expect("events").1;
    assert_eq!(streamed["mode"], "generative", "{body}");
    assert_eq!(streamed["removed_citations"], 0, "{body}");
    let (status, _) = server
        .post_as(
            "kbk_not_a_key",
            "/v1/ask",
            &json!({"question": "Where is my locker?"}),
        )
        .await;
    assert_eq!(status, 401);

    let after = scrape(&server).await;

    // Assert: every counter moved by exactly what was done.
    let tokens = |direction: &str| -> f64 {
        let key = if direction == "in" {
            "prompt_tokens"
        } else {
            "completion_tokens"
        };
        [&generated, streamed]
            .iter()
            .map(|a| a["usage"][key].as_u64().expect("usage") as f64)
            .sum()
    };
    let engine_calls = (engine.calls(Route::Chat) - chat_calls_before) as f64;
    assert_eq!(engine_calls, 2.0, "one chat call per generated answer");
    let ask_200 = [("method", "POST"), ("route", "/v1/ask"), ("status", "200")];
    let chat_ok = [
        ("endpoint", "metrics-fake"),
        ("model", "fake-chat"),
        ("kind", "chat"),
        ("outcome", "ok"),
    ];
    let expected: &[(&str, Labels, f64)] = &[
        ("kb_http_requests_total", &ask_200, 2.0),
        ("kb_http_request_duration_seconds_count", &ask_200, 2.0),
        (
            "kb_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/v1/ask/stream"),
                ("status", "200"),
            ],
            1.0,
        ),
        (
            "kb_http_requests_total",
            &[("method", "POST"), ("route", "/v1/ask"), ("status", "401")],
            1.0,
        ),
        ("kb_answers_total", &[("mode", "generative")], 2.0),
        ("kb_answers_total", &[("mode", "not_found")], 1.0),
        ("kb_answers_total", &[("mode", "extractive")], 0.0),
        ("kb_refusals_total", &[], 1.0),
        ("kb_citations_removed_total", &[], 1.0),
        ("kb_retrieval_seconds_count", &[], 3.0),
        (
            "kb_generation_seconds_count",
            &[("mode", "generative")],
            2.0,
        ),
        ("kb_engine_calls_total", &chat_ok, engine_calls),
        (
            "kb_tokens_total",
            &[
                ("model", "fake-chat"),
                ("kind", "chat"),
                ("direction", "in"),
            ],
            tokens("in"),
        ),
        (
            "kb_tokens_total",
            &[
                ("model", "fake-chat"),
                ("kind", "chat"),
                ("direction", "out"),
            ],
            tokens("out"),
        ),
    ];
    let wrong: Vec<String> = expected
        .iter()
        .filter_map(|(name, labels, delta)| {
            let moved = after.get(name, labels) - before.get(name, labels);
            (moved != *delta)
                .then(|| format!("{name}{labels:?}: moved by {moved}, expected {delta}"))
        })
        .collect();
    assert!(
        tokens("in") > 0.0 && tokens("out") > 0.0,
        "the answers report their tokens: {generated} {streamed}"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
