//! `kb serve` assembled: the components (with every engine call counted in `/metrics`), the
//! handlers' state over them, and the bound listener.

use crate::state::{AppState, StateError};
use crate::{Application, metrics};
use kb_app::{BuildError, Components};
use kb_config::Settings;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("opening the knowledge base")]
    Open(#[source] BuildError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot bind {address}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// A server bound to its address, over open components.
pub struct Server {
    app: Application,
    components: Components,
}

/// The components `kb serve` runs on: those the settings name, with the engine calls also
/// counted in `/metrics`.
pub async fn open_components(settings: &Settings) -> Result<Components, BuildError> {
    Components::build_recording(settings, vec![Arc::new(metrics::EngineMetrics)]).await
}

impl Server {
    /// Open the components and bind `server.host:server.port` (port 0 picks a free one).
    /// `admin_token` is the server's own credential (see `kb_app::ServerInfo`).
    pub async fn start(
        settings: &Settings,
        admin_token: &SecretString,
    ) -> Result<Self, ServeError> {
        let components = open_components(settings).await.map_err(ServeError::Open)?;
        let started = Self::bind(settings, admin_token, &components).await;
        if started.is_err() {
            components.close().await;
        }
        let app = started?;
        Ok(Self { app, components })
    }

    async fn bind(
        settings: &Settings,
        admin_token: &SecretString,
        components: &Components,
    ) -> Result<Application, ServeError> {
        let state = AppState::from_components(components, settings, admin_token)?;
        Application::build(settings, state)
            .await
            .map_err(|source| ServeError::Bind {
                address: format!("{}:{}", settings.server.host, settings.server.port),
                source,
            })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    /// How many chunks the index holds (0 if it cannot say).
    pub async fn indexed_chunks(&self) -> u64 {
        self.components.index.count().await.unwrap_or(0)
    }

    /// Serve until `shutdown` resolves and finish the requests in flight. The components stay
    /// open until [`Stopped::close`]: whatever the caller does first (e.g. withdrawing
    /// `server.json`) does not wait for the usage ledger's queue to be written.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Stopped {
        let result = self.app.run_until(shutdown).await;
        Stopped {
            result,
            components: self.components,
        }
    }
}

/// A server that no longer takes requests.
#[must_use = "close it: the usage ledger's queue is written then"]
pub struct Stopped {
    result: std::io::Result<()>,
    components: Components,
}

impl Stopped {
    /// Write the queued usage records and close the databases; then say how serving ended.
    pub async fn close(self) -> std::io::Result<()> {
        self.components.close().await;
        self.result
    }
}
