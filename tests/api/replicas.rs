//! Stateless replicas: two `kb serve` processes on one Qdrant server and one shared catalog,
//! behind a real HAProxy (Debian's; scripts/test.sh installs it) running deploy/haproxy.cfg,
//! the file docker-compose.yml mounts, with `kb ingest` running from a third process.
//!
//! - a key made on the command line works on both at once; revoked, both refuse it within
//!   `server.key_cache_secs`;
//! - both give the same answer to the same question;
//! - killing one with SIGKILL under a steady load through the load balancer fails no request
//!   but those that were in flight when it died;
//! - the usage ledger has rows from both (each replica names its engine endpoint after itself).
//!
//! The catalog is Postgres when `KB_TEST_POSTGRES_URL` is set (a database of the test's own;
//! scripts/test.sh starts the server), else one SQLite file on this machine's disk.

use crate::helpers::{QdrantServer, samples_dir};
use crate::served::{KbServe, kb_command};
use kb_testkit::{FakeEngine, Fault, Route};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const KEY_CACHE_SECS: u64 = 2;
const QUESTION: &str = "How many vacation days do new employees get?";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The settings file of replica `name` (or of the ingest process).
fn write_config(
    dir: &Path,
    name: &str,
    qdrant: &QdrantServer,
    catalog: &str,
    engine: &str,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\nrate_limit_per_minute = 0\nkey_cache_secs = {KEY_CACHE_SECS}\n\
             [index]\nurl = \"{}\"\ncollection = \"{}\"\n\
             {catalog}\n\
             [chat]\nenabled = true\n\
             [answer]\nmode = \"generative\"\nmin_score = 0.0\n\
             [[engine.endpoints]]\nname = \"{name}\"\nbase_url = \"{engine}\"\nchat_model = \"fake-chat\"\n",
            qdrant.url, qdrant.collection
        ),
    )
    .unwrap();
    path
}

/// HAProxy running deploy/haproxy.cfg with the replicas' addresses and a free port of its own.
struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(replicas: &[&str]) -> Self {
        let template =
            std::fs::read_to_string(crate::helpers::workspace_root().join("deploy/haproxy.cfg"))
                .expect("deploy/haproxy.cfg");
        let port = free_port();
        let mut config = template.replace("bind *:8080", &format!("bind 127.0.0.1:{port}"));
        for (i, address) in replicas.iter().enumerate() {
            let name = format!("kb-{}", i + 1);
            config = config.replace(&format!("{name}:8080"), address);
        }
        assert!(
            !config.contains(":8080"),
            "a replica address was not replaced:\n{config}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .expect("haproxy is installed (scripts/test.sh installs Debian's)");
        assert!(
            check.status.success(),
            "deploy/haproxy.cfg does not pass `haproxy -c`: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ask(client: &reqwest::Client, base: &str, key: &str) -> (u16, Value) {
    match client
        .post(format!("{base}/v1/ask"))
        .bearer_auth(key)
        .json(&json!({ "question": QUESTION }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// A new database of this test's own on the Postgres server of `KB_TEST_POSTGRES_URL`
/// (scripts/test.sh starts one and sets `KB_REQUIRE_POSTGRES=1`), as a URL; `None` without
/// a server (the replicas then share a SQLite file).
async fn postgres_database() -> Option<String> {
    use sqlx::Connection;
    let Ok(server) = std::env::var("KB_TEST_POSTGRES_URL") else {
        assert!(
            !std::env::var("KB_REQUIRE_POSTGRES").is_ok_and(|v| v == "1"),
            "KB_REQUIRE_POSTGRES=1 but KB_TEST_POSTGRES_URL is not set"
        );
        eprintln!("no KB_TEST_POSTGRES_URL: the replicas share a SQLite catalog");
        return None;
    };
    let name = format!("kb_replicas_{}", std::process::id());
    let mut connection = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to the test Postgres server");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create the replicas' database");
    let mut url = reqwest::Url::parse(&server).expect("KB_TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    Some(url.to_string())
}

/// `kb keys …` over the shared catalog (through the ingest process's settings).
fn keys(data: &Path, config: &Path, args: &[&str]) -> String {
    let out = kb_command(data, Some(config))
        .arg("keys")
        .args(args)
        .output()
        .expect("run kb keys");
    assert!(
        out.status.success(),
        "kb keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_haproxy_share_keys_answers_and_the_ledger_and_survive_a_kill() {
    let Some(qdrant) = QdrantServer::from_env() else {
        return;
    };
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let work = tempfile::tempdir().unwrap();
    let catalog = match postgres_database().await {
        Some(url) => format!("[catalog]\nurl = \"{url}\""),
        None => format!(
            "[catalog]\npath = \"{}\"",
            work.path().join("shared.db").display()
        ),
    };
    let dirs: Vec<PathBuf> = ["replica-1", "replica-2", "ingest"]
        .iter()
        .map(|n| {
            let d = work.path().join(n);
            std::fs::create_dir_all(&d).unwrap();
            d
        })
        .collect();
    let configs: Vec<PathBuf> = ["replica-1", "replica-2", "ingest"]
        .iter()
        .map(|n| write_config(work.path(), n, &qdrant, &catalog, &engine.base_url()))
        .collect();

    let first = KbServe::start(&dirs[0], Some(&configs[0])).await;
    let mut second = KbServe::start(&dirs[1], Some(&configs[1])).await;
    let address = |s: &KbServe| s.url.trim_start_matches("http://").to_owned();
    let balancer = Haproxy::start(&[&address(&first), &address(&second)]);
    let front = format!("http://127.0.0.1:{}", balancer.port);

    // Ingest from a third process while both serve.
    let ingest = kb_command(&dirs[2], Some(&configs[2]))
        .arg("ingest")
        .arg(samples_dir())
        .output()
        .expect("run kb ingest");
    assert!(
        matches!(ingest.status.code(), Some(0 | 3)),
        "kb ingest: {}",
        String::from_utf8_lossy(&ingest.stderr)
    );

    // A key made on the command line works on both replicas at once.
    let key = keys(
        &dirs[2],
        &configs[2],
        &["create", "--role", "reader", "--name", "replicas"],
    );
    let client = reqwest::Client::new();
    let (s1, a1) = ask(&client, &first.url, &key).await;
    let (s2, a2) = ask(&client, &second.url, &key).await;
    assert_eq!((s1, s2), (200, 200), "{a1}\n{a2}");
    // Same answer, same citations from both.
    assert_eq!(a1["answer"], a2["answer"]);
    assert_eq!(a1["citations"], a2["citations"]);
    assert_eq!(a1["citations"][0]["document"], "leave-policy.md", "{a1}");

    // Through the balancer, until both are in rotation.
    let started = Instant::now();
    while ask(&client, &front, &key).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "haproxy never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Steady load through the balancer: 20 asks a second for 6 s; one replica is killed at 2 s.
    // The model takes 300 ms per answer, so some asks are in flight on the replica killed.
    for _ in 0..120 {
        engine.push_fault(Route::Chat, Fault::Delay(Duration::from_millis(300)));
    }
    let outcomes: Arc<Mutex<Vec<(Instant, Instant, u16)>>> = Arc::default();
    let mut tasks = Vec::new();
    let load_start = Instant::now();
    let mut killed_at = None;
    for n in 0..120u32 {
        let due = load_start + Duration::from_millis(50 * u64::from(n));
        tokio::time::sleep_until(due.into()).await;
        if n == 40 {
            let started = Instant::now();
            second.kill();
            killed_at = Some((started, Instant::now()));
        }
        let (client, front, key, outcomes) = (
            client.clone(),
            front.clone(),
            key.clone(),
            Arc::clone(&outcomes),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let (status, _) = ask(&client, &front, &key).await;
            outcomes.lock().await.push((sent, Instant::now(), status));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // From the signal to the process reaped.
    let (kill_start, kill_end) = killed_at.unwrap();
    let in_flight = |sent: &Instant, done: &Instant| *sent <= kill_end && *done >= kill_start;
    let outcomes = outcomes.lock().await;
    let failed: Vec<_> = outcomes.iter().filter(|(_, _, s)| *s != 200).collect();
    let in_flight_at_kill = outcomes
        .iter()
        .filter(|(sent, done, _)| in_flight(sent, done))
        .count();
    eprintln!(
        "{} asks through haproxy at 20/s, replica 2 killed after 2 s: {} failed, {} were in flight at the kill",
        outcomes.len(),
        failed.len(),
        in_flight_at_kill
    );
    for (sent, done, status) in &failed {
        assert!(
            in_flight(sent, done),
            "an ask that was not in flight at the kill failed ({status}, sent {:?} after it): \
             only requests in flight may fail",
            sent.saturating_duration_since(kill_start)
        );
    }

    // Revoked: refused by the surviving replica within the key cache's time.
    keys(&dirs[2], &configs[2], &["revoke", "replicas"]);
    tokio::time::sleep(Duration::from_secs(KEY_CACHE_SECS + 1)).await;
    assert_eq!(ask(&client, &first.url, &key).await.0, 401);
    assert_eq!(ask(&client, &front, &key).await.0, 401);

    // The ledger has the chat calls of both replicas (each names its endpoint after itself).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let usage = kb_command(&dirs[2], Some(&configs[2]))
        .args(["usage", "--json", "--by", "endpoint"])
        .output()
        .expect("run kb usage");
    let report: Value = serde_json::from_slice(&usage.stdout).unwrap_or_else(|e| {
        panic!(
            "kb usage --json: {e}: {}",
            String::from_utf8_lossy(&usage.stderr)
        )
    });
    let endpoints: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["key"].as_str())
        .collect();
    assert!(
        endpoints.contains(&"replica-1") && endpoints.contains(&"replica-2"),
        "{report:#}"
    );
    eprintln!(
        "replica 1 peak RSS: {} MiB (the in-process model, the index on the Qdrant server)",
        first.peak_rss_kib().unwrap_or(0) / 1024
    );
}
