//! Test harness: start the real server on 127.0.0.1:0 over a temporary data folder, with the
//! in-process embedding model and the embedded index, and talk to it over HTTP.

use kb_config::Settings;
use kb_server::Server;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn samples_dir() -> PathBuf {
    workspace_root().join("docs-samples")
}

/// The model folder; tests fail with a hint when it is missing.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("KB_TEST_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "the embedding model is missing at {}: run scripts/fetch-model.sh",
        dir.display()
    );
    dir
}

/// Logs only when `TEST_LOG` is set (e.g. `TEST_LOG=info`).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Settings for a test over `data_dir`.
pub fn test_settings(data_dir: &Path) -> Settings {
    let mut s = Settings {
        data_dir: data_dir.to_path_buf(),
        ..Settings::default()
    };
    s.server.port = 0;
    s.embedder.local.model_dir = model_dir();
    s
}

/// A running server and an HTTP client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The server's data folder (its catalog holds the API keys).
    pub data_dir: PathBuf,
    _shutdown: Option<oneshot::Sender<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Another handle on the same server (for a task of its own); the server stays up as long
    /// as this one is kept.
    pub fn handle(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            client: self.client.clone(),
            data_dir: self.data_dir.clone(),
            _shutdown: None,
            _temp: None,
        }
    }

    /// `POST path` with the admin token.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(ADMIN_TOKEN, path, body).await
    }

    /// `POST path` with `credential` as the bearer token.
    pub async fn post_as(&self, credential: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .post_request(path, credential)
            .json(body)
            .send()
            .await
            .expect("request failed");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A `POST path` request carrying `credential`, to finish and send.
    pub fn post_request(&self, path: &str, credential: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(credential)
    }

    /// A new API key made with `kb keys create` (the real binary) over this server's data
    /// folder: `role` is `reader` or `admin`, `groups` comma-separated (empty for none).
    pub fn create_key(&self, name: &str, role: &str, groups: &str) -> String {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kb"));
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("KB_CONFIG")
            .args(["keys", "create", "--name", name, "--role", role]);
        if !groups.is_empty() {
            cmd.args(["--groups", groups]);
        }
        let out = cmd.output().expect("run kb keys create");
        assert!(
            out.status.success(),
            "kb keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("the key is text")
            .trim()
            .to_owned()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.address));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request failed");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("request failed")
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn ask(&self, question: &str) -> Value {
        let (status, body) = self.post("/v1/ask", &json!({ "question": question })).await;
        assert_eq!(status, 200, "ask {question:?} failed: {body}");
        body
    }

    pub async fn ingest(&self, paths: &[PathBuf]) -> Value {
        let (status, body) = self
            .post("/v1/admin/ingest", &json!({ "paths": paths }))
            .await;
        assert_eq!(status, 200, "ingest failed: {body}");
        body
    }
}

/// Start a server over a fresh temporary data folder, in the current runtime.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let temp = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(temp.path());
    configure(&mut settings);
    let (address, shutdown) = start(settings).await;
    TestApp {
        address,
        client: reqwest::Client::new(),
        data_dir: temp.path().to_path_buf(),
        _shutdown: Some(shutdown),
        _temp: Some(temp),
    }
}

async fn start(settings: Settings) -> (String, oneshot::Sender<()>) {
    let server = Server::start(&settings, &SecretString::from(ADMIN_TOKEN))
        .await
        .expect("server");
    let address = format!("http://{}", server.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let stopped = server
            .run_until(async move {
                let _ = rx.await;
            })
            .await;
        stopped.close().await
    });
    (address, tx)
}

/// One server with the sample handbook ingested, shared by the read-only tests of this
/// binary. It runs on a thread of its own so that it outlives each test's runtime.
pub fn shared_app() -> &'static SharedApp {
    static APP: OnceLock<SharedApp> = OnceLock::new();
    APP.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let app = spawn_app().await;
                let report = app.ingest(&[samples_dir()]).await;
                tx.send(SharedApp {
                    address: app.address.clone(),
                    data_dir: app.data_dir.clone(),
                    first_ingest: report,
                })
                .expect("send");
                // Keep the server (and its temp folder) alive for the whole test binary.
                std::future::pending::<()>().await;
                drop(app);
            });
        });
        rx.recv().expect("shared app failed to start")
    })
}

pub struct SharedApp {
    pub address: String,
    pub data_dir: PathBuf,
    pub first_ingest: Value,
}

impl SharedApp {
    pub fn app(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            client: reqwest::Client::new(),
            data_dir: self.data_dir.clone(),
            _shutdown: None,
            _temp: None,
        }
    }
}

/// Settings whose answers come from the fake engine at `base_url` (`fake-chat`), with quick
/// retries.
pub fn use_fake_chat(s: &mut Settings, base_url: String) {
    s.engine.endpoints = vec![kb_engine::EndpointConfig {
        name: "fake".into(),
        base_url,
        chat_model: Some("fake-chat".into()),
        ..kb_engine::EndpointConfig::default()
    }];
    s.engine.retry = kb_engine::RetryConfig {
        max_attempts: 2,
        base_delay_ms: 10,
        max_delay_ms: 50,
        deadline_ms: 5_000,
    };
    s.chat.enabled = true;
}

/// A server whose answers come from the fake engine's chat model (the embedder stays local),
/// with one small document ingested.
pub async fn app_with_chat(engine: &kb_testkit::FakeEngine) -> (TestApp, tempfile::TempDir) {
    app_with_fake_engine(engine, |_| {}).await
}

/// [`app_with_chat`], with more settings changed by `configure` (which sees the fake endpoint
/// already in place).
pub async fn app_with_fake_engine(
    engine: &kb_testkit::FakeEngine,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, tempfile::TempDir) {
    let base_url = engine.base_url();
    let app = spawn_app_with(move |s| {
        use_fake_chat(s, base_url);
        configure(s);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lockers.md"),
        "# Lockers\n\nEvery employee gets a personal locker on the second floor. Keys are issued by reception.\n",
    )
    .unwrap();
    app.ingest(&[dir.path().to_path_buf()]).await;
    (app, dir)
}

/// The documents an answer cites, in citation order.
pub fn cited_documents(answer: &Value) -> Vec<String> {
    answer["citations"]
        .as_array()
        .expect("citations array")
        .iter()
        .map(|c| c["document"].as_str().unwrap().to_owned())
        .collect()
}

/// The score each `/v1/search` result was ranked by (`raw_score`, shown to admins only), in
/// result order.
pub fn scores(results: &[Value]) -> Vec<f64> {
    results
        .iter()
        .map(|r| {
            r["raw_score"]
                .as_f64()
                .expect("raw_score (an admin search)")
        })
        .collect()
}

/// The chunks the catalog lists, summed over a `GET /v1/documents` listing.
pub fn catalogued_chunks(listing: &Value) -> u64 {
    listing["documents"]
        .as_array()
        .expect("documents array")
        .iter()
        .map(|d| d["chunk_count"].as_u64().expect("chunk_count"))
        .sum()
}

/// The numbered sources of a chat request's prompt (its last message), checked to be exactly
/// `documents` (in any order), numbered from 1.
#[track_caller]
pub fn checked_prompt_sources(
    request: &Value,
    documents: &[&str],
) -> Vec<kb_testkit::PromptSource> {
    let messages = request["messages"].as_array().expect("chat messages");
    let prompt = messages.last().unwrap()["content"].as_str().unwrap();
    let sources = kb_testkit::prompt_sources(prompt);
    let mut found: Vec<&str> = sources.iter().map(|s| s.document.as_str()).collect();
    found.sort_unstable();
    let mut expected = documents.to_vec();
    expected.sort_unstable();
    assert_eq!(found, expected, "the sources of this prompt: {prompt}");
    let numbers: Vec<u32> = sources.iter().map(|s| s.n).collect();
    let want: Vec<u32> = (1..=documents.len() as u32).collect();
    assert_eq!(numbers, want, "{prompt}");
    sources
}

/// Whether Tesseract (with English and Simplified Chinese) and pdftoppm are here for the tests
/// that read scans; panics when `KB_REQUIRE_OCR=1` (scripts/test.sh sets it) says they must be.
pub fn ocr_installed() -> bool {
    let langs = std::process::Command::new("tesseract")
        .arg("--list-langs")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let renderer = std::process::Command::new("pdftoppm")
        .arg("-v")
        .output()
        .is_ok();
    let installed = renderer
        && ["eng", "chi_sim"]
            .iter()
            .all(|l| langs.lines().any(|x| x == *l));
    if !installed {
        let required = std::env::var("KB_REQUIRE_OCR").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "OCR tests must run but Tesseract (eng, chi_sim) or pdftoppm is missing"
        );
        eprintln!("skipped: OCR is not installed (set KB_REQUIRE_OCR=1 to make this a failure)");
    }
    installed
}

/// The Qdrant server the tests may use (scripts/test.sh starts one and sets
/// `KB_TEST_QDRANT_URL` to its gRPC address), with a collection of the test's own.
pub struct QdrantServer {
    pub url: String,
    pub collection: String,
}

impl QdrantServer {
    /// `None` (after saying why) when no server is configured; a failure instead when
    /// `KB_REQUIRE_QDRANT=1` says one must be.
    pub fn from_env() -> Option<Self> {
        let Ok(url) = std::env::var("KB_TEST_QDRANT_URL") else {
            assert!(
                !std::env::var("KB_REQUIRE_QDRANT").is_ok_and(|v| v == "1"),
                "KB_REQUIRE_QDRANT=1 but KB_TEST_QDRANT_URL is not set (scripts/qdrant-node.sh starts a server)"
            );
            eprintln!("skipped: KB_TEST_QDRANT_URL is not set");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        Some(Self {
            url,
            collection: format!("kb_api_test_{}_{nanos:x}_{n}", std::process::id()),
        })
    }

    /// Point `settings` at this server and collection.
    pub fn use_in(&self, settings: &mut Settings) {
        settings.index.url = Some(self.url.clone());
        settings.index.collection.clone_from(&self.collection);
    }
}
