//! The server over two OpenAI-compatible engines, `bad` and `good` (kb-testkit's fake), for
//! both embeddings and chat: whatever way `bad` fails, ingest and ask succeed and the usage
//! ledger (the `engine_calls` table of `{data_dir}/kb.db`) shows the failed attempts on `bad`;
//! with every route failing the user gets a quick 503 with `Retry-After`; API keys appear in no
//! log, error body or ledger row; a flaky endpoint under concurrent asks shows no user-visible
//! error; `kb usage --json` sums the ledger.
//!
//! Time: these tests run the whole server in the test's runtime on real time (its ledger writer,
//! SQLite threads and timers would stall on a frozen clock); exact timing of the client's
//! timeouts, `Retry-After` and breakers is tested on a frozen clock in kb-engine's own tests.
//! What is timed here has bounds many times the usual run, each saying why.

use crate::helpers::{ADMIN_TOKEN, TestApp, spawn_app_with};
use futures::StreamExt;
use kb_config::{EmbedderProvider, Settings};
use kb_engine::{EndpointConfig, RetryConfig, TimeoutConfig};
use kb_testkit::{CapturedLogs, FakeEngine, Fault, PromptSource, Route};
use serde_json::{Value, json};
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DIMS: usize = 64;
const BAD_KEY: &str = "sk-bad-SECRET-1111111111";
const GOOD_KEY: &str = "sk-good-SECRET-2222222222";
/// A key the `bad` engine refuses (401): disabled, then `bad` carries on with its other key.
const REVOKED_KEY: &str = "sk-revoked-SECRET-3333333333";
/// Pieces of the keys that must never be shown.
const KEY_PARTS: &[&str] = &["SECRET", "1111111111", "2222222222", "3333333333"];
const QUESTION: &str = "Where is my locker?";

/// Documents that all match [`QUESTION`], so that an answer has several sources to cite.
const LOCKER_DOCUMENTS: &[(&str, &str)] = &[
    (
        "lockers.md",
        "# Lockers\n\nEvery employee gets a personal locker on the second floor. Keys are issued by reception.\n",
    ),
    (
        "gym-lockers.md",
        "# Gym lockers\n\nThe gym locker is yours for the day: where the showers are, take any free locker.\n",
    ),
    (
        "locker-rules.md",
        "# Locker rules\n\nNo food in a locker. Facilities open any locker left locked over the summer.\n",
    ),
];

/// The app, its two engines, and its data and documents folders.
struct Failover {
    app: TestApp,
    bad: FakeEngine,
    good: FakeEngine,
    data: tempfile::TempDir,
    docs: tempfile::TempDir,
}

fn endpoint(name: &str, engine: &FakeEngine, keys: &[&str]) -> EndpointConfig {
    EndpointConfig {
        name: name.to_owned(),
        base_url: engine.base_url(),
        api_keys: keys.iter().map(|k| (*k).into()).collect(),
        embed_model: Some("fake-embed".to_owned()),
        chat_model: Some("fake-chat".to_owned()),
        ..EndpointConfig::default()
    }
}

impl Failover {
    /// Both engines healthy; `bad` has `bad_keys`. Timeouts are short so that a hung or slow
    /// engine costs half a second per attempt.
    async fn start(bad_keys: &[&str]) -> Self {
        let bad = FakeEngine::builder()
            .dimensions(DIMS)
            .required_api_key(BAD_KEY)
            .start()
            .await;
        let good = FakeEngine::builder()
            .dimensions(DIMS)
            .required_api_key(GOOD_KEY)
            .start()
            .await;
        let data = tempfile::tempdir().unwrap();
        let endpoints = vec![
            endpoint("bad", &bad, bad_keys),
            endpoint("good", &good, &[GOOD_KEY]),
        ];
        let data_dir = data.path().to_path_buf();
        let app = spawn_app_with(move |s: &mut Settings| {
            s.data_dir = data_dir;
            s.embedder.provider = EmbedderProvider::Engine;
            s.embedder.engine.dimensions = DIMS;
            s.chat.enabled = true;
            // The fake embeddings are bags of words: every hit counts, so chat is always asked.
            s.answer.min_score = -1.0;
            s.engine.endpoints = endpoints;
            s.engine.retry = RetryConfig {
                max_attempts: 4,
                base_delay_ms: 10,
                max_delay_ms: 100,
                deadline_ms: 5_000,
            };
            s.engine.timeouts = TimeoutConfig {
                connect_ms: 500,
                request_ms: 500,
                first_token_ms: 500,
                idle_ms: 500,
            };
        })
        .await;
        let docs = tempfile::tempdir().unwrap();
        for (name, text) in LOCKER_DOCUMENTS {
            std::fs::write(docs.path().join(name), text).unwrap();
        }
        // Whichever engine answers, the model cites the second source only.
        bad.set_cited_source(2);
        good.set_cited_source(2);
        Self {
            app,
            bad,
            good,
            data,
            docs,
        }
    }

    fn db(&self) -> PathBuf {
        self.data.path().join("kb.db")
    }

    async fn ingest(&self) -> Value {
        self.app.ingest(&[self.docs.path().to_path_buf()]).await
    }

    /// `POST path` with the question, whatever the answer.
    async fn question_to(&self, path: &str) -> reqwest::Response {
        self.app
            .post_request(path, ADMIN_TOKEN)
            .json(&json!({ "question": QUESTION }))
            .send()
            .await
            .unwrap()
    }

    /// Ask, expecting a generated answer that cites exactly the source the model saw as [2]
    /// of the locker documents (`good` never fails while asked here, so when it got a chat call
    /// it gave the answer; else `bad` did).
    async fn ask_ok(&self) -> Value {
        let good_before = self.good.calls(Route::Chat);
        let answer = self.app.ask(QUESTION).await;
        let answered_by = if self.good.calls(Route::Chat) > good_before {
            &self.good
        } else {
            &self.bad
        };
        let request = answered_by
            .last_request(Route::Chat)
            .expect("a chat request");
        let sources = sources_of(&request);
        assert_eq!(answer["mode"], "generative", "{answer}");
        let citations = answer["citations"].as_array().expect("citations");
        let cited: Vec<(u64, &str)> = citations
            .iter()
            .map(|c| (c["n"].as_u64().unwrap(), c["document"].as_str().unwrap()))
            .collect();
        assert_eq!(
            cited,
            [(2, sources[1].document.as_str())],
            "only source [2] is cited: {answer}"
        );
        answer
    }
}

/// The sources of a chat request's prompt: every locker document, numbered 1 to 3.
fn sources_of(request: &Value) -> Vec<PromptSource> {
    let documents: Vec<&str> = LOCKER_DOCUMENTS.iter().map(|(d, _)| *d).collect();
    crate::helpers::checked_prompt_sources(request, &documents)
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    endpoint: String,
    kind: String,
    outcome: String,
}

/// The ledger's rows, in order, and all of their text (to look for keys in).
async fn ledger(db: &Path) -> (Vec<Call>, String) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
    let rows = sqlx::query(
        "SELECT endpoint, model, kind, outcome, prompt_tokens, completion_tokens, latency_ms, at_ms \
         FROM engine_calls ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut text = String::new();
    let calls = rows
        .iter()
        .map(|r| {
            for column in ["endpoint", "model", "kind", "outcome"] {
                text.push_str(r.get::<&str, _>(column));
                text.push('\n');
            }
            Call {
                endpoint: r.get("endpoint"),
                kind: r.get("kind"),
                outcome: r.get("outcome"),
            }
        })
        .collect();
    (calls, text)
}

/// The ledger once `done` holds for its rows (the writer works in the background).
async fn ledger_when(db: &Path, done: impl Fn(&[Call]) -> bool) -> (Vec<Call>, String) {
    let started = Instant::now();
    loop {
        let (calls, text) = ledger(db).await;
        if done(&calls) {
            return (calls, text);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the ledger never showed what was expected: {calls:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has(calls: &[Call], endpoint: &str, kind: &str, outcome: &str) -> bool {
    calls
        .iter()
        .any(|c| c.endpoint == endpoint && c.kind == kind && c.outcome == outcome)
}

/// With `fault` on every `routes` request of `bad`, ingest and ask succeed, and the ledger
/// shows the failed attempts (`outcome`) on `bad` and the successes on `good`.
async fn survives(fault: Fault, routes: &[Route], outcome: &str) {
    // Arrange
    let f = Failover::start(&[BAD_KEY]).await;
    for route in routes {
        f.bad.set_failure_rate(*route, 1.0, fault.clone());
    }
    let started = Instant::now();

    // Act
    let report = f.ingest().await;
    if let Fault::RateLimited {
        retry_after: Some(rest),
    } = &fault
    {
        // `bad`'s key rests that long after the ingest's 429: until then asks skip it.
        tokio::time::sleep(*rest).await;
    }
    f.ask_ok().await;

    // Assert
    assert_eq!(report["stats"]["added"], LOCKER_DOCUMENTS.len(), "{report}");
    let kinds: Vec<&str> = routes
        .iter()
        .map(|r| match r {
            Route::Embeddings => "embed",
            Route::Chat => "chat",
        })
        .collect();
    let (calls, _) = ledger_when(&f.db(), |calls| {
        kinds
            .iter()
            .all(|kind| has(calls, "bad", kind, outcome) && has(calls, "good", kind, "ok"))
    })
    .await;
    assert!(
        calls
            .iter()
            .filter(|c| kinds.contains(&c.kind.as_str()))
            .all(|c| c.endpoint == "good" || c.outcome == outcome),
        "{fault:?}: {calls:#?}"
    );
    // Real time (see the module's doc): a stall bound, not a measure. The slowest case (a
    // hanging `bad`: a 500 ms timeout per attempt on it) takes about 2 s; 10 s is five times that.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{fault:?}: {:?}",
        started.elapsed()
    );
}

const BOTH: &[Route] = &[Route::Embeddings, Route::Chat];

#[tokio::test]
async fn ingest_and_ask_survive_429_with_retry_after() {
    let fault = Fault::RateLimited {
        retry_after: Some(Duration::from_secs(1)),
    };
    survives(fault, BOTH, "429").await;
}

#[tokio::test]
async fn ingest_and_ask_survive_500() {
    survives(Fault::Status(500), BOTH, "500").await;
}

#[tokio::test]
async fn ingest_and_ask_survive_502() {
    survives(Fault::Status(502), BOTH, "502").await;
}

#[tokio::test]
async fn ingest_and_ask_survive_504() {
    survives(Fault::Status(504), BOTH, "504").await;
}

#[tokio::test]
async fn ingest_and_ask_survive_a_hanging_engine() {
    survives(Fault::Hang, BOTH, "timeout").await;
}

#[tokio::test]
async fn ingest_and_ask_survive_a_slow_engine() {
    survives(Fault::Delay(Duration::from_secs(3)), BOTH, "timeout").await;
}

#[tokio::test]
async fn ingest_and_ask_survive_cut_bodies() {
    survives(
        Fault::CutStream { after_chunks: 0 },
        BOTH,
        "transport_error",
    )
    .await;
}

#[tokio::test]
async fn ingest_and_ask_survive_malformed_json() {
    survives(Fault::MalformedJson, BOTH, "malformed").await;
}

#[tokio::test]
async fn ingest_survives_vectors_of_the_wrong_length() {
    survives(
        Fault::WrongDimensions(DIMS / 2),
        &[Route::Embeddings],
        "wrong_dimensions",
    )
    .await;
}

#[tokio::test]
async fn a_stream_cut_before_its_first_token_fails_over_unseen() {
    // Arrange
    let f = Failover::start(&[BAD_KEY]).await;
    f.ingest().await;
    f.bad
        .set_failure_rate(Route::Chat, 1.0, Fault::CutStream { after_chunks: 0 });

    // Act
    let response = f.question_to("/v1/ask/stream").await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();

    // Assert
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("event: done"), "{body}");
    assert!(!body.contains("event: error"), "{body}");
    ledger_when(&f.db(), |calls| {
        has(calls, "bad", "chat", "transport_error") && has(calls, "good", "chat", "ok")
    })
    .await;
}

/// Make every chat route fail (`bad` with 500, `good` hanging), and ask.
async fn ask_with_every_route_failing(f: &Failover) -> (u16, Option<String>, String, Duration) {
    f.bad.set_failure_rate(Route::Chat, 1.0, Fault::Status(500));
    f.good.set_failure_rate(Route::Chat, 1.0, Fault::Hang);
    let started = Instant::now();
    let response = f.question_to("/v1/ask").await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    (status, retry_after, body, started.elapsed())
}

#[tokio::test]
async fn every_route_failing_is_a_quick_503_with_retry_after_and_a_clear_message() {
    // Arrange
    let f = Failover::start(&[BAD_KEY]).await;
    f.ingest().await;

    // Act
    let (status, retry_after, body, elapsed) = ask_with_every_route_failing(&f).await;

    // Assert
    assert_eq!(status, 503, "{body}");
    let seconds: u64 = retry_after
        .expect("a 503 says when to come back")
        .parse()
        .unwrap();
    assert!(seconds >= 1, "{seconds}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.is_empty(), "{body}");
    // Real time (see the module's doc): a stall bound. What makes the 503 quick is counted
    // below: at most retry.max_attempts (4) chat attempts, each ended by a 500 or a 500 ms
    // timeout, so about 2 s; 10 s is five times that.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let (calls, _) = ledger_when(&f.db(), |calls| {
        has(calls, "bad", "chat", "500") && has(calls, "good", "chat", "timeout")
    })
    .await;
    let chat_attempts = calls.iter().filter(|c| c.kind == "chat").count();
    assert!(
        (2..=4).contains(&chat_attempts),
        "one ask, at most retry.max_attempts chat attempts: {calls:#?}"
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.kind == "chat")
            .all(|c| c.outcome != "ok"),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn keys_never_appear_in_logs_error_bodies_or_the_ledger() {
    // Arrange: `bad`'s first key is refused, its second works until it is made to fail.
    // Everything logged on this test's thread (its runtime, server included, is on one thread).
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let f = Failover::start(&[REVOKED_KEY, BAD_KEY]).await;

    // Act
    f.ingest().await;
    f.ask_ok().await;
    let (status, _, error_body, _) = ask_with_every_route_failing(&f).await;
    let (calls, ledger_text) = ledger_when(&f.db(), |calls| {
        has(calls, "bad", "embed", "401") && has(calls, "good", "chat", "timeout")
    })
    .await;
    let logged = logs.text();

    // Assert
    assert_eq!(status, 503, "{error_body}");
    assert!(logged.contains("the key is disabled"), "{logged}");
    for part in KEY_PARTS {
        assert!(!logged.contains(part), "{part} logged");
        assert!(!error_body.contains(part), "{part} in {error_body}");
        assert!(
            !ledger_text.contains(part),
            "{part} in the ledger: {calls:#?}"
        );
    }
}

#[tokio::test]
async fn concurrent_asks_with_one_endpoint_failing_a_fifth_of_calls_all_succeed() {
    // Arrange
    let f = Failover::start(&[BAD_KEY]).await;
    f.ingest().await;
    for route in BOTH {
        f.bad.set_failure_rate(*route, 0.2, Fault::Status(500));
    }
    let started = Instant::now();

    // Act
    let results: Vec<(u16, Value)> = futures::stream::iter(0..80)
        .map(|_| {
            let (client, address) = (f.app.client.clone(), f.app.address.clone());
            async move {
                let response = client
                    .post(format!("{address}/v1/ask"))
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&json!({ "question": QUESTION }))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    // Assert
    let errors: Vec<&(u16, Value)> = results
        .iter()
        .filter(|(status, answer)| *status != 200 || answer["mode"] != "generative")
        .collect();
    assert!(errors.is_empty(), "{} failed: {errors:#?}", errors.len());
    let (calls, _) = ledger_when(&f.db(), |calls| {
        calls
            .iter()
            .filter(|c| c.kind == "chat" && c.outcome == "ok")
            .count()
            >= 80
    })
    .await;
    assert!(has(&calls, "bad", "chat", "ok"), "bad still carries calls");
    assert!(
        calls
            .iter()
            .any(|c| c.endpoint == "bad" && c.outcome == "500"),
        "the soak met failures: {calls:#?}"
    );
    // Real time (see the module's doc): the soak is about real concurrency; a stall bound.
    // 80 asks, 8 at a time, take a few seconds; 30 s leaves a loaded runner many times that.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// `kb --data-dir DATA --config CONFIG usage ARGS`: stdout, and the exit code.
async fn kb_usage(data_dir: &Path, config: &Path, args: &[&str]) -> (String, Option<i32>) {
    kb(data_dir, config, &[&["usage"], args].concat()).await
}

/// `kb --data-dir DATA --config CONFIG ARGS` (awaited, so that fake engines of this runtime
/// keep answering): stdout, and the exit code.
async fn kb(data_dir: &Path, config: &Path, args: &[&str]) -> (String, Option<i32>) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kb"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("KB_CONFIG")
        .output()
        .await
        .expect("run kb usage");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "kb {args:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, out.status.code())
}

#[tokio::test]
async fn kb_usage_sums_the_ledger_of_a_running_server_with_prices() {
    // Arrange: one failed chat attempt on `bad`; chat costs 1 per token, embeddings nothing.
    let f = Failover::start(&[BAD_KEY]).await;
    f.bad.set_failure_rate(Route::Chat, 1.0, Fault::Status(502));
    f.ingest().await;
    f.ask_ok().await;
    let (calls, _) = ledger_when(&f.db(), |calls| {
        has(calls, "bad", "chat", "502") && has(calls, "good", "chat", "ok")
    })
    .await;
    let config = f.data.path().join("prices.toml");
    std::fs::write(
        &config,
        "[usage.prices.fake-chat]\ninput_per_million = 1000000\noutput_per_million = 1000000\n\
         [usage.prices.fake-embed]\ninput_per_million = 0\noutput_per_million = 0\n",
    )
    .unwrap();

    // Act: the real binary, straight on the database the server keeps writing to.
    let (by_endpoint, code) =
        kb_usage(f.data.path(), &config, &["--json", "--by", "endpoint"]).await;
    let (by_model, _) = kb_usage(f.data.path(), &config, &["--json"]).await;
    let (future, _) = kb_usage(f.data.path(), &config, &["--json", "--since", "2999-01-01"]).await;
    let (table, _) = kb_usage(f.data.path(), &config, &["--by", "kind", "--since", "1d"]).await;

    // Assert
    assert_eq!(code, Some(0));
    let by_endpoint: Value = serde_json::from_str(&by_endpoint).unwrap();
    assert_eq!(by_endpoint["by"], "endpoint");
    let rows = by_endpoint["rows"].as_array().unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["bad", "good"], "{by_endpoint}");
    let failures = calls.iter().filter(|c| c.outcome != "ok").count() as u64;
    assert_eq!(rows[0]["failures"], failures, "{by_endpoint}");
    assert_eq!(rows[1]["failures"], 0, "{by_endpoint}");
    assert_eq!(
        by_endpoint["total"]["calls"],
        calls.len() as u64,
        "{by_endpoint}"
    );

    let by_model: Value = serde_json::from_str(&by_model).unwrap();
    let chat = by_model["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "fake-chat")
        .expect("a fake-chat row");
    let tokens =
        chat["prompt_tokens"].as_u64().unwrap() + chat["completion_tokens"].as_u64().unwrap();
    assert!(tokens > 0, "{chat}");
    assert_eq!(chat["cost"].as_f64(), Some(tokens as f64), "{chat}");
    assert_eq!(by_model["total"]["cost"].as_f64(), Some(tokens as f64));
    assert!(chat["latency_p50_ms"].is_u64(), "{chat}");
    assert_eq!(by_model["unpriced_models"], json!([]));

    let future: Value = serde_json::from_str(&future).unwrap();
    assert_eq!(future["total"]["calls"], 0, "{future}");
    assert_eq!(future["since"], "2999-01-01T00:00:00Z");

    let metrics = f.app.metrics().await;
    assert!(
        metrics.contains(r#"kb_usage_records_total{result="written"}"#),
        "{metrics}"
    );
    assert!(table.contains("engine calls since"), "{table}");
    for word in ["kind", "calls", "cost", "p95 ms", "chat", "embed", "total"] {
        assert!(table.contains(word), "{word} missing in {table}");
    }
}

#[tokio::test]
async fn a_local_kb_ingest_writes_its_engine_calls_to_the_ledger_before_exiting() {
    // Arrange: the CLI embeds through the engine itself (no server).
    let engine = FakeEngine::builder().dimensions(DIMS).start().await;
    engine.push_fault(Route::Embeddings, Fault::Status(503));
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("desks.md"),
        "# Desks\n\nHot desks are booked in the desk app.\n",
    )
    .unwrap();
    let config = data.path().join("kb.toml");
    std::fs::write(
        &config,
        format!(
            "[embedder]\nprovider = \"engine\"\n[embedder.engine]\ndimensions = {DIMS}\n\
             [engine.retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\n\
             [[engine.endpoints]]\nname = \"only\"\nbase_url = \"{}\"\nembed_model = \"fake-embed\"\n",
            engine.base_url()
        ),
    )
    .unwrap();

    // Act
    let (_, ingest_code) = kb(
        data.path(),
        &config,
        &["ingest", &docs.path().display().to_string()],
    )
    .await;
    let (report, _) = kb_usage(data.path(), &config, &["--json", "--by", "kind"]).await;

    // Assert
    assert_eq!(ingest_code, Some(0));
    let report: Value = serde_json::from_str(&report).unwrap();
    let embed = &report["rows"][0];
    assert_eq!(embed["key"], "embed", "{report}");
    assert_eq!(
        embed["calls"],
        engine.calls(Route::Embeddings) as u64,
        "{report}"
    );
    assert_eq!(embed["failures"], 1, "{report}");
    assert!(embed["prompt_tokens"].as_u64().unwrap() > 0, "{report}");
}

#[tokio::test]
async fn readyz_needs_an_engine_route_that_can_take_calls() {
    // Arrange: `bad` has only a key its engine refuses; `good` works until it refuses too.
    let f = Failover::start(&[REVOKED_KEY]).await;
    f.ingest().await;

    // Act + Assert: one usable route is enough.
    let (status, body) = f.app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    let engine = body["engine"]
        .as_array()
        .expect("the engine routes are listed");
    assert_eq!(engine.len(), 2, "{body}");
    assert_eq!(engine[0]["keys_disabled"], 1, "{body}");

    // Act: `good` refuses its key too (401 on the next chat call), so no route is left.
    f.good.push_fault(Route::Chat, Fault::Unauthorized);
    let _ = f.question_to("/v1/ask").await;
    let (status, body) = f.app.get("/readyz", None).await;

    // Assert
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("bad") && message.contains("good"),
        "{message}"
    );
    assert!(!KEY_PARTS.iter().any(|k| message.contains(k)), "{message}");
}
