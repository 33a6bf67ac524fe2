//! The `[engine]` section of the settings: endpoints, retry policy, timeouts, circuit breaker.

use crate::error::EngineError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// What an API key serialises to: keys never leave the process through `Serialize` either.
pub const REDACTED: &str = "[redacted]";

/// Everything the engine client needs: where the engines are, how hard to retry, how long to wait.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// OpenAI-compatible engines (vLLM, TEI, llama.cpp, a gateway, ...), used in turn by weight.
    pub endpoints: Vec<EndpointConfig>,
    pub retry: RetryConfig,
    pub timeouts: TimeoutConfig,
    pub breaker: BreakerConfig,
}

/// One OpenAI-compatible engine.
///
/// It serves the logical model names it maps to one of its model ids: `embed_model` is the id of
/// the name `embed` (what the embedder uses unless `embedder.engine.model_alias` names another),
/// `chat_model` the id of `chat` (what answers use unless `chat.model` names another), and
/// `models` maps any other name (`{ smart = "gpt-4o" }`). A name that is one of the endpoint's
/// model ids is served too, as itself. Switching vendors or models is thus a change of these
/// maps only. Each API key
/// is a separate route (an endpoint without keys is one route without authentication); a key the
/// engine refuses (401/403) is disabled until restart and the other keys carry on.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// Unique name, used in logs and errors (never the key).
    pub name: String,
    /// Base URL up to and including the version, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...`; serialised as [`REDACTED`].
    #[serde(serialize_with = "serialize_redacted")]
    pub api_keys: Vec<SecretString>,
    /// Share of the calls relative to the other endpoints (at least 1).
    pub weight: u32,
    /// The model id of the logical name `embed`.
    pub embed_model: Option<String>,
    /// The model id of the logical name `chat`.
    pub chat_model: Option<String>,
    /// Other logical names (aliases) and the model id each stands for at this endpoint.
    pub models: BTreeMap<String, String>,
    /// Client-side limit of the requests sent to this endpoint in any 60 s (every attempt
    /// counts, all keys together); `None`: unlimited. Over it, calls go to other endpoints or
    /// wait (within `retry.deadline_ms`).
    pub requests_per_minute: Option<u32>,
    /// Client-side limit of the tokens (prompt and completion) of this endpoint in any 60 s:
    /// estimated before each request (inputs, or messages plus `max_tokens`), corrected with the
    /// usage the engine reports; `None`: unlimited.
    pub tokens_per_minute: Option<u64>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            base_url: String::new(),
            api_keys: Vec::new(),
            weight: 1,
            embed_model: None,
            chat_model: None,
            models: BTreeMap::new(),
            requests_per_minute: None,
            tokens_per_minute: None,
        }
    }
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("weight", &self.weight)
            .field("embed_model", &self.embed_model)
            .field("chat_model", &self.chat_model)
            .field("models", &self.models)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .finish()
    }
}

impl EndpointConfig {
    /// Every logical model name this endpoint serves and the model id it sends for it:
    /// `embed` and `chat` (from `embed_model` and `chat_model`), the names in `models`, and
    /// each of those model ids as itself.
    pub fn model_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for (name, id) in [("embed", &self.embed_model), ("chat", &self.chat_model)] {
            if let Some(id) = id {
                map.insert(name.to_owned(), id.clone());
            }
        }
        for (name, id) in &self.models {
            map.entry(name.clone()).or_insert_with(|| id.clone());
        }
        let ids: Vec<String> = map.values().cloned().collect();
        for id in ids {
            map.entry(id.clone()).or_insert(id);
        }
        map
    }

    /// The model id this endpoint sends for the logical name `name`, if it serves it.
    pub fn model_for(&self, name: &str) -> Option<String> {
        self.model_map().remove(name)
    }
}

fn serialize_redacted<S: Serializer>(keys: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(keys.iter().map(|_| REDACTED))
}

/// Retries of one call, across routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per call, the first one included (refused keys do not count).
    pub max_attempts: u32,
    /// Backoff before retry n is random in `[0, min(max_delay_ms, base_delay_ms * 2^n)]`, and
    /// never shorter than a `Retry-After` the engine sent.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Time budget of one call, all attempts and waits included (for a stream: until its first
    /// token).
    pub deadline_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay_ms: 200,
            max_delay_ms: 10_000,
            deadline_ms: 60_000,
        }
    }
}

/// Timeouts of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// Establishing the TCP (and TLS) connection.
    pub connect_ms: u64,
    /// A whole non-streaming request, body included.
    pub request_ms: u64,
    /// From sending a streaming request to its first token.
    pub first_token_ms: u64,
    /// Between two chunks of a stream once it has started.
    pub idle_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect_ms: 5_000,
            request_ms: 60_000,
            first_token_ms: 30_000,
            idle_ms: 30_000,
        }
    }
}

/// The circuit breaker of each endpoint: an endpoint that keeps failing (5xx, timeouts,
/// connection errors, unusable answers) gets no calls for a while, then one call probes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failed attempts on an endpoint that open its breaker (at least 1).
    pub failures: u32,
    /// How long an open breaker keeps calls away before one call probes the endpoint: success
    /// closes the breaker, failure opens it for another `cooldown_ms`.
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown_ms: 30_000,
        }
    }
}

impl EngineConfig {
    /// Check every value, naming the offending key (`engine.endpoints[0].base_url: ...`).
    ///
    /// An empty `endpoints` list is valid here (the engine may be unused);
    /// [`EngineClient::new`](crate::EngineClient::new) refuses it.
    pub fn validate(&self) -> Result<(), EngineError> {
        let mut names = HashSet::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let key = |field: &str| format!("engine.endpoints[{i}].{field}");
            if e.name.trim().is_empty() {
                return Err(EngineError::config(key("name"), "must not be empty"));
            }
            if !names.insert(e.name.as_str()) {
                return Err(EngineError::config(
                    key("name"),
                    format!("{:?} is already the name of another endpoint", e.name),
                ));
            }
            match url::Url::parse(&e.base_url) {
                Err(err) => {
                    return Err(EngineError::Config {
                        key: key("base_url"),
                        problem: "not a valid URL".to_owned(),
                        source: Some(err),
                    });
                }
                Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                    return Err(EngineError::config(
                        key("base_url"),
                        format!("scheme must be http or https, not {}", url.scheme()),
                    ));
                }
                Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                    return Err(EngineError::config(
                        key("base_url"),
                        "must not have a query or a fragment",
                    ));
                }
                Ok(_) => {}
            }
            for (k, api_key) in e.api_keys.iter().enumerate() {
                let api_key = api_key.expose_secret();
                let problem = if api_key.trim().is_empty() {
                    Some("must not be empty")
                } else if api_key == REDACTED {
                    Some("is the redacted placeholder, not a key")
                } else if api_key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Some("must not contain spaces or control characters")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(EngineError::config(key(&format!("api_keys[{k}]")), problem));
                }
            }
            if e.weight == 0 {
                return Err(EngineError::config(key("weight"), "must be at least 1"));
            }
            if e.requests_per_minute == Some(0) {
                return Err(EngineError::config(
                    key("requests_per_minute"),
                    "must be at least 1 when set",
                ));
            }
            if e.tokens_per_minute == Some(0) {
                return Err(EngineError::config(
                    key("tokens_per_minute"),
                    "must be at least 1 when set",
                ));
            }
            for (field, model) in [
                ("embed_model", &e.embed_model),
                ("chat_model", &e.chat_model),
            ] {
                if model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                    return Err(EngineError::config(
                        key(field),
                        "must not be empty when set",
                    ));
                }
            }
            for (name, id) in &e.models {
                let field = key(&format!("models.{name}"));
                if name.trim().is_empty() {
                    return Err(EngineError::config(
                        key("models"),
                        "a model name must not be empty",
                    ));
                }
                if id.trim().is_empty() {
                    return Err(EngineError::config(field, "must not be empty"));
                }
                if let Some(shorthand) = match name.as_str() {
                    "embed" => Some("embed_model"),
                    "chat" => Some("chat_model"),
                    _ => None,
                } {
                    return Err(EngineError::config(
                        field,
                        format!("set {shorthand} instead (it is the model of {name:?})"),
                    ));
                }
            }
        }
        let r = &self.retry;
        if r.max_attempts == 0 {
            return Err(EngineError::config(
                "engine.retry.max_attempts",
                "must be at least 1",
            ));
        }
        if r.max_delay_ms < r.base_delay_ms {
            return Err(EngineError::config(
                "engine.retry.max_delay_ms",
                format!("must not be below base_delay_ms ({})", r.base_delay_ms),
            ));
        }
        if self.breaker.failures == 0 {
            return Err(EngineError::config(
                "engine.breaker.failures",
                "must be at least 1",
            ));
        }
        let t = &self.timeouts;
        for (field, value) in [
            ("engine.retry.deadline_ms", r.deadline_ms),
            ("engine.timeouts.connect_ms", t.connect_ms),
            ("engine.timeouts.request_ms", t.request_ms),
            ("engine.timeouts.first_token_ms", t.first_token_ms),
            ("engine.timeouts.idle_ms", t.idle_ms),
            ("engine.breaker.cooldown_ms", self.breaker.cooldown_ms),
        ] {
            if value == 0 {
                return Err(EngineError::config(field, "must be above 0"));
            }
        }
        Ok(())
    }

    /// Whether some endpoint serves the logical model name `name`.
    pub fn serves(&self, name: &str) -> bool {
        self.endpoints.iter().any(|e| e.model_for(name).is_some())
    }

    /// Check that some endpoint serves the logical model `name`, which the setting `key`
    /// names: for start-up validation of the settings that choose a model.
    pub fn check_served(&self, key: &str, name: &str) -> Result<(), EngineError> {
        if self.serves(name) {
            return Ok(());
        }
        let how = match name {
            "embed" => "set embed_model on an endpoint".to_owned(),
            "chat" => "set chat_model on an endpoint".to_owned(),
            other => format!("map it on an endpoint: models.{other} = \"<model id>\""),
        };
        Err(EngineError::config(
            key,
            format!("no engine endpoint serves the model {name:?}; {how}"),
        ))
    }
}

#[cfg(test)]
mod tests;
