//! Errors of setting the engine client up. Failures of calls are [`kb_core::ModelError`]s.

/// The engine client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A setting is wrong; `key` is its full name, e.g. `engine.endpoints[0].base_url`.
    /// `source` is the parser's error when the value does not parse.
    #[error("{key}: {problem}")]
    Config {
        key: String,
        problem: String,
        #[source]
        source: Option<url::ParseError>,
    },
    /// The HTTP client could not be built (TLS back-end initialisation).
    #[error("engine http client could not be built")]
    Client(#[source] reqwest::Error),
}

impl EngineError {
    pub(crate) fn config(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            problem: problem.into(),
            source: None,
        }
    }
}
