//! kb's settings, in layers: compiled-in defaults, then an optional TOML file
//! (`--config` / `KB_CONFIG`), then `KB__SECTION__KEY` environment variables
//! (e.g. `KB__SERVER__PORT=9000`, `KB__INDEX__URL=http://qdrant:6334`).
//!
//! The defaults run offline with no file at all: the in-process embedding model, the
//! embedded Qdrant engine and SQLite, all under `data_dir`. [`Settings::validate`] is called
//! at start-up and names the offending key. Secrets are `SecretString` and never printed.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use kb_answer::{AnswerMode, AnswerOptions};
use kb_embed_local::LocalEmbedderConfig;
use kb_engine::{EngineConfig, RemoteEmbedderOptions};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Folder for the catalog, the embedded index and server state.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub embedder: EmbedderSettings,
    pub engine: EngineConfig,
    pub chat: ChatSettings,
    pub index: IndexSettings,
    pub catalog: CatalogSettings,
    pub ingest: IngestSettings,
    pub answer: AnswerOptions,
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            server: ServerSettings::default(),
            embedder: EmbedderSettings::default(),
            engine: EngineConfig::default(),
            chat: ChatSettings::default(),
            index: IndexSettings::default(),
            catalog: CatalogSettings::default(),
            ingest: IngestSettings::default(),
            answer: AnswerOptions::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    pub request_timeout_secs: u64,
    pub max_body_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            request_timeout_secs: 60,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Which embedder turns text into vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderProvider {
    /// In-process model (offline default).
    #[default]
    Local,
    /// `POST /embeddings` on the configured engine endpoints.
    Engine,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderSettings {
    pub provider: EmbedderProvider,
    pub local: LocalEmbedderConfig,
    pub engine: RemoteEmbedderOptions,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// Use the engine's chat model for answers. Without it answers are extractive.
    pub enabled: bool,
    /// Model name sent instead of each endpoint's `chat_model`.
    pub model: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexSettings {
    /// Qdrant server gRPC URL (e.g. `http://localhost:6334`); unset = embedded index.
    pub url: Option<String>,
    pub api_key: Option<SecretString>,
    pub collection: String,
    /// Folder of the embedded index; default `{data_dir}/index`.
    pub path: Option<PathBuf>,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            url: None,
            api_key: None,
            collection: "kb_chunks".into(),
            path: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// SQLite file; default `{data_dir}/kb.db`.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    pub chunk_tokens: usize,
    pub overlap_tokens: usize,
    /// Chunks per embedding call.
    pub batch_size: usize,
    pub max_file_bytes: u64,
    /// Access groups of documents whose front matter names none.
    pub default_groups: Vec<String>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 0,
            batch_size: 32,
            max_file_bytes: 20 * 1024 * 1024,
            default_groups: vec!["all".into()],
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info` or `kb=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

impl Settings {
    /// Defaults, then `file` (or `KB_CONFIG`) if given, then `KB__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("KB_CONFIG").map(PathBuf::from));
        let mut figment = Figment::new();
        if let Some(file) = &file {
            if !file.is_file() {
                return Err(ConfigError::Load(format!(
                    "{}: no such file (given by --config or KB_CONFIG)",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        Self::from_figment(figment.merge(Env::prefixed("KB__").split("__")))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Check every value that can be wrong, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.host.trim().is_empty() {
            return Err(invalid("server.host", "must not be empty"));
        }
        if self.server.request_timeout_secs == 0 {
            return Err(invalid("server.request_timeout_secs", "must be at least 1"));
        }
        if self.ingest.chunk_tokens < 16 {
            return Err(invalid("ingest.chunk_tokens", "must be at least 16"));
        }
        if self.ingest.overlap_tokens * 2 >= self.ingest.chunk_tokens {
            return Err(invalid(
                "ingest.overlap_tokens",
                "must be under half of ingest.chunk_tokens",
            ));
        }
        if self.ingest.batch_size == 0 {
            return Err(invalid("ingest.batch_size", "must be at least 1"));
        }
        if self.ingest.default_groups.is_empty() {
            return Err(invalid(
                "ingest.default_groups",
                "name at least one group (\"all\" for everyone)",
            ));
        }
        let a = &self.answer;
        if a.top_k == 0 || a.top_k > a.max_top_k {
            return Err(invalid(
                "answer.top_k",
                "must be between 1 and answer.max_top_k",
            ));
        }
        if !(-1.0..=1.0).contains(&a.min_score) {
            return Err(invalid(
                "answer.min_score",
                "must be a cosine score in [-1, 1]",
            ));
        }
        if let Some(url) = &self.index.url {
            url::Url::parse(url)
                .map_err(|e| invalid("index.url", format!("{url:?} is not a URL: {e}")))?;
        }
        if self.index.collection.trim().is_empty() {
            return Err(invalid("index.collection", "must not be empty"));
        }
        self.engine
            .validate()
            .map_err(|e| invalid("engine", e.to_string()))?;
        let needs_engine = self.embedder.provider == EmbedderProvider::Engine || self.chat.enabled;
        if needs_engine && self.engine.endpoints.is_empty() {
            return Err(invalid(
                "engine.endpoints",
                "embedder.provider = \"engine\" or chat.enabled needs at least one endpoint",
            ));
        }
        if self.embedder.provider == EmbedderProvider::Engine {
            let e = &self.embedder.engine;
            if e.dimensions == 0 {
                return Err(invalid("embedder.engine.dimensions", "must be at least 1"));
            }
            if e.max_input_tokens < 64 {
                return Err(invalid(
                    "embedder.engine.max_input_tokens",
                    "must be at least 64",
                ));
            }
            if self
                .engine
                .endpoints
                .iter()
                .all(|p| p.embed_model.is_none())
            {
                return Err(invalid(
                    "engine.endpoints[].embed_model",
                    "embedder.provider = \"engine\" needs an endpoint with embed_model",
                ));
            }
        }
        if self.chat.enabled && self.engine.endpoints.iter().all(|p| p.chat_model.is_none()) {
            return Err(invalid(
                "engine.endpoints[].chat_model",
                "chat.enabled needs an endpoint with chat_model",
            ));
        }
        if a.mode == AnswerMode::Generative && !self.chat.enabled {
            return Err(invalid(
                "answer.mode",
                "\"generative\" needs chat.enabled = true and an engine endpoint",
            ));
        }
        Ok(())
    }

    pub fn catalog_path(&self) -> PathBuf {
        self.catalog
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kb.db"))
    }

    pub fn index_path(&self) -> PathBuf {
        self.index
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("index"))
    }
}

#[cfg(test)]
// figment::Jail's closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn load_with(jail: &figment::Jail, file: Option<&str>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Toml::file(jail.directory().join(file)));
        }
        Settings::from_figment(figment.merge(Env::prefixed("KB__").split("__")))
    }

    #[test]
    fn defaults_load_and_are_valid() {
        figment::Jail::expect_with(|jail| {
            let s = load_with(jail, None).expect("defaults are valid");
            assert_eq!(s.server.port, 8080);
            assert_eq!(s.embedder.provider, EmbedderProvider::Local);
            assert!(s.index.url.is_none());
            assert_eq!(s.catalog_path(), PathBuf::from("data/kb.db"));
            Ok(())
        });
    }

    #[test]
    fn environment_wins_over_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("kb.toml", "[server]\nport = 9000\nhost = \"0.0.0.0\"\n")?;
            jail.set_env("KB__SERVER__PORT", "9100");
            let s = load_with(jail, Some("kb.toml")).unwrap();
            assert_eq!(s.server.port, 9100);
            assert_eq!(s.server.host, "0.0.0.0");
            Ok(())
        });
    }

    #[test]
    fn invalid_values_name_their_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB__INGEST__CHUNK_TOKENS", "4");
            let err = load_with(jail, None).unwrap_err().to_string();
            assert!(err.contains("ingest.chunk_tokens"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("kb.toml", "[server]\nprot = 9000\n")?;
            let err = load_with(jail, Some("kb.toml")).unwrap_err().to_string();
            assert!(err.contains("prot"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn retrieval_mode_is_read_and_checked() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB__ANSWER__RETRIEVAL", "sparse");
            let s = load_with(jail, None).unwrap();
            assert_eq!(s.answer.retrieval, kb_core::Retrieval::Sparse);

            jail.set_env("KB__ANSWER__RETRIEVAL", "bm42");
            let err = load_with(jail, None).unwrap_err().to_string();
            assert!(err.to_lowercase().contains("answer.retrieval"), "{err}");
            assert!(err.contains("hybrid"), "names the choices: {err}");
            Ok(())
        });
    }

    #[test]
    fn engine_embedder_needs_an_endpoint() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB__EMBEDDER__PROVIDER", "engine");
            let err = load_with(jail, None).unwrap_err().to_string();
            assert!(err.contains("engine.endpoints"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn index_api_key_is_not_printed_in_debug() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB__INDEX__API_KEY", "very-secret-value");
            let s = load_with(jail, None).unwrap();
            assert!(!format!("{s:?}").contains("very-secret-value"));
            Ok(())
        });
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    #[test]
    fn the_example_file_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kb.example.toml");
        let from_file: Settings = Figment::new()
            .merge(Toml::file(&path))
            .extract()
            .expect("kb.example.toml parses");
        from_file.validate().unwrap();
        assert_eq!(
            format!("{from_file:?}"),
            format!("{:?}", Settings::default())
        );
    }
}
