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
use kb_core::error::{BoxError, chain};
use kb_embed_local::LocalEmbedderConfig;
use kb_engine::{EngineConfig, EngineError, RemoteEmbedderOptions};
use kb_ingest::IngestConfig;
use kb_usage::UsageConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    /// `source` is the parser's error when the value does not parse.
    #[error("configuration key {key}: {message}")]
    Invalid {
        key: String,
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

/// An engine setting error, keeping the key it names and the cause.
fn engine_invalid(error: EngineError) -> ConfigError {
    match error {
        EngineError::Config {
            key,
            problem,
            source,
        } => ConfigError::Invalid {
            key,
            message: problem,
            source: source.map(Into::into),
        },
        other => invalid("engine", chain(&other).to_string()),
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
        source: None,
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
    pub ingest: IngestConfig,
    pub answer: AnswerOptions,
    pub telemetry: TelemetrySettings,
    pub usage: UsageConfig,
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
            ingest: IngestConfig::default(),
            answer: AnswerOptions::default(),
            telemetry: TelemetrySettings::default(),
            usage: UsageConfig::default(),
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
    /// How long a server trusts what it looked up about an API key: a new key works at once, a
    /// revoked one stops working within this many seconds on every replica.
    pub key_cache_secs: u64,
    /// Requests per minute each API key may make to one server process; 0 turns limits off.
    /// The server's own admin token (used by the local CLI) is not limited.
    pub rate_limit_per_minute: u32,
    /// Requests a key may make in a quick burst before the per-minute pace applies.
    pub rate_limit_burst: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            request_timeout_secs: 60,
            max_body_bytes: 1024 * 1024,
            key_cache_secs: 30,
            rate_limit_per_minute: 120,
            rate_limit_burst: 20,
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
    /// Logical model name of the answers: endpoints serving it are used, each sent its own
    /// model id for it; `None`: `chat` (each endpoint's `chat_model`).
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
    /// On a Qdrant cluster, the shards of the collection kb creates (default: the server's,
    /// one per node at creation in distributed mode).
    pub shard_number: Option<u32>,
    /// Copies of each shard on different nodes (default 1: losing a node loses its shards).
    /// 2 or more keeps every shard readable and writable with a node down.
    pub replication_factor: Option<u32>,
    /// How many copies of a shard must confirm a write before it returns (default 1); at most
    /// `replication_factor`. With `replication_factor` = 2 keep it at 1 to write through the
    /// loss of a node.
    pub write_consistency_factor: Option<u32>,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            url: None,
            api_key: None,
            collection: "kb_chunks".into(),
            path: None,
            shard_number: None,
            replication_factor: None,
            write_consistency_factor: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// SQLite file; default `{data_dir}/kb.db`. Not together with `url`.
    pub path: Option<PathBuf>,
    /// A Postgres database instead of the SQLite file, for several `kb serve` replicas and
    /// `kb ingest` processes to share: `postgres://user:password@host:port/database`
    /// (`KB__CATALOG__URL`). The catalog, the API keys and the usage ledger live there. Never
    /// printed: messages show it with the password as `***`.
    pub url: Option<SecretString>,
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
    /// The collection layout settings: whole numbers from 1, for a server only, and no more
    /// write confirmations than copies.
    fn validate_index_layout(&self) -> Result<(), ConfigError> {
        let index = &self.index;
        for (key, value) in [
            ("index.shard_number", index.shard_number),
            ("index.replication_factor", index.replication_factor),
            (
                "index.write_consistency_factor",
                index.write_consistency_factor,
            ),
        ] {
            match value {
                Some(0) => return Err(invalid(key, "must be at least 1")),
                Some(_) if index.url.is_none() => {
                    return Err(invalid(
                        key,
                        "applies to a Qdrant server (set index.url); the embedded index is one shard in one copy",
                    ));
                }
                _ => {}
            }
        }
        if let Some(writes) = index.write_consistency_factor
            && writes > index.replication_factor.unwrap_or(1)
        {
            return Err(invalid(
                "index.write_consistency_factor",
                format!(
                    "{writes} is more than index.replication_factor ({}): no write could ever be confirmed",
                    index.replication_factor.unwrap_or(1)
                ),
            ));
        }
        Ok(())
    }

    /// The catalog: a Postgres URL (never repeated in a message), or a SQLite path, not both.
    fn validate_catalog(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.catalog.url else {
            return Ok(());
        };
        if self.catalog.path.is_some() {
            return Err(invalid(
                "catalog.url",
                "set either catalog.url (a Postgres database) or catalog.path (a SQLite file), not both",
            ));
        }
        let text = url.expose_secret().trim();
        let postgres = ["postgres://", "postgresql://"].iter().any(|scheme| {
            text.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        });
        if !postgres {
            return Err(invalid(
                "catalog.url",
                "must start with postgres:// or postgresql:// (a SQLite file is catalog.path)",
            ));
        }
        // The parser's errors name the problem, never the text (which holds the password).
        match url::Url::parse(text) {
            Err(e) => Err(ConfigError::Invalid {
                key: "catalog.url".to_owned(),
                message: "is not a URL; write it as postgres://user:password@host:port/database"
                    .to_owned(),
                source: Some(Box::new(e)),
            }),
            Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => Err(invalid(
                "catalog.url",
                "names no host; write it as postgres://user:password@host:port/database",
            )),
            Ok(_) => Ok(()),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.host.trim().is_empty() {
            return Err(invalid("server.host", "must not be empty"));
        }
        if self.server.request_timeout_secs == 0 {
            return Err(invalid("server.request_timeout_secs", "must be at least 1"));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        if self.server.key_cache_secs > 3600 {
            return Err(invalid(
                "server.key_cache_secs",
                "must be at most 3600 (a revoked key works until its cache entry expires)",
            ));
        }
        if self.server.rate_limit_per_minute > 0 && self.server.rate_limit_burst == 0 {
            return Err(invalid(
                "server.rate_limit_burst",
                "must be at least 1 while server.rate_limit_per_minute is set",
            ));
        }
        self.ingest
            .validate()
            .map_err(|e| invalid(&format!("ingest.{}", e.key), e.problem))?;
        let a = &self.answer;
        if a.max_question_chars == 0 {
            return Err(invalid("answer.max_question_chars", "must be at least 1"));
        }
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
        self.validate_index_layout()?;
        self.validate_catalog()?;
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
            let name = e.model_alias.as_deref().unwrap_or("embed");
            self.engine
                .check_served("embedder.engine.model_alias", name)
                .map_err(engine_invalid)?;
        }
        if self.chat.enabled {
            let name = self.chat.model.as_deref().unwrap_or("chat");
            self.engine
                .check_served("chat.model", name)
                .map_err(engine_invalid)?;
        }
        self.usage
            .validate()
            .map_err(|e| invalid("usage", e.to_string()))?;
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

    #[test]
    fn a_base_url_that_does_not_parse_keeps_the_parser_error_as_cause() {
        // Arrange
        let error = EngineError::Config {
            key: "engine.endpoints[0].base_url".into(),
            problem: "not a valid URL".into(),
            source: Some(url::ParseError::RelativeUrlWithoutBase),
        };

        // Act
        let error = engine_invalid(error);

        // Assert
        let source = std::error::Error::source(&error).expect("the parse error is the source");
        assert!(source.is::<url::ParseError>(), "{source:?}");
        assert_eq!(
            chain(&error).to_string(),
            "configuration key engine.endpoints[0].base_url: not a valid URL: \
             relative URL without a base"
        );
    }

    fn load_with(jail: &figment::Jail, file: Option<&str>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Toml::file(jail.directory().join(file)));
        }
        Settings::from_figment(figment.merge(Env::prefixed("KB__").split("__")))
    }

    /// Load `toml` as the settings file.
    fn load_toml(jail: &figment::Jail, toml: &str) -> Result<Settings, ConfigError> {
        jail.create_file("kb.toml", toml)
            .expect("BUG: the jail's folder is writable");
        load_with(jail, Some("kb.toml"))
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
    fn a_cluster_layout_is_checked_against_the_server_and_itself() {
        figment::Jail::expect_with(|jail| {
            let server = "[index]\nurl = \"http://127.0.0.1:6334\"\n";
            let s = load_toml(
                jail,
                &format!("{server}shard_number = 3\nreplication_factor = 2\nwrite_consistency_factor = 1\n"),
            )
            .expect("a valid layout");
            assert_eq!(
                (
                    s.index.shard_number,
                    s.index.replication_factor,
                    s.index.write_consistency_factor
                ),
                (Some(3), Some(2), Some(1))
            );

            for (toml, key, says) in [
                (
                    "[index]\nreplication_factor = 2\n",
                    "index.replication_factor",
                    "set index.url",
                ),
                (
                    &format!("{server}shard_number = 0\n") as &str,
                    "index.shard_number",
                    "at least 1",
                ),
                (
                    &format!("{server}replication_factor = 2\nwrite_consistency_factor = 3\n"),
                    "index.write_consistency_factor",
                    "more than index.replication_factor (2)",
                ),
                (
                    &format!("{server}write_consistency_factor = 2\n"),
                    "index.write_consistency_factor",
                    "more than index.replication_factor (1)",
                ),
            ] {
                let err = load_toml(jail, toml).unwrap_err().to_string();
                assert!(err.contains(key) && err.contains(says), "{toml}: {err}");
            }
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
    fn limits_are_validated_with_their_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB__SERVER__RATE_LIMIT_BURST", "0");
            let err = load_with(jail, None).unwrap_err().to_string();
            assert!(err.contains("server.rate_limit_burst"), "{err}");
            jail.set_env("KB__SERVER__RATE_LIMIT_PER_MINUTE", "0");
            load_with(jail, None).expect("no limit needs no burst");
            jail.set_env("KB__SERVER__KEY_CACHE_SECS", "86400");
            let err = load_with(jail, None).unwrap_err().to_string();
            assert!(err.contains("server.key_cache_secs"), "{err}");
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

    /// An engine endpoint table, for the keys that follow it to complete.
    const ENDPOINT: &str =
        "[[engine.endpoints]]\nname = \"a\"\nbase_url = \"http://127.0.0.1:1/v1\"\n";

    #[test]
    fn a_chat_model_no_endpoint_serves_is_refused_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            let chat = "[chat]\nenabled = true\nmodel = \"smart\"\n";
            let unserved = format!("{chat}{ENDPOINT}chat_model = \"gpt-4o-mini\"\n");
            let served = format!("{chat}{ENDPOINT}models = {{ smart = \"gpt-4o\" }}\n");

            let err = load_toml(jail, &unserved).unwrap_err().to_string();

            assert_eq!(
                err,
                "configuration key chat.model: no engine endpoint serves the model \"smart\"; map it on an endpoint: models.smart = \"<model id>\""
            );
            assert!(load_toml(jail, &served).is_ok());
            Ok(())
        });
    }

    #[test]
    fn an_engine_embedder_without_an_embed_model_is_refused_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            let toml = format!(
                "[embedder]\nprovider = \"engine\"\n{ENDPOINT}chat_model = \"gpt-4o-mini\"\n"
            );

            let err = load_toml(jail, &toml).unwrap_err().to_string();

            assert!(
                err.starts_with("configuration key embedder.engine.model_alias: no engine endpoint serves the model \"embed\""),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn prices_load_from_the_file_and_negative_ones_are_refused() {
        figment::Jail::expect_with(|jail| {
            let s = load_toml(
                jail,
                "[usage.prices.\"gpt-4o\"]\ninput_per_million = 2.5\noutput_per_million = 10\n",
            )
            .unwrap();
            assert_eq!(s.usage.prices["gpt-4o"].input_per_million, 2.5);
            let err = load_toml(
                jail,
                "[usage.prices.m]\ninput_per_million = -1\noutput_per_million = 0\n",
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("usage.prices.\"m\".input_per_million: must be a finite number"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn source_urls_load_and_a_template_that_cannot_make_links_is_refused_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            let s = load_toml(
                jail,
                "[answer]\nsource_urls = [{ root = \"/srv/handbook\", url = \"https://wiki.example.com/hb/{path}\" }]\n",
            )
            .unwrap();
            assert_eq!(
                s.answer
                    .source_urls
                    .url_for("/srv/handbook/HR/leave policy.md"),
                Some("https://wiki.example.com/hb/HR/leave%20policy.md".to_owned())
            );

            let err = load_toml(
                jail,
                "[answer]\nsource_urls = [{ root = \"/srv/handbook\", url = \"https://{path}/\" }]\n",
            )
            .unwrap_err()
            .to_string();

            assert!(
                err.contains(
                    "answer.source_urls[0]: url \"https://{path}/\" puts {path} in the host"
                ),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_postgres_catalog_url_comes_from_the_environment_and_is_not_printed() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "KB__CATALOG__URL",
                "postgresql://kb:pg-secret-pw@db.internal:5432/kb",
            );
            let s = load_with(jail, None).unwrap();
            assert!(s.catalog.url.is_some());
            assert!(!format!("{s:?}").contains("pg-secret-pw"));
            Ok(())
        });
    }

    #[test]
    fn a_catalog_url_must_be_postgres_and_not_beside_a_path() {
        figment::Jail::expect_with(|jail| {
            let both = load_toml(
                jail,
                "[catalog]\npath = \"kb.db\"\nurl = \"postgres://kb:pw-one@h/kb\"\n",
            )
            .unwrap_err()
            .to_string();
            assert!(
                both.starts_with("configuration key catalog.url: set either catalog.url"),
                "{both}"
            );
            let sqlite = load_toml(jail, "[catalog]\nurl = \"sqlite://pw-two/kb.db\"\n")
                .unwrap_err()
                .to_string();
            assert!(
                sqlite.contains("must start with postgres:// or postgresql://"),
                "{sqlite}"
            );
            let broken = load_toml(
                jail,
                "[catalog]\nurl = \"postgres://kb:pw-three@[::1/kb\"\n",
            )
            .unwrap_err();
            let text = chain(&broken).to_string();
            assert!(text.contains("catalog.url: is not a URL"), "{text}");
            let hostless = load_toml(jail, "[catalog]\nurl = \"postgres:///kb\"\n")
                .unwrap_err()
                .to_string();
            assert!(hostless.contains("names no host"), "{hostless}");
            for (error, password) in [(&both, "pw-one"), (&sqlite, "pw-two"), (&text, "pw-three")] {
                assert!(!error.contains(password), "{error}");
            }
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
