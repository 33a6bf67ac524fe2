//! Builds the concrete adapters named by the settings. Shared by `kb serve` and the CLI.

use crate::auth::Authenticator;
use crate::state::{AppState, IngestRootError, IngestRoots};
use kb_answer::Answerer;
use kb_catalog::SqliteCatalog;
use kb_config::{EmbedderProvider, Settings};
use kb_core::{CatalogError, ChatModel, Embedder, IndexError, VectorIndex};
use kb_embed_local::{LocalEmbedError, LocalEmbedder};
use kb_engine::{EngineClient, EngineError, FanOut};
use kb_index::{EmbeddedIndex, QdrantServerIndex};
use kb_ingest::{GroupCommit, IngestError, IngestOptions, Ingestor, Pacing, SplitOptions};
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
    #[error(transparent)]
    IngestRoots(#[from] IngestRootError),
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

/// Where the index of one generation lives (see `kb_ingest::reindex`): generation 0 is the
/// configured folder or collection, generation n a sibling named with `-gen{n}` / `_gen{n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLocation {
    Folder(std::path::PathBuf),
    Collection { url: String, name: String },
}

impl std::fmt::Display for IndexLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(path) => write!(f, "folder {}", path.display()),
            Self::Collection { url, name } => write!(f, "collection `{name}` on {url}"),
        }
    }
}

pub fn index_location(settings: &Settings, generation: u64) -> IndexLocation {
    match &settings.index.url {
        Some(url) => IndexLocation::Collection {
            url: url.clone(),
            name: match generation {
                0 => settings.index.collection.clone(),
                n => format!("{}_gen{n}", settings.index.collection),
            },
        },
        None => {
            let path = settings.index_path();
            IndexLocation::Folder(match generation {
                0 => path,
                n => {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "index".to_owned());
                    path.with_file_name(format!("{name}-gen{n}"))
                }
            })
        }
    }
}

/// Open the vector index of `generation`.
pub fn open_index(
    settings: &Settings,
    generation: u64,
) -> Result<Arc<dyn VectorIndex>, IndexError> {
    Ok(match index_location(settings, generation) {
        IndexLocation::Collection { url, name } => Arc::new(QdrantServerIndex::connect(
            &url,
            settings.index.api_key.as_ref().map(|k| k.expose_secret()),
            &name,
        )?),
        IndexLocation::Folder(path) => Arc::new(EmbeddedIndex::open(&path)?),
    })
}

/// Delete the index of `generation` (a missing one is fine). The caller must not hold it open.
pub async fn delete_index(settings: &Settings, generation: u64) -> Result<(), IndexError> {
    match index_location(settings, generation) {
        IndexLocation::Collection { url, name } => {
            QdrantServerIndex::connect(
                &url,
                settings.index.api_key.as_ref().map(|k| k.expose_secret()),
                &name,
            )?
            .delete_collection()
            .await
        }
        IndexLocation::Folder(path) => match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(IndexError::Other(format!(
                "cannot delete index folder {}: {e}",
                path.display()
            ))),
            _ => Ok(()),
        },
    }
}

impl Components {
    /// Open everything. The catalog comes first: it names the index generation in use.
    pub async fn build(settings: &Settings) -> Result<Self, WiringError> {
        let catalog = Arc::new(SqliteCatalog::open(&settings.catalog_path()).await?);
        let generation = kb_ingest::reindex::generation(catalog.as_ref()).await?;
        let index = match open_index(settings, generation) {
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

    /// The HTTP state over these components. Fails if a folder of `ingest.roots` cannot be
    /// resolved. With roots, the server's ingests never follow links out of the folders they
    /// ingest, whatever `ingest.follow_symlinks` says: such a link could lead out of the roots.
    pub fn app_state(
        &self,
        settings: &Settings,
        admin_token: &SecretString,
    ) -> Result<AppState, WiringError> {
        let roots = IngestRoots::resolve(&settings.ingest.roots)?;
        let mut options = ingest_options(settings);
        if !roots.is_empty() && options.follow_symlinks {
            tracing::warn!(
                "ingest.follow_symlinks is ignored by ingests over HTTP while ingest.roots is set"
            );
            options.follow_symlinks = false;
        }
        Ok(AppState::new(
            self.answerer(settings),
            self.catalog.clone(),
            self.index.clone(),
            self.ingestor(options)?,
            Authenticator::new(self.catalog.clone(), admin_token, &settings.server),
        )
        .with_engine(self.engine.clone())
        .with_ingest_roots(roots))
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
        pacing: Pacing {
            // The engine embedder splits larger calls itself; a batch must be one request so
            // that retrying it never repeats a request that succeeded.
            batch_max_inputs: match settings.embedder.provider {
                EmbedderProvider::Engine => {
                    i.batch_max_inputs.min(settings.embedder.engine.batch_size)
                }
                EmbedderProvider::Local => i.batch_max_inputs,
            },
            batch_max_tokens: i.batch_max_tokens,
            concurrency: i.concurrency,
            batch_retries: i.batch_retries,
        },
        max_file_bytes: i.max_file_bytes,
        default_groups: i.default_groups.clone(),
        default_tags: Vec::new(),
        default_owner: None,
        prune: false,
        follow_symlinks: i.follow_symlinks,
        dry_run: false,
        group_commit: GroupCommit::default(),
    }
}
