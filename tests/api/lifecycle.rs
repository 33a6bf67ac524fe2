//! The `kb serve` process seen from outside: it is started as the real binary, with the fake
//! engine as its embedder and chat model, stopped with SIGTERM, and judged by what it leaves
//! behind (its exit code, the usage ledger in `kb.db`, its log on stderr).

use crate::served::{KbServe, kb_command};
use kb_testkit::{FakeEngine, Route};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, SqliteConnection};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A question the ingested document answers.
const QUESTION: &str = "Where is my locker?";

/// A configuration whose embeddings and answers come from the fake engine at `base_url`.
fn write_config(dir: &Path, base_url: &str) -> PathBuf {
    let path = dir.join("kb.toml");
    std::fs::write(
        &path,
        format!(
            r#"[server]
port = 0
rate_limit_per_minute = 0

[embedder]
provider = "engine"

[embedder.engine]
dimensions = 384

[chat]
enabled = true

[answer]
# The fake embedder is a bag of words: a short question shares few of a passage's.
min_score = 0.1

[usage]
# One record per insert, so that a writer that stops early leaves records behind.
batch_size = 1

[engine.retry]
max_attempts = 2
base_delay_ms = 10
max_delay_ms = 50
deadline_ms = 30000

[[engine.endpoints]]
name = "fake"
base_url = "{base_url}"
embed_model = "fake-embed"
chat_model = "fake-chat"
"#
        ),
    )
    .expect("write the configuration");
    path
}

/// A folder with one document that answers [`QUESTION`].
fn documents() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lockers.md"),
        "# Lockers\n\nEvery employee gets a personal locker on the second floor. Keys are issued by reception.\n",
    )
    .unwrap();
    dir
}

fn connect_options(db: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal)
}

/// Holds the write lock of `kb.db` (an open `BEGIN IMMEDIATE`) until [`release`]d, so that
/// the usage ledger's writer waits (within its busy timeout) and records pile up in its queue.
struct WriteLock(SqliteConnection);

impl WriteLock {
    async fn take(db: &Path) -> Self {
        let mut conn = connect_options(db)
            .connect()
            .await
            .expect("open kb.db for the lock");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .expect("take kb.db's write lock");
        Self(conn)
    }

    async fn release(mut self) {
        sqlx::query("ROLLBACK")
            .execute(&mut self.0)
            .await
            .expect("release kb.db's write lock");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_writes_every_queued_usage_record() {
    // Arrange: a server whose every engine call the fake engine counts.
    let engine = FakeEngine::start().await;
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let config = write_config(root.path(), &engine.base_url());
    let mut server = KbServe::start(&data_dir, Some(&config)).await;
    let docs = documents();
    let (status, report) = server
        .post("/v1/admin/ingest", &json!({"paths": [docs.path()]}))
        .await;
    assert_eq!(status, 200, "ingest: {report}");
    let db = data_dir.join("kb.db");
    let ledger_rows = || async {
        let mut conn = connect_options(&db)
            .read_only(true)
            .connect()
            .await
            .expect("open kb.db read-only");
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM engine_calls")
            .fetch_one(&mut conn)
            .await
            .expect("count engine_calls");
        usize::try_from(rows).expect("a count")
    };
    // While the ledger cannot write (the lock is released well within its 10 s busy timeout),
    // a few asks queue their records behind the one the writer waits with.
    let lock = WriteLock::take(&db).await;
    const ASKS: usize = 3;
    for _ in 0..ASKS {
        let (status, answer) = server.post("/v1/ask", &json!({"question": QUESTION})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["mode"], "generative", "{answer}");
    }

    // Act: an ask is in flight at the engine when SIGTERM lands.
    engine.set_embedding_latency(Duration::from_millis(1000));
    let embeds_before = engine.calls(Route::Embeddings);
    let in_flight = {
        let client = server.client.clone();
        let url = format!("{}/v1/ask", server.url);
        let token = server.admin_token.clone();
        tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"question": QUESTION}))
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.json::<Value>().await?))
        })
    };
    let started = Instant::now();
    while engine.calls(Route::Embeddings) == embeds_before {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the ask never reached the engine"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let engine_calls = engine.calls(Route::Embeddings) + engine.calls(Route::Chat);
    let written = ledger_rows().await;
    assert!(
        written + 2 * ASKS <= engine_calls,
        "the asks' records are still queued at SIGTERM ({written} rows, {engine_calls} calls)"
    );
    server.terminate();
    // The server stops taking requests, finishes the one in flight, removes server.json, then
    // writes the ledger's queue and exits. The ledger may write only once server.json is gone:
    // a server that did not wait for the request in flight would be gone before answering it.
    let started = Instant::now();
    while data_dir.join("server.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "kb serve did not finish serving after SIGTERM:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock.release().await;
    let (status, answer) = in_flight
        .await
        .expect("the ask task")
        .unwrap_or_else(|e| panic!("the ask in flight at SIGTERM failed: {e}\n{}", server.log()));
    let exit = server.wait(Duration::from_secs(30)).await;

    // Assert
    assert_eq!(
        (status, &answer["mode"]),
        (200, &json!("generative")),
        "the ask in flight at SIGTERM is answered: {answer}"
    );
    assert_eq!(
        exit.code(),
        Some(0),
        "exit status {exit}:\n{}",
        server.log()
    );
    let mut conn = connect_options(&db)
        .read_only(true)
        .connect()
        .await
        .expect("open kb.db read-only");
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, outcome, COUNT(*) FROM engine_calls GROUP BY kind, outcome ORDER BY kind",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read engine_calls");
    let expected = vec![
        (
            "chat".to_owned(),
            "ok".to_owned(),
            engine.calls(Route::Chat) as i64,
        ),
        (
            "embed".to_owned(),
            "ok".to_owned(),
            engine.calls(Route::Embeddings) as i64,
        ),
    ];
    assert_eq!(
        rows,
        expected,
        "one ledger row per engine call (kind, outcome, rows):\n{}",
        server.log()
    );
    assert_eq!(
        engine.calls(Route::Chat),
        ASKS + 1,
        "one chat call per ask, the one in flight included"
    );
}

/// `kbk_` followed by hex digits: what an API key looks like.
fn key_pattern() -> regex::Regex {
    regex::Regex::new(r"kbk_[0-9a-fA-F]{8,}").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_appear_neither_in_the_debug_log_nor_in_keys_list() {
    // Arrange: keys made with the CLI, one revoked, and a server logging everything.
    let engine = FakeEngine::start().await;
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let config = write_config(root.path(), &engine.base_url());
    let create = |name: &str, role: &str| {
        let mut cmd = kb_command(&data_dir, Some(&config));
        cmd.args(["keys", "create", "--name", name, "--role", role]);
        if role == "reader" {
            cmd.args(["--groups", "hr"]);
        }
        let out = cmd.output().expect("run kb keys create");
        assert!(out.status.success(), "kb keys create: {out:?}");
        let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(key_pattern().is_match(&key), "a key is kbk_ + hex: {key}");
        key
    };
    let reader = create("alice", "reader");
    let admin = create("root", "admin");
    let revoked = create("bob", "reader");
    let out = kb_command(&data_dir, Some(&config))
        .args(["keys", "revoke", "bob"])
        .output()
        .expect("run kb keys revoke");
    assert!(out.status.success(), "kb keys revoke: {out:?}");
    let unknown = format!("kbk_{}", "0123456789abcdef".repeat(4));
    let mut server = KbServe::start_with(&data_dir, Some(&config), |cmd| {
        cmd.env("RUST_LOG", "debug");
    })
    .await;
    let docs = documents();
    let (status, report) = server
        .post("/v1/admin/ingest", &json!({"paths": [docs.path()]}))
        .await;
    assert_eq!(status, 200, "ingest: {report}");

    // Act: every route a key is shown to, with good, revoked, unknown and mangled keys.
    let ask = json!({"question": QUESTION});
    let completion = json!({"model": "kb", "messages": [{"role": "user", "content": QUESTION}]});
    let streamed =
        json!({"model": "kb", "stream": true, "messages": [{"role": "user", "content": QUESTION}]});
    let calls = [
        (&reader, "/v1/search", json!({"query": QUESTION}), 200),
        (&reader, "/v1/ask", ask.clone(), 200),
        (&reader, "/v1/ask/stream", ask.clone(), 200),
        (&reader, "/v1/chat/completions", completion.clone(), 200),
        (&reader, "/v1/chat/completions", streamed, 200),
        (&reader, "/v1/admin/ingest", json!({"paths": ["/tmp"]}), 403),
        (&admin, "/v1/ask", ask.clone(), 200),
        (&revoked, "/v1/ask", ask.clone(), 401),
        (&revoked, "/v1/chat/completions", completion, 401),
        (&unknown, "/v1/search", json!({"query": QUESTION}), 401),
    ];
    for (key, path, body, expected) in &calls {
        let (status, answer) = server.post_as(key, path, body).await;
        assert_eq!(status, *expected, "{path}: {answer}");
    }
    let mangled = format!("{reader}x");
    let (status, _) = server.post_as(&mangled, "/v1/ask", &ask).await;
    assert_eq!(status, 401, "a key with a character more");
    let listed = kb_command(&data_dir, Some(&config))
        .args(["keys", "list"])
        .output()
        .expect("run kb keys list");
    let listed_json = kb_command(&data_dir, Some(&config))
        .args(["keys", "list", "--json"])
        .output()
        .expect("run kb keys list --json");
    server.terminate();
    let exit = server.wait(Duration::from_secs(30)).await;

    // Assert
    assert_eq!(
        exit.code(),
        Some(0),
        "exit status {exit}:\n{}",
        server.log()
    );
    let log = server.log();
    // The check means something only if the log saw the requests, at debug level.
    assert!(
        log.contains("DEBUG") && log.contains("/v1/chat/completions") && log.contains("alice"),
        "the server logged the requests at debug level:\n{log}"
    );
    assert!(listed.status.success() && listed_json.status.success());
    let listed = String::from_utf8(listed.stdout).unwrap();
    let listed_json = String::from_utf8(listed_json.stdout).unwrap();
    for name in ["alice", "root", "bob"] {
        assert!(
            listed.contains(name),
            "kb keys list names {name}:\n{listed}"
        );
    }
    let records: Value = serde_json::from_str(&listed_json).expect("keys list --json is JSON");
    assert_eq!(records.as_array().map(Vec::len), Some(3), "{records}");
    for (what, text) in [
        ("the server's log", &log),
        ("kb keys list", &listed),
        ("kb keys list --json", &listed_json),
    ] {
        for key in [&reader, &admin, &revoked, &unknown, &mangled] {
            assert!(!text.contains(key.as_str()), "{what} holds the key {key}");
        }
        let found: Vec<&str> = key_pattern().find_iter(text).map(|m| m.as_str()).collect();
        assert!(found.is_empty(), "{what} holds key material: {found:?}");
    }
}
