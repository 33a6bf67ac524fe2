//! The engine client: routes (endpoint × key), weighted round-robin, cooldowns, and the retry
//! loop every call goes through.

use crate::chat::RemoteChat;
use crate::classify::{Action, Failure, Outcome};
use crate::config::{EngineConfig, RetryConfig, TimeoutConfig};
use crate::embed::{RemoteEmbedder, RemoteEmbedderOptions};
use crate::error::EngineError;
use kb_core::{ModelError, Usage};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a call needs from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `POST /embeddings`, served by endpoints with an `embed_model`.
    Embed,
    /// `POST /chat/completions`, served by endpoints with a `chat_model`.
    Chat,
}

impl ModelKind {
    fn index(self) -> usize {
        match self {
            Self::Embed => 0,
            Self::Chat => 1,
        }
    }

    /// `embed` or `chat`, as in the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embed => "embed",
            Self::Chat => "chat",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters since the client was created (every attempt counts as a call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Attempts sent to an engine.
    pub calls: u64,
    /// Attempts that failed (including streams interrupted after their first token).
    pub failures: u64,
    /// Sum of the `usage.prompt_tokens` the engines reported.
    pub prompt_tokens: u64,
    /// Sum of the `usage.completion_tokens` the engines reported.
    pub completion_tokens: u64,
}

/// Client of one or more OpenAI-compatible engines; cheap to clone (an `Arc` inside).
///
/// Every call picks a route (an endpoint and one of its keys) by smooth weighted round-robin
/// among the endpoints that serve the model kind and are not cooling down, then round-robin among
/// that endpoint's keys. A failed attempt is retried on another route when there is one, else on
/// the same after its cooldown (exponential backoff with full jitter, never shorter than the
/// engine's `Retry-After`), within `retry.max_attempts` and `retry.deadline_ms`.
#[derive(Clone)]
pub struct EngineClient {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: Vec<&str> = self
            .inner
            .endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        f.debug_struct("EngineClient")
            .field("endpoints", &endpoints)
            .field("routes", &self.inner.routes.len())
            .finish_non_exhaustive()
    }
}

impl EngineClient {
    /// Validate `config` and build the client; refuses a config without endpoints.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        config.validate()?;
        if config.endpoints.is_empty() {
            return Err(EngineError::config(
                "engine.endpoints",
                "at least one endpoint is needed to use an engine",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.timeouts.connect_ms))
            .user_agent(concat!("kb-engine/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(EngineError::Client)?;
        let mut endpoints = Vec::new();
        let mut routes = Vec::new();
        for (e, ep) in config.endpoints.into_iter().enumerate() {
            let keys: Vec<Option<SecretString>> = if ep.api_keys.is_empty() {
                vec![None]
            } else {
                ep.api_keys.into_iter().map(Some).collect()
            };
            let first = routes.len();
            for (k, key) in keys.into_iter().enumerate() {
                routes.push(RouteState {
                    endpoint: e,
                    key_index: k,
                    key,
                    disabled: AtomicBool::new(false),
                    cooldown_until: Mutex::new(None),
                });
            }
            endpoints.push(Endpoint {
                name: ep.name,
                base_url: ep.base_url.trim_end_matches('/').to_owned(),
                weight: i64::from(ep.weight),
                embed_model: ep.embed_model,
                chat_model: ep.chat_model,
                routes: first..routes.len(),
            });
        }
        let picker = || Picker {
            current: vec![0; endpoints.len()],
            next_key: vec![0; endpoints.len()],
        };
        let pickers = [picker(), picker()];
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                routes,
                pickers: Mutex::new(pickers),
                retry: config.retry,
                timeouts: config.timeouts,
                counters: Counters::default(),
            }),
        })
    }

    /// An [`Embedder`](kb_core::Embedder) backed by the endpoints that have an `embed_model`.
    pub fn embedder(&self, opts: RemoteEmbedderOptions) -> RemoteEmbedder {
        RemoteEmbedder::new(self.clone(), opts)
    }

    /// A [`ChatModel`](kb_core::ChatModel) backed by the endpoints that have a `chat_model`.
    ///
    /// `model_alias` replaces each endpoint's `chat_model` in the requests; endpoints without a
    /// `chat_model` are still not used for chat.
    pub fn chat(&self, model_alias: Option<String>) -> RemoteChat {
        RemoteChat::new(self.clone(), model_alias)
    }

    /// Whether some endpoint serves `kind` (has a model for it).
    pub fn serves(&self, kind: ModelKind) -> bool {
        self.inner.endpoints.iter().any(|e| e.model(kind).is_some())
    }

    /// Counters since the client was created.
    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        EngineStats {
            calls: c.calls.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            prompt_tokens: c.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: c.completion_tokens.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Inner {
    pub http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    routes: Vec<RouteState>,
    /// One per [`ModelKind`]: the endpoints serving each differ.
    pickers: Mutex<[Picker; 2]>,
    retry: RetryConfig,
    pub timeouts: TimeoutConfig,
    counters: Counters,
}

struct Endpoint {
    name: String,
    base_url: String,
    weight: i64,
    embed_model: Option<String>,
    chat_model: Option<String>,
    routes: std::ops::Range<usize>,
}

impl Endpoint {
    fn model(&self, kind: ModelKind) -> Option<&str> {
        match kind {
            ModelKind::Embed => self.embed_model.as_deref(),
            ModelKind::Chat => self.chat_model.as_deref(),
        }
    }
}

struct RouteState {
    endpoint: usize,
    key_index: usize,
    key: Option<SecretString>,
    disabled: AtomicBool,
    cooldown_until: Mutex<Option<Instant>>,
}

impl RouteState {
    fn cooldown(&self) -> MutexGuard<'_, Option<Instant>> {
        self.cooldown_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn cooling_until(&self, now: Instant) -> Option<Instant> {
        self.cooldown().filter(|until| *until > now)
    }

    /// Rest until `until`, unless another call already set a later time.
    fn cool_down(&self, until: Instant) {
        let mut cooldown = self.cooldown();
        if cooldown.is_none_or(|current| current < until) {
            *cooldown = Some(until);
        }
    }
}

/// Smooth weighted round-robin state (nginx's algorithm) per endpoint, and the next key of each.
struct Picker {
    current: Vec<i64>,
    next_key: Vec<usize>,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    failures: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
}

/// One attempt on one route: everything a request needs, owned.
pub(crate) struct Attempt {
    pub endpoint: String,
    pub model: String,
    pub kind: ModelKind,
    pub deadline: Instant,
    base_url: String,
    key: Option<SecretString>,
}

impl Attempt {
    /// `POST {base_url}/{path}` with the route's key, if any.
    pub fn post(&self, http: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let request = http.post(format!("{}/{path}", self.base_url));
        match &self.key {
            // bearer_auth marks the header sensitive, so it is not shown in reqwest's Debug.
            Some(key) => request.bearer_auth(key.expose_secret()),
            None => request,
        }
    }

    /// Time left until the call's deadline, capped at `cap`.
    pub fn budget(&self, cap: Duration) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .min(cap)
    }
}

/// A successful attempt; `reported: false` when the caller emits the attempt's event itself
/// (streams do at their end).
pub(crate) struct Success<T> {
    pub value: T,
    pub usage: Option<Usage>,
    pub reported: bool,
}

impl Inner {
    pub fn model_name(&self, kind: ModelKind, alias: Option<&str>) -> Option<String> {
        alias.map(str::to_owned).or_else(|| {
            self.endpoints
                .iter()
                .find_map(|e| e.model(kind))
                .map(str::to_owned)
        })
    }

    /// Run `op` on routes until it succeeds, cannot succeed, or the attempts or time run out.
    pub async fn run<T, F, Fut>(
        &self,
        kind: ModelKind,
        alias: Option<&str>,
        mut op: F,
    ) -> Result<T, ModelError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<Success<T>, Failure>>,
    {
        if !self.endpoints.iter().any(|e| e.model(kind).is_some()) {
            return Err(ModelError::Permanent(format!(
                "no engine endpoint serves {kind}: set engine.endpoints[].{kind}_model"
            )));
        }
        let deadline = Instant::now() + Duration::from_millis(self.retry.deadline_ms);
        let mut tried: Vec<usize> = Vec::new();
        let mut attempts = 0;
        let mut last: Option<ModelError> = None;
        while attempts < self.retry.max_attempts && Instant::now() < deadline {
            let Some(route) = self.pick(kind, &tried) else {
                match self.soonest_available(kind) {
                    None => {
                        return Err(last.unwrap_or_else(|| {
                            ModelError::Permanent(format!(
                                "every api key of the engine endpoints serving {kind} was refused"
                            ))
                        }));
                    }
                    Some(at) if at >= deadline => break,
                    Some(at) => {
                        tokio::time::sleep_until(at.into()).await;
                        continue;
                    }
                }
            };
            let attempt = self.attempt(route, kind, alias, deadline);
            let (endpoint, model) = (attempt.endpoint.clone(), attempt.model.clone());
            let started = Instant::now();
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            match op(attempt).await {
                Ok(success) => {
                    if success.reported {
                        self.report(&endpoint, &model, kind, started, Outcome::Ok, success.usage);
                    }
                    return Ok(success.value);
                }
                Err(failure) => {
                    let error = self.redact(failure.error);
                    self.report_failure(&endpoint, &model, kind, started, failure.outcome, &error);
                    match failure.action {
                        Action::GiveUp => return Err(error),
                        Action::DisableRoute => self.disable(route, failure.outcome),
                        Action::Retry => {
                            let rest = self
                                .backoff(attempts)
                                .max(error.retry_after().unwrap_or_default());
                            self.routes[route].cool_down(Instant::now() + rest);
                            attempts += 1;
                        }
                    }
                    tried.push(route);
                    last = Some(error);
                }
            }
        }
        let error = last.unwrap_or_else(|| ModelError::Transient {
            message: format!("no engine endpoint serving {kind} became available in time"),
            retry_after: None,
        });
        Err(self.exhausted(error, kind, attempts))
    }

    /// The final error: how many attempts were made, and when a route is free again.
    fn exhausted(&self, error: ModelError, kind: ModelKind, attempts: u32) -> ModelError {
        let gave_up = match attempts {
            1 => "gave up after 1 attempt".to_owned(),
            n => format!("gave up after {n} attempts"),
        };
        let now = Instant::now();
        let soonest = self
            .soonest_available(kind)
            .map(|at| at.saturating_duration_since(now));
        let wait = |own: Option<Duration>| soonest.filter(|d| !d.is_zero()).or(own);
        match error {
            ModelError::Transient {
                message,
                retry_after,
            } => ModelError::Transient {
                message: format!("{gave_up}: {message}"),
                retry_after: wait(retry_after),
            },
            ModelError::RateLimited {
                message,
                retry_after,
            } => ModelError::RateLimited {
                message: format!("{gave_up}: {message}"),
                retry_after: wait(retry_after),
            },
            other => other,
        }
    }

    fn attempt(
        &self,
        route: usize,
        kind: ModelKind,
        alias: Option<&str>,
        deadline: Instant,
    ) -> Attempt {
        let r = &self.routes[route];
        let e = &self.endpoints[r.endpoint];
        Attempt {
            endpoint: e.name.clone(),
            model: alias
                .or(e.model(kind))
                .expect("BUG: only endpoints serving the kind are picked")
                .to_owned(),
            kind,
            deadline,
            base_url: e.base_url.clone(),
            key: r.key.clone(),
        }
    }

    fn usable(&self, route: usize, kind: ModelKind, now: Instant) -> bool {
        let r = &self.routes[route];
        self.endpoints[r.endpoint].model(kind).is_some()
            && !r.disabled.load(Ordering::SeqCst)
            && r.cooling_until(now).is_none()
    }

    /// The next route: untried in this call if possible, by weight across endpoints, in turn
    /// across an endpoint's keys. `None` when every route is disabled or cooling down.
    fn pick(&self, kind: ModelKind, tried: &[usize]) -> Option<usize> {
        let now = Instant::now();
        let mut pickers = self.pickers.lock().unwrap_or_else(|e| e.into_inner());
        let picker = &mut pickers[kind.index()];
        for avoid_tried in [true, false] {
            let ok = |route: usize| {
                self.usable(route, kind, now) && !(avoid_tried && tried.contains(&route))
            };
            let candidates: Vec<usize> = (0..self.endpoints.len())
                .filter(|&e| self.endpoints[e].routes.clone().any(ok))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let total: i64 = candidates.iter().map(|&e| self.endpoints[e].weight).sum();
            for &e in &candidates {
                picker.current[e] += self.endpoints[e].weight;
            }
            let best = *candidates
                .iter()
                .max_by_key(|&&e| (picker.current[e], std::cmp::Reverse(e)))
                .expect("BUG: candidates is not empty");
            picker.current[best] -= total;
            let keys: Vec<usize> = self.endpoints[best]
                .routes
                .clone()
                .filter(|&r| ok(r))
                .collect();
            let turn = picker.next_key[best];
            picker.next_key[best] = turn.wrapping_add(1);
            return Some(keys[turn % keys.len()]);
        }
        None
    }

    /// When the first non-disabled route serving `kind` is free; `None` if all are disabled.
    fn soonest_available(&self, kind: ModelKind) -> Option<Instant> {
        let now = Instant::now();
        self.routes
            .iter()
            .filter(|r| self.endpoints[r.endpoint].model(kind).is_some())
            .filter(|r| !r.disabled.load(Ordering::SeqCst))
            .map(|r| r.cooling_until(now).unwrap_or(now))
            .min()
    }

    fn disable(&self, route: usize, outcome: Outcome) {
        let r = &self.routes[route];
        // Only the call that disables the key logs it: once per key, never the key itself.
        if !r.disabled.swap(true, Ordering::SeqCst) {
            tracing::error!(
                endpoint = %self.endpoints[r.endpoint].name,
                key_index = r.key_index,
                outcome = %outcome,
                "engine refused an api key; the key is disabled until restart"
            );
        }
    }

    /// Full jitter: random in `[0, min(max_delay, base_delay * 2^n)]`.
    fn backoff(&self, n: u32) -> Duration {
        let cap = self
            .retry
            .base_delay_ms
            .saturating_mul(1_u64.checked_shl(n).unwrap_or(u64::MAX))
            .min(self.retry.max_delay_ms);
        Duration::from_millis(rand::rng().random_range(0..=cap))
    }

    /// `text` with every configured key replaced (an engine might echo one back).
    pub fn redact_text(&self, mut text: String) -> String {
        for key in self.routes.iter().filter_map(|r| r.key.as_ref()) {
            let key = key.expose_secret();
            if !key.is_empty() && text.contains(key) {
                text = text.replace(key, crate::config::REDACTED);
            }
        }
        text
    }

    /// The error with every configured key replaced in its text.
    fn redact(&self, error: ModelError) -> ModelError {
        let clean = |text: String| self.redact_text(text);
        match error {
            ModelError::Transient {
                message,
                retry_after,
            } => ModelError::Transient {
                message: clean(message),
                retry_after,
            },
            ModelError::RateLimited {
                message,
                retry_after,
            } => ModelError::RateLimited {
                message: clean(message),
                retry_after,
            },
            ModelError::ContextLengthExceeded(m) => ModelError::ContextLengthExceeded(clean(m)),
            ModelError::InvalidRequest(m) => ModelError::InvalidRequest(clean(m)),
            ModelError::Permanent(m) => ModelError::Permanent(clean(m)),
        }
    }

    /// The event of one attempt that succeeded; adds the usage to the counters.
    pub fn report(
        &self,
        endpoint: &str,
        model: &str,
        kind: ModelKind,
        started: Instant,
        outcome: Outcome,
        usage: Option<Usage>,
    ) {
        if let Some(u) = usage {
            self.counters
                .prompt_tokens
                .fetch_add(u.prompt_tokens, Ordering::Relaxed);
            self.counters
                .completion_tokens
                .fetch_add(u.completion_tokens, Ordering::Relaxed);
        }
        tracing::info!(
            endpoint,
            model,
            kind = kind.as_str(),
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            latency_ms = started.elapsed().as_millis() as u64,
            outcome = %outcome,
            "engine call"
        );
    }

    /// The event of one attempt that failed; counts the failure. `error` must be redacted.
    pub fn report_failure(
        &self,
        endpoint: &str,
        model: &str,
        kind: ModelKind,
        started: Instant,
        outcome: Outcome,
        error: &ModelError,
    ) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            endpoint,
            model,
            kind = kind.as_str(),
            latency_ms = started.elapsed().as_millis() as u64,
            outcome = %outcome,
            %error,
            "engine call failed"
        );
    }
}
