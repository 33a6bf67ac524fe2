//! Where each generation of the vector index lives. `kb reindex` builds a new generation
//! beside the one in use and switches the catalog to it (see [`crate::reindex`]); generation
//! 0 is the configured folder or collection, generation n a sibling named with `-gen{n}`
//! (folder) or `_gen{n}` (collection).

use async_trait::async_trait;
use kb_config::Settings;
use kb_core::{IndexError, VectorIndex};
use kb_index::{CollectionLayout, EmbeddedIndex, QdrantServerIndex};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::sync::Arc;

/// Opens and deletes index generations; [`SettingsGenerations`] is the real one.
#[async_trait]
pub trait IndexGenerations: Send + Sync {
    /// Where `generation` lives, for messages ("folder /data/index-gen1").
    fn location(&self, generation: u64) -> String;

    /// Open the index of `generation`, creating it if it does not exist.
    fn open(&self, generation: u64) -> Result<Arc<dyn VectorIndex>, IndexError>;

    /// Delete the index of `generation` (a missing one is fine). Nobody may hold it open.
    async fn delete(&self, generation: u64) -> Result<(), IndexError>;
}

/// Where the index of one generation lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLocation {
    Folder(PathBuf),
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

/// The generations of the index the settings name: embedded folders, or collections on the
/// Qdrant server of `index.url`.
#[derive(Debug, Clone, Copy)]
pub struct SettingsGenerations<'a> {
    settings: &'a Settings,
}

impl<'a> SettingsGenerations<'a> {
    pub fn new(settings: &'a Settings) -> Self {
        Self { settings }
    }

    pub fn index_location(&self, generation: u64) -> IndexLocation {
        let settings = self.settings;
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

    fn connect(&self, url: &str, name: &str) -> Result<QdrantServerIndex, IndexError> {
        let index = &self.settings.index;
        let key = index.api_key.as_ref();
        Ok(
            QdrantServerIndex::connect(url, key.map(|k| k.expose_secret()), name)?.with_layout(
                CollectionLayout {
                    shard_number: index.shard_number,
                    replication_factor: index.replication_factor,
                    write_consistency_factor: index.write_consistency_factor,
                },
            ),
        )
    }
}

#[async_trait]
impl IndexGenerations for SettingsGenerations<'_> {
    fn location(&self, generation: u64) -> String {
        self.index_location(generation).to_string()
    }

    fn open(&self, generation: u64) -> Result<Arc<dyn VectorIndex>, IndexError> {
        Ok(match self.index_location(generation) {
            IndexLocation::Collection { url, name } => Arc::new(self.connect(&url, &name)?),
            IndexLocation::Folder(path) => Arc::new(EmbeddedIndex::open(&path)?),
        })
    }

    async fn delete(&self, generation: u64) -> Result<(), IndexError> {
        match self.index_location(generation) {
            IndexLocation::Collection { url, name } => {
                self.connect(&url, &name)?.delete_collection().await
            }
            IndexLocation::Folder(path) => match std::fs::remove_dir_all(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(IndexError::other_because(
                        format!("cannot delete index folder {}", path.display()),
                        e,
                    ))
                }
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_generations_live_beside_the_configured_folder_or_collection() {
        let mut settings = Settings {
            data_dir: PathBuf::from("/srv/kb"),
            ..Settings::default()
        };
        let folders = SettingsGenerations::new(&settings);
        assert_eq!(
            folders.index_location(0),
            IndexLocation::Folder(settings.index_path())
        );
        assert_eq!(
            folders.index_location(2),
            IndexLocation::Folder(settings.index_path().with_file_name("index-gen2"))
        );

        settings.index.url = Some("http://qdrant:6334".into());
        settings.index.collection = "kb".into();
        let collections = SettingsGenerations::new(&settings);
        assert_eq!(
            collections.location(0),
            "collection `kb` on http://qdrant:6334"
        );
        assert_eq!(
            collections.location(3),
            "collection `kb_gen3` on http://qdrant:6334"
        );
    }
}
