//! Shared state of the HTTP handlers, and the `server.json` file through which the CLI
//! finds a running server (to send it ingest and ask commands while it holds the index).

use crate::auth::Authenticator;
use kb_answer::Answerer;
use kb_core::{Catalog, VectorIndex};
use kb_engine::EngineClient;
use kb_ingest::Ingestor;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub answerer: Answerer,
    pub catalog: Arc<dyn Catalog>,
    pub index: Arc<dyn VectorIndex>,
    pub ingestor: Ingestor,
    /// One ingest at a time per server.
    pub ingest_lock: Arc<tokio::sync::Mutex<()>>,
    /// Credentials, roles and rate limits ([`crate::auth`]).
    pub auth: Arc<Authenticator>,
    /// The engine client, when endpoints are configured: `/readyz` reports its routes.
    pub engine: Option<EngineClient>,
}

impl AppState {
    pub fn new(
        answerer: Answerer,
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        ingestor: Ingestor,
        auth: Authenticator,
    ) -> Self {
        Self {
            answerer,
            catalog,
            index,
            ingestor,
            ingest_lock: Arc::new(tokio::sync::Mutex::new(())),
            auth: Arc::new(auth),
            engine: None,
        }
    }

    /// The same state, with `/readyz` also requiring a usable route to `engine`.
    pub fn with_engine(mut self, engine: Option<EngineClient>) -> Self {
        self.engine = engine;
        self
    }
}

/// A fresh random admin token.
pub fn generate_token() -> SecretString {
    let bytes: [u8; 24] = rand::random();
    SecretString::from(format!("kbadm_{}", hex::encode(bytes)))
}

/// Written to `{data_dir}/server.json` (mode 0600) while `kb serve` runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub url: String,
    pub pid: u32,
    pub admin_token: String,
}

impl ServerInfo {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("server.json")
    }

    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let path = Self::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(self).expect("BUG: server info serialises");
        #[cfg(unix)]
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&body)?;
        }
        #[cfg(not(unix))]
        std::fs::write(&tmp, &body)?;
        std::fs::rename(tmp, path)
    }

    pub fn read(data_dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(Self::path(data_dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Remove the file if it still describes this process.
    pub fn remove(data_dir: &Path) {
        if Self::read(data_dir).is_some_and(|i| i.pid == std::process::id()) {
            let _ = std::fs::remove_file(Self::path(data_dir));
        }
    }
}
