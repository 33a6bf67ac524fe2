//! Shared state of the HTTP handlers.

use crate::auth::Authenticator;
use crate::ingest_roots::{IngestRootError, IngestRoots};
use axum::extract::FromRef;
use kb_answer::Answerer;
use kb_app::{Components, ingest_options};
use kb_config::Settings;
use kb_core::{Catalog, VectorIndex};
use kb_engine::EngineClient;
use kb_ingest::{IngestError, Ingestor};
use secrecy::SecretString;
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
    /// What `POST /v1/admin/ingest` may read (`ingest.roots`); empty: only the server token
    /// may ingest over HTTP.
    pub ingest_roots: Arc<IngestRoots>,
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
            ingest_roots: Arc::new(IngestRoots::default()),
        }
    }

    /// The same state, with admin ingest over HTTP confined to `roots`.
    pub fn with_ingest_roots(mut self, roots: IngestRoots) -> Self {
        self.ingest_roots = Arc::new(roots);
        self
    }

    /// The same state, with `/readyz` also requiring a usable route to `engine`.
    pub fn with_engine(mut self, engine: Option<EngineClient>) -> Self {
        self.engine = engine;
        self
    }

    /// The state over `components`, as the settings configure it. Fails if a folder of
    /// `ingest.roots` cannot be resolved. With roots, the server's ingests never follow links
    /// out of the folders they ingest, whatever `ingest.follow_symlinks` says: such a link
    /// could lead out of the roots.
    pub fn from_components(
        components: &Components,
        settings: &Settings,
        admin_token: &SecretString,
    ) -> Result<Self, StateError> {
        let roots = IngestRoots::resolve(&settings.ingest.roots)?;
        let mut options = ingest_options(settings);
        if !roots.is_empty() && options.follow_symlinks {
            tracing::warn!(
                "ingest.follow_symlinks is ignored by ingests over HTTP while ingest.roots is set"
            );
            options.follow_symlinks = false;
        }
        Ok(Self::new(
            components.answerer(settings),
            components.catalog.clone(),
            components.index.clone(),
            components.ingestor(options)?,
            Authenticator::new(components.catalog.clone(), admin_token, &settings.server),
        )
        .with_engine(components.engine.clone())
        .with_ingest_roots(roots))
    }
}

/// What the [`crate::auth`] extractors take from the state.
impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Why the state could not be made from the components.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    IngestRoots(#[from] IngestRootError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}
