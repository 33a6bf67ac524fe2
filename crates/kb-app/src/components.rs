//! The adapters behind kb-core's traits, opened from the settings.

use crate::generations::{IndexGenerations, SettingsGenerations};
use kb_answer::Answerer;
use kb_catalog::{CatalogLocation, CatalogStore, DatabaseUrl};
use kb_config::{EmbedderProvider, Settings};
use kb_core::{CatalogError, ChatModel, Embedder, IndexError, VectorIndex};
use kb_embed_local::{LocalEmbedError, LocalEmbedder};
use kb_engine::{EngineClient, EngineError, FanOut, UsageRecorder};
use kb_ingest::{IngestError, IngestOptions, Ingestor};
use kb_usage::{UsageDb, UsageError, UsageLedger};
use std::sync::Arc;

/// Why the components could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("loading the local embedding model")]
    LocalModel(#[from] LocalEmbedError),
    #[error("engine settings")]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("usage ledger")]
    Usage(#[from] UsageError),
}

/// The adapters behind the boundary traits.
#[derive(Clone)]
pub struct Components {
    /// The catalog and key store: the SQLite file or the Postgres database of the settings.
    pub catalog: Arc<CatalogStore>,
    pub index: Arc<dyn VectorIndex>,
    pub embedder: Arc<dyn Embedder>,
    pub chat: Option<Arc<dyn ChatModel>>,
    pub engine: Option<EngineClient>,
    /// Records every engine call in the catalog's database; [`close`](Self::close) writes
    /// what is queued.
    pub usage: Option<Arc<UsageLedger>>,
}

impl Components {
    /// Open everything. The catalog comes first: it names the index generation in use.
    pub async fn build(settings: &Settings) -> Result<Self, BuildError> {
        Self::build_recording(settings, Vec::new()).await
    }

    /// [`build`](Self::build), with `recorders` told of every engine call besides the usage
    /// ledger (e.g. the server's Prometheus metrics).
    pub async fn build_recording(
        settings: &Settings,
        mut recorders: Vec<Arc<dyn UsageRecorder>>,
    ) -> Result<Self, BuildError> {
        let location = Self::catalog_location(settings)?;
        let catalog = Arc::new(CatalogStore::open(&location).await?);
        let generation = kb_ingest::reindex::generation(catalog.as_ref()).await?;
        let index = match SettingsGenerations::new(settings).open(generation) {
            Ok(index) => index,
            Err(e) => {
                catalog.close().await;
                return Err(e.into());
            }
        };
        let (engine, usage) = if settings.engine.endpoints.is_empty() {
            (None, None)
        } else {
            let engine = EngineClient::new(settings.engine.clone())?;
            // After the catalog: it has migrated the shared database, so the ledger finds
            // nothing to do.
            let db = UsageDb::open_at(&location).await?;
            let ledger = Arc::new(UsageLedger::start(db, &settings.usage));
            recorders.push(ledger.recorder());
            let recorders = FanOut::new(recorders);
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

    /// Where the settings keep the catalog: the Postgres database of `catalog.url`, else the
    /// SQLite file of `catalog.path` (default `{data_dir}/kb.db`). The API keys and the usage
    /// ledger are there too.
    pub fn catalog_location(settings: &Settings) -> Result<CatalogLocation, CatalogError> {
        match &settings.catalog.url {
            Some(url) => DatabaseUrl::parse(url.clone())
                .map(CatalogLocation::Postgres)
                .map_err(|e| CatalogError::database("catalog.url", e)),
            None => Ok(CatalogLocation::File(settings.catalog_path())),
        }
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
}

/// Ingest options from the settings (the CLI and the admin route add each run's flags).
pub fn ingest_options(settings: &Settings) -> IngestOptions {
    let mut options = IngestOptions::from_config(&settings.ingest);
    // OCR results are kept beside the catalog unless configured elsewhere.
    if options.load_limits.ocr.cache_dir.is_none() {
        options.load_limits.ocr.cache_dir = Some(settings.data_dir.join("ocr-cache"));
    }
    // The engine embedder splits larger calls itself; a batch must be one request so that
    // retrying it never repeats a request that succeeded.
    if settings.embedder.provider == EmbedderProvider::Engine {
        options.pacing.batch_max_inputs = options
            .pacing
            .batch_max_inputs
            .min(settings.embedder.engine.batch_size);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_folder_is_named_once() {
        // Arrange
        let missing = LocalEmbedError::ModelDirMissing {
            dir: "models/none".into(),
        };

        // Act
        let error = BuildError::from(missing);

        // Assert
        let source = std::error::Error::source(&error).expect("the model error is the source");
        assert!(source.is::<LocalEmbedError>(), "{source:?}");
        let text = kb_core::error::chain(&error).to_string();
        assert_eq!(
            text.split(": ").take(3).collect::<Vec<_>>(),
            [
                "loading the local embedding model",
                "model folder models/none",
                "not found; run scripts/fetch-model.sh to download the default model, or set the model folder in the configuration"
            ],
        );
        assert_eq!(text.matches("models/none").count(), 1, "{text}");
    }
}
