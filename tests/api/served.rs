//! `kb serve` as the real binary in a child process, for the tests that judge the process from
//! outside (its files, signals, exit code and log) or need a metrics recorder of its own.

use crate::helpers::model_dir;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `kb` command over `data_dir` (with the settings file `config`, if any) that reads no
/// other configuration and finds the local model in the tests' model folder.
pub fn kb_command(data_dir: &Path, config: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kb"));
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env("KB__EMBEDDER__LOCAL__MODEL_DIR", model_dir())
        .env_remove("KB_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// A running `kb serve --port 0`, killed if the test ends without stopping it.
pub struct KbServe {
    child: Child,
    pub url: String,
    pub admin_token: String,
    /// Where its stderr goes; removed with it.
    log: tempfile::NamedTempFile,
    pub client: reqwest::Client,
}

impl KbServe {
    /// `kb serve` over `data_dir` (with `config`, if any), once it advertises itself in
    /// `server.json`.
    pub async fn start(data_dir: &Path, config: Option<&Path>) -> Self {
        Self::start_with(data_dir, config, |_| {}).await
    }

    /// [`start`](Self::start), with `configure` adding to the command (e.g. `RUST_LOG`).
    pub async fn start_with(
        data_dir: &Path,
        config: Option<&Path>,
        configure: impl FnOnce(&mut Command),
    ) -> Self {
        let log = tempfile::NamedTempFile::new().expect("create the log file");
        let mut cmd = kb_command(data_dir, config);
        cmd.args(["serve", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("open the log file"));
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("spawn kb serve");
        let read_log = || std::fs::read_to_string(log.path()).unwrap_or_default();
        let info = data_dir.join("server.json");
        let started = Instant::now();
        let info: Value = loop {
            // server.json is written under a temporary name and renamed: whole once it exists.
            if let Ok(text) = std::fs::read_to_string(&info) {
                break serde_json::from_str(&text).expect("server.json is JSON");
            }
            if let Some(status) = child.try_wait().expect("poll kb serve") {
                panic!("kb serve exited ({status}) before serving:\n{}", read_log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "kb serve did not write {} within 120 s:\n{}",
                info.display(),
                read_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self {
            child,
            url: info["url"]
                .as_str()
                .expect("url in server.json")
                .trim_end_matches('/')
                .to_owned(),
            admin_token: info["admin_token"]
                .as_str()
                .expect("admin_token in server.json")
                .to_owned(),
            log,
            client: reqwest::Client::new(),
        }
    }

    /// `POST path` with `credential`: the status and the body (JSON, else its text).
    pub async fn post_as(&self, credential: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(credential)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST path` with the server's own admin token.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(&self.admin_token, path, body).await
    }

    /// `GET path` with no credential: the status and the body's text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).expect("read the server's log")
    }

    /// Send it SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// The peak resident memory of the process so far (VmHWM, KiB), where /proc tells it.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILL: no shutdown, no goodbye to the requests in flight.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL kb serve");
        self.child.wait().expect("reap kb serve");
    }

    /// Wait for the process to exit (at most `limit`).
    pub async fn wait(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll kb serve") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "kb serve did not exit within {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for KbServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
