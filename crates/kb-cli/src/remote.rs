//! Talking to a running `kb serve` that holds the embedded index.

use anyhow::{Context, bail};
use kb_app::ServerInfo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// A running server found through `{data_dir}/server.json`.
pub struct Remote {
    info: ServerInfo,
    http: reqwest::Client,
}

impl Remote {
    /// The server advertised in `data_dir`, if one is there.
    pub fn find(data_dir: &Path) -> Option<Self> {
        let info = ServerInfo::read(data_dir)?;
        Some(Self {
            info,
            http: reqwest::Client::new(),
        })
    }

    pub fn url(&self) -> &str {
        &self.info.url
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request
            .bearer_auth(&self.info.admin_token)
            .send()
            .await
            .with_context(|| {
                format!(
                    "the embedded index is locked by a kb server at {} that does not answer; if it crashed, stop it and remove {}",
                    self.info.url,
                    ServerInfo::path(Path::new("<data_dir>")).display()
                )
            })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .context("reading the server's answer")?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            bail!("the running server answered {status}: {message}");
        }
        serde_json::from_str(&body).context("the running server's answer is not valid JSON")
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(
            self.http
                .post(format!("{}{path}", self.info.url))
                .json(body),
        )
        .await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(format!("{}{path}", self.info.url)))
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .delete(format!("{}{path}", self.info.url))
            .bearer_auth(&self.info.admin_token)
            .send()
            .await
            .context("the running server does not answer")?;
        if !response.status().is_success() {
            bail!(
                "the running server answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }
}
