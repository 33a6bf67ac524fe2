//! Builds the concrete adapters named by the settings. Shared by `kb serve` and the CLI.

use crate::state::AppState;
use kb_answer::Answerer;
use kb_catalog::SqliteCatalog;
use kb_config::{EmbedderProvider, Settings};
use kb_core::{CatalogError, ChatModel, Embedder, IndexError, VectorIndex};
use kb_embed_local::{LocalEmbedError, LocalEmbedder};
use kb_engine::{EngineClient, EngineError, FanOut};
use kb_index::{EmbeddedIndex, QdrantServerIndex};
use kb_ingest::{IngestError, IngestOptions, Ingestor, SplitOptions};
use kb_usage::{UsageDb, UsageError, UsageLedger};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("loading the local embedding model: {0}")]
    LocalModel(#[from] LocalEmbedError),
    #[error("engine settings: {0}")]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("usage ledger: {0}")]
    Usage(#[from] UsageError),
}

/// The adapters behind the boundary traits.
#[derive(Clone)]
pub struct Components {
    pub catalog: Arc<SqliteCatalog>,
    pub index: Arc<dyn VectorIndex>,
    pub embedder: Arc<dyn Embedder>,
    pub chat: Option<Arc<dyn ChatModel>>,
    pub engine: Option<EngineClient>,
    /// Records every engine call in the catalog's SQLite file; [`close`](Self::close) writes
    /// what is queued.
    pub usage: Option<Arc<UsageLedger>>,
}

/// Open the vector index named by the settings (embedded folder or Qdrant server).
pub fn open_index(settings: &Settings) -> Result<Arc<dyn VectorIndex>, IndexError> {
    Ok(match &settings.index.url {
        Some(url) => Arc::new(QdrantServerIndex::connect(
            url,
            settings.index.api_key.as_ref().map(|k| k.expose_secret()),
            &settings.index.collection,
        )?),
        None => Arc::new(EmbeddedIndex::open(&settings.index_path())?),
    })
}

impl Components {
    /// Open everything. The index is opened first: it is the cheap check that fails when
    /// another process holds the embedded index.
    pub async fn build(settings: &Settings) -> Result<Self, WiringError> {
        let index = open_index(settings)?;
        let catalog = Arc::new(SqliteCatalog::open(&settings.catalog_path()).await?);
        let (engine, usage) = if settings.engine.endpoints.is_empty() {
            (None, None)
        } else {
            let engine = EngineClient::new(settings.engine.clone())?;
            // After the catalog: it has migrated the shared file, so the ledger finds nothing
            // to do.
            let db = UsageDb::open(&settings.catalog_path()).await?;
            let ledger = Arc::new(UsageLedger::start(db, &settings.usage));
            let recorders = FanOut::new(vec![
                Arc::new(crate::metrics::EngineMetrics),
                ledger.recorder(),
            ]);
            (
                Some(engine.with_recorder(Arc::new(recorders))),
                Some(ledger),
            )
        };
        let embedder: Arc<dyn Embedder> = match settings.embedder.provider {
            EmbedderProvider::Local => {
                let config = settings.embedder.local.clone();
                Arc::new(
                    tokio::task::spawn_blocking(move || LocalEmbedder::load(&config))
                        .await
                        .expect("BUG: model loading panicked")?,
                )
            }
            EmbedderProvider::Engine => Arc::new(
                engine
                    .as_ref()
                    .expect("BUG: validated settings have endpoints for an engine embedder")
                    .embedder(settings.embedder.engine.clone()),
            ),
        };
        let chat: Option<Arc<dyn ChatModel>> = match (&engine, settings.chat.enabled) {
            (Some(engine), true) => Some(Arc::new(engine.chat(settings.chat.model.clone()))),
            _ => None,
        };
        Ok(Self {
            catalog,
            index,
            embedder,
            chat,
            engine,
            usage,
        })
    }

    /// Write the queued usage records and close the databases.
    pub async fn close(&self) {
        if let Some(usage) = &self.usage {
            usage.close().await;
            usage.db().close().await;
        }
        self.catalog.close().await;
    }

    pub fn answerer(&self, settings: &Settings) -> Answerer {
        Answerer::new(
            self.embedder.clone(),
            self.index.clone(),
            self.chat.clone(),
            settings.answer.clone(),
        )
    }

    pub fn ingestor(&self, options: IngestOptions) -> Result<Ingestor, IngestError> {
        Ingestor::new(
            self.catalog.clone(),
            self.index.clone(),
            self.embedder.clone(),
            options,
        )
    }

    /// The HTTP state over these components.
    pub fn app_state(
        &self,
        settings: &Settings,
        admin_token: &SecretString,
    ) -> Result<AppState, IngestError> {
        Ok(AppState::new(
            self.answerer(settings),
            self.catalog.clone(),
            self.index.clone(),
            self.ingestor(ingest_options(settings))?,
            admin_token,
        ))
    }
}

/// Ingest options from the settings (the CLI overrides prune and dry-run per run).
pub fn ingest_options(settings: &Settings) -> IngestOptions {
    let i = &settings.ingest;
    IngestOptions {
        split: SplitOptions {
            chunk_tokens: i.chunk_tokens,
            overlap_tokens: i.overlap_tokens,
        },
        batch_size: i.batch_size,
        max_file_bytes: i.max_file_bytes,
        default_groups: i.default_groups.clone(),
        prune: false,
        dry_run: false,
    }
}
