//! `{data_dir}/server.json`: while `kb serve` runs, it says where the server listens and the
//! admin token by which the CLI sends it the commands that need the index it holds.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
        crate::private_files::create_dir(data_dir)?;
        let body = serde_json::to_vec_pretty(self).expect("BUG: server info serialises");
        crate::private_files::write_atomically(&Self::path(data_dir), &body)
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
