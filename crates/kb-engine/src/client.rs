//! The engine client: routes (endpoint × key), least-loaded weighted choice, cooldowns, circuit
//! breakers, budgets, and the retry loop every call goes through.

use crate::breaker::{Breaker, CircuitState, Gate, Transition};
use crate::budget::Budget;
use crate::chat::RemoteChat;
use crate::classify::{Action, Failure, Outcome};
use crate::clock;
use crate::config::{EngineConfig, RetryConfig, TimeoutConfig};
use crate::embed::{RemoteEmbedder, RemoteEmbedderOptions};
use crate::error::EngineError;
use crate::usage::{CallRecord, UsageRecorder};
use kb_core::{ModelError, Usage};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::cmp::{Ordering as Order, Reverse};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often a call waiting for a half-open endpoint's probe looks again.
const PROBE_POLL: Duration = Duration::from_millis(20);

/// What a call needs from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// `POST /embeddings`; the default logical model name is `embed`.
    Embed,
    /// `POST /chat/completions`; the default logical model name is `chat`.
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

/// How one endpoint is doing now, for readiness checks and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointHealth {
    /// The endpoint's configured `name`.
    pub name: String,
    pub circuit: CircuitState,
    /// Requests sent and not finished yet (streams until their end).
    pub in_flight: usize,
    /// Routes of the endpoint: its keys (1 for an endpoint without keys).
    pub keys: usize,
    /// Keys the engine refused (401/403), disabled until restart.
    pub keys_disabled: usize,
    /// Keys resting after a 429 or a failure.
    pub keys_cooling: usize,
}

/// Client of one or more OpenAI-compatible engines; cheap to clone (an `Arc` inside).
///
/// Every call picks a route (an endpoint and one of its keys) among the eligible ones: serving
/// the model kind, key not refused, not cooling down, circuit breaker not open, client-side
/// budget not used up. It prefers the endpoint with the fewest requests in flight relative to
/// its weight, ties broken by smooth weighted round-robin, then that endpoint's key with the
/// fewest requests in flight, ties taken in turn. A failed attempt is retried on another route
/// when there is one, else on the same after its cooldown (exponential backoff with full jitter,
/// never shorter than the engine's `Retry-After`), within `retry.max_attempts` and
/// `retry.deadline_ms`. When only endpoints with an open breaker are left, the call fails at
/// once with a retryable error saying when to come back.
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
        let cooldown = Duration::from_millis(config.breaker.cooldown_ms);
        let mut endpoints = Vec::new();
        let mut routes = Vec::new();
        let mut breakers = Vec::new();
        let mut budgets = Vec::new();
        for (e, mut ep) in config.endpoints.into_iter().enumerate() {
            let models = ep.model_map();
            let keys: Vec<Option<SecretString>> = if ep.api_keys.is_empty() {
                vec![None]
            } else {
                std::mem::take(&mut ep.api_keys)
                    .into_iter()
                    .map(Some)
                    .collect()
            };
            let first = routes.len();
            for (k, key) in keys.into_iter().enumerate() {
                routes.push(RouteState {
                    endpoint: e,
                    key_index: k,
                    key,
                    disabled: AtomicBool::new(false),
                    cooldown_until: Mutex::new(None),
                    in_flight: AtomicUsize::new(0),
                });
            }
            endpoints.push(Endpoint {
                name: ep.name,
                base_url: ep.base_url.trim_end_matches('/').to_owned(),
                weight: i64::from(ep.weight),
                models,
                routes: first..routes.len(),
                in_flight: AtomicUsize::new(0),
            });
            breakers.push(Breaker::new(config.breaker.failures, cooldown));
            budgets.push(Budget::new(ep.requests_per_minute, ep.tokens_per_minute));
        }
        let picker = || Picker {
            current: vec![0; endpoints.len()],
            next_key: vec![0; endpoints.len()],
        };
        let routing = Routing {
            pickers: [picker(), picker()],
            breakers,
            budgets,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                routes,
                routing: Mutex::new(routing),
                retry: config.retry,
                timeouts: config.timeouts,
                counters: Counters::default(),
                recorder: RwLock::new(None),
            }),
        })
    }

    /// Send a [`CallRecord`] of every attempt (retries included) to `recorder`, replacing any
    /// recorder set before.
    ///
    /// The recorder belongs to the client: every clone, and every embedder and chat model made
    /// from it, before or after, uses it.
    pub fn with_recorder(self, recorder: Arc<dyn UsageRecorder>) -> Self {
        *self
            .inner
            .recorder
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(recorder);
        self
    }

    /// An [`Embedder`](kb_core::Embedder) backed by the endpoints that serve its logical model
    /// (`opts.model_alias`, by default `embed`), each sent its own model id for it.
    pub fn embedder(&self, opts: RemoteEmbedderOptions) -> RemoteEmbedder {
        RemoteEmbedder::new(self.clone(), opts)
    }

    /// A [`ChatModel`](kb_core::ChatModel) backed by the endpoints that serve the logical model
    /// `model_alias` (by default `chat`), each sent its own model id for it.
    pub fn chat(&self, model_alias: Option<String>) -> RemoteChat {
        RemoteChat::new(self.clone(), model_alias)
    }

    /// Whether some endpoint serves `kind`'s default logical model (`embed` or `chat`).
    pub fn serves(&self, kind: ModelKind) -> bool {
        self.serves_model(kind.as_str())
    }

    /// Whether some endpoint serves the logical model name `name`.
    pub fn serves_model(&self, name: &str) -> bool {
        self.inner.endpoints.iter().any(|e| e.model(name).is_some())
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

    /// The state of each endpoint, in configuration order.
    pub fn health(&self) -> Vec<EndpointHealth> {
        let inner = &self.inner;
        let now = clock::now();
        let routing = inner.routing();
        inner
            .endpoints
            .iter()
            .enumerate()
            .map(|(e, ep)| {
                let routes = &inner.routes[ep.routes.clone()];
                EndpointHealth {
                    name: ep.name.clone(),
                    circuit: routing.breakers[e].state(now),
                    in_flight: ep.in_flight.load(Ordering::SeqCst),
                    keys: routes.len(),
                    keys_disabled: routes
                        .iter()
                        .filter(|r| r.disabled.load(Ordering::SeqCst))
                        .count(),
                    keys_cooling: routes
                        .iter()
                        .filter(|r| r.cooling_until(now).is_some())
                        .count(),
                }
            })
            .collect()
    }
}

pub(crate) struct Inner {
    pub http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    routes: Vec<RouteState>,
    /// What route choice reads and changes together, under one lock.
    routing: Mutex<Routing>,
    retry: RetryConfig,
    pub timeouts: TimeoutConfig,
    counters: Counters,
    recorder: RwLock<Option<Arc<dyn UsageRecorder>>>,
}

struct Endpoint {
    name: String,
    base_url: String,
    weight: i64,
    /// Logical model name → the model id sent to this endpoint.
    models: BTreeMap<String, String>,
    routes: std::ops::Range<usize>,
    in_flight: AtomicUsize,
}

impl Endpoint {
    fn model(&self, name: &str) -> Option<&str> {
        self.models.get(name).map(String::as_str)
    }
}

struct RouteState {
    endpoint: usize,
    key_index: usize,
    key: Option<SecretString>,
    disabled: AtomicBool,
    cooldown_until: Mutex<Option<Instant>>,
    in_flight: AtomicUsize,
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

/// Per endpoint (by index): breaker and budget; per model kind: the round-robin state.
struct Routing {
    /// One per [`ModelKind`]: the endpoints serving each differ.
    pickers: [Picker; 2],
    breakers: Vec<Breaker>,
    budgets: Vec<Budget>,
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
    pub deadline: Instant,
    base_url: String,
    key: Option<SecretString>,
    /// Ends the attempt: whoever holds the attempt last reports how it went.
    pub ticket: Arc<Ticket>,
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
            .saturating_duration_since(clock::now())
            .min(cap)
    }
}

/// An attempt in flight: counted in its route's and endpoint's load, perhaps the probe of a
/// half-open breaker, perhaps holding budget. [`finish`](Self::finish) ends it once: load
/// released, breaker and budget told, counters, log event and [`CallRecord`]. Dropped without
/// it (the caller dropped the call or the stream), it finishes as `cancelled`.
pub(crate) struct Ticket {
    inner: Arc<Inner>,
    route: usize,
    endpoint: usize,
    kind: ModelKind,
    model: String,
    at: SystemTime,
    started: Instant,
    probe: bool,
    budget_id: Option<u64>,
    done: AtomicBool,
}

/// The items whose load is the least, in their order, from one reading of the loads.
///
/// Calls that finish release their load without the routing lock, so a load read twice can
/// change in between; comparing against a minimum from an earlier reading could match nothing.
fn least_loaded<K: Copy, L: Copy>(loads: &[(K, L)], cmp: impl Fn(L, L) -> Order) -> Vec<K> {
    let Some(least) = loads
        .iter()
        .map(|&(_, load)| load)
        .min_by(|&a, &b| cmp(a, b))
    else {
        return Vec::new();
    };
    loads
        .iter()
        .filter(|&&(_, load)| cmp(load, least) == Order::Equal)
        .map(|&(key, _)| key)
        .collect()
}

impl Ticket {
    /// End the attempt (only the first call counts). `error` must be redacted.
    pub fn finish(&self, outcome: Outcome, usage: Option<Usage>, error: Option<&ModelError>) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = &*self.inner;
        let endpoint = &inner.endpoints[self.endpoint];
        endpoint.in_flight.fetch_sub(1, Ordering::SeqCst);
        inner.routes[self.route]
            .in_flight
            .fetch_sub(1, Ordering::SeqCst);
        let transition = {
            let mut routing = inner.routing();
            if let (Some(id), Some(usage)) = (self.budget_id, usage) {
                routing.budgets[self.endpoint].correct(id, usage.total());
            }
            routing.breakers[self.endpoint].record(outcome.health(), self.probe, clock::now())
        };
        if let Some(transition) = transition {
            inner.log_transition(endpoint, transition);
        }

        let latency_ms = u64::try_from(
            clock::now()
                .saturating_duration_since(self.started)
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let usage = usage.unwrap_or_default();
        let c = &inner.counters;
        c.prompt_tokens
            .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        c.completion_tokens
            .fetch_add(usage.completion_tokens, Ordering::Relaxed);
        let (name, model, kind) = (endpoint.name.as_str(), self.model.as_str(), self.kind);
        match error {
            None => tracing::info!(
                endpoint = name,
                model,
                kind = kind.as_str(),
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                latency_ms,
                outcome = %outcome,
                "engine call"
            ),
            Some(error) => {
                c.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    endpoint = name,
                    model,
                    kind = kind.as_str(),
                    latency_ms,
                    outcome = %outcome,
                    %error,
                    "engine call failed"
                );
            }
        }
        let recorder = inner
            .recorder
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(recorder) = recorder {
            recorder.record(&CallRecord {
                at: self.at,
                endpoint: name.to_owned(),
                model: model.to_owned(),
                kind,
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                latency_ms,
                outcome: outcome.to_string(),
            });
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled, None, None);
    }
}

/// A successful attempt; `reported: false` when the value took the attempt over and ends it
/// itself (streams do at their end).
pub(crate) struct Success<T> {
    pub value: T,
    pub usage: Option<Usage>,
    pub reported: bool,
}

/// The route choice for the next attempt.
enum Pick {
    Go(Attempt),
    /// No route now; the soonest is free then (`budget`: waiting for a client-side budget).
    Wait {
        at: Instant,
        budget: bool,
    },
    /// Every endpoint left has an open circuit breaker.
    Open,
    /// Every key left was refused, or no endpoint is left.
    Nothing,
}

/// Why the retry loop stopped without a result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    OutOfAttemptsOrTime,
    Budget,
    Open,
}

impl Inner {
    fn routing(&self) -> MutexGuard<'_, Routing> {
        self.routing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The model id the first endpoint serving the logical model sends (for logs and the
    /// embedder's model id).
    pub fn model_name(&self, kind: ModelKind, alias: Option<&str>) -> Option<String> {
        let name = alias.unwrap_or(kind.as_str());
        self.endpoints
            .iter()
            .find_map(|e| e.model(name))
            .map(str::to_owned)
    }

    /// Run `op` on routes until it succeeds, cannot succeed, or the attempts or time run out.
    ///
    /// `cost` is the call's estimated tokens, for the endpoints' token budgets.
    pub async fn run<T, F, Fut>(
        self: &Arc<Self>,
        kind: ModelKind,
        alias: Option<&str>,
        cost: u64,
        mut op: F,
    ) -> Result<T, ModelError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<Success<T>, Failure>>,
    {
        let name = alias.unwrap_or(kind.as_str());
        if !self.endpoints.iter().any(|e| e.model(name).is_some()) {
            let how = if name == kind.as_str() {
                format!("set engine.endpoints[].{kind}_model")
            } else {
                "map it in engine.endpoints[].models".to_owned()
            };
            return Err(ModelError::Permanent(format!(
                "no engine endpoint serves the {kind} model {name:?}: {how}"
            )));
        }
        let deadline = clock::now() + Duration::from_millis(self.retry.deadline_ms);
        let mut tried: Vec<usize> = Vec::new();
        let mut excluded: Vec<usize> = Vec::new();
        let mut attempts = 0;
        let mut last: Option<ModelError> = None;
        let mut stop = Stop::OutOfAttemptsOrTime;
        while attempts < self.retry.max_attempts && clock::now() < deadline {
            let attempt = match self.pick(kind, name, &tried, &excluded, cost, deadline) {
                Pick::Go(attempt) => attempt,
                Pick::Wait { at, budget } if at >= deadline => {
                    if budget {
                        stop = Stop::Budget;
                    }
                    break;
                }
                Pick::Wait { at, .. } => {
                    tokio::time::sleep_until(at.into()).await;
                    continue;
                }
                Pick::Open => {
                    stop = Stop::Open;
                    break;
                }
                Pick::Nothing => {
                    return Err(last.unwrap_or_else(|| {
                        ModelError::Permanent(format!(
                            "every api key of the engine endpoints serving {kind} was refused"
                        ))
                    }));
                }
            };
            let ticket = attempt.ticket.clone();
            match op(attempt).await {
                Ok(success) => {
                    if success.reported {
                        ticket.finish(Outcome::Ok, success.usage, None);
                    }
                    return Ok(success.value);
                }
                Err(failure) => {
                    let error = self.redact(failure.error);
                    ticket.finish(failure.outcome, None, Some(&error));
                    match failure.action {
                        Action::GiveUp => return Err(error),
                        Action::DisableRoute => self.disable(ticket.route, failure.outcome),
                        Action::SkipEndpoint => {
                            excluded.push(ticket.endpoint);
                            attempts += 1;
                        }
                        Action::Retry => {
                            let rest = self
                                .backoff(attempts)
                                .max(error.retry_after().unwrap_or_default());
                            self.routes[ticket.route].cool_down(clock::now() + rest);
                            attempts += 1;
                        }
                    }
                    tried.push(ticket.route);
                    last = Some(error);
                }
            }
        }
        let error = last.unwrap_or_else(|| match stop {
            Stop::Budget => ModelError::RateLimited {
                message: format!(
                    "the client-side budgets (requests_per_minute, tokens_per_minute) of the \
                     engine endpoints serving {kind} are used up"
                ),
                retry_after: None,
            },
            Stop::Open => ModelError::Transient {
                message: format!(
                    "every engine endpoint serving {kind} keeps failing (circuit breaker open)"
                ),
                retry_after: None,
            },
            Stop::OutOfAttemptsOrTime => ModelError::Transient {
                message: format!("no engine endpoint serving {kind} became available in time"),
                retry_after: None,
            },
        });
        Err(self.exhausted(error, name, attempts, cost, &excluded))
    }

    /// The final error: how many attempts were made, and when a route is free again.
    fn exhausted(
        &self,
        error: ModelError,
        name: &str,
        attempts: u32,
        cost: u64,
        excluded: &[usize],
    ) -> ModelError {
        let gave_up = |message: String| match attempts {
            0 => message,
            1 => format!("gave up after 1 attempt: {message}"),
            n => format!("gave up after {n} attempts: {message}"),
        };
        let now = clock::now();
        let soonest = self
            .soonest_ready(name, cost, excluded)
            .map(|at| at.saturating_duration_since(now));
        // Always say when to come back: a retryable error without it is a guess for the caller.
        let fallback = self.backoff_cap(attempts).max(Duration::from_millis(1));
        let wait =
            |own: Option<Duration>| soonest.filter(|d| !d.is_zero()).or(own).or(Some(fallback));
        match error {
            ModelError::Transient {
                message,
                retry_after,
            } => ModelError::Transient {
                message: gave_up(message),
                retry_after: wait(retry_after),
            },
            ModelError::RateLimited {
                message,
                retry_after,
            } => ModelError::RateLimited {
                message: gave_up(message),
                retry_after: wait(retry_after),
            },
            other => other,
        }
    }

    /// The next route: among the eligible ones, untried in this call if possible, the least
    /// loaded endpoint relative to its weight (ties by smooth weighted round-robin), then its
    /// least loaded key (ties in turn). Takes the route: load, budget, breaker probe.
    fn pick(
        self: &Arc<Self>,
        kind: ModelKind,
        name: &str,
        tried: &[usize],
        excluded: &[usize],
        cost: u64,
        deadline: Instant,
    ) -> Pick {
        let now = clock::now();
        let mut guard = self.routing();
        let routing = &mut *guard;
        let mut usable: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut wait: Option<(Instant, bool)> = None;
        let mut open = false;
        let mut later = |at: Instant, budget: bool| {
            if wait.is_none_or(|(soonest, _)| at < soonest) {
                wait = Some((at, budget));
            }
        };
        for (e, endpoint) in self.endpoints.iter().enumerate() {
            if endpoint.model(name).is_none() || excluded.contains(&e) {
                continue;
            }
            let enabled: Vec<usize> = endpoint
                .routes
                .clone()
                .filter(|&r| !self.routes[r].disabled.load(Ordering::SeqCst))
                .collect();
            if enabled.is_empty() {
                continue;
            }
            match routing.breakers[e].gate(now) {
                Gate::Pass => {}
                Gate::Probing => {
                    later(now + PROBE_POLL, false);
                    continue;
                }
                Gate::OpenUntil(_) => {
                    open = true;
                    continue;
                }
            }
            let ready = routing.budgets[e].ready_at(now, cost);
            if ready > now {
                later(ready, true);
                continue;
            }
            let mut free = Vec::new();
            for r in enabled {
                match self.routes[r].cooling_until(now) {
                    Some(until) => later(until, false),
                    None => free.push(r),
                }
            }
            if !free.is_empty() {
                usable.push((e, free));
            }
        }
        if usable.is_empty() {
            return match (wait, open) {
                (Some((at, budget)), _) => Pick::Wait { at, budget },
                (None, true) => Pick::Open,
                (None, false) => Pick::Nothing,
            };
        }

        let untried: Vec<(usize, Vec<usize>)> = usable
            .iter()
            .filter_map(|(e, routes)| {
                let routes: Vec<usize> = routes
                    .iter()
                    .copied()
                    .filter(|r| !tried.contains(r))
                    .collect();
                (!routes.is_empty()).then_some((*e, routes))
            })
            .collect();
        let candidates = if untried.is_empty() { usable } else { untried };

        // The least loaded endpoints: in_flight / weight, compared without division.
        let endpoint_loads: Vec<(usize, (i64, i64))> = candidates
            .iter()
            .enumerate()
            .map(|(i, (e, _))| {
                let endpoint = &self.endpoints[*e];
                let in_flight = endpoint.in_flight.load(Ordering::SeqCst) as i64;
                (i, (in_flight, endpoint.weight))
            })
            .collect();
        let tied: Vec<&(usize, Vec<usize>)> =
            least_loaded(&endpoint_loads, |(a_in, a_weight), (b_in, b_weight)| {
                (a_in * b_weight).cmp(&(b_in * a_weight))
            })
            .into_iter()
            .map(|i| &candidates[i])
            .collect();

        let picker = &mut routing.pickers[kind.index()];
        let total: i64 = tied.iter().map(|(e, _)| self.endpoints[*e].weight).sum();
        for (e, _) in &tied {
            picker.current[*e] += self.endpoints[*e].weight;
        }
        let (best, routes) = *tied
            .iter()
            .max_by_key(|(e, _)| (picker.current[*e], Reverse(*e)))
            .expect("BUG: tied holds the lightest candidate");
        picker.current[*best] -= total;
        let best = *best;
        let route_loads: Vec<(usize, usize)> = routes
            .iter()
            .map(|&r| (r, self.routes[r].in_flight.load(Ordering::SeqCst)))
            .collect();
        let keys = least_loaded(&route_loads, |a, b| a.cmp(&b));
        let turn = picker.next_key[best];
        picker.next_key[best] = turn.wrapping_add(1);
        let route = keys[turn % keys.len()];

        let (probe, transition) = routing.breakers[best].admit(now);
        let budget_id = routing.budgets[best].take(now, cost);
        let endpoint = &self.endpoints[best];
        endpoint.in_flight.fetch_add(1, Ordering::SeqCst);
        self.routes[route].in_flight.fetch_add(1, Ordering::SeqCst);
        drop(guard);
        if let Some(transition) = transition {
            self.log_transition(endpoint, transition);
        }
        self.counters.calls.fetch_add(1, Ordering::Relaxed);

        let model = endpoint
            .model(name)
            .expect("BUG: only endpoints serving the model are picked")
            .to_owned();
        let ticket = Ticket {
            inner: self.clone(),
            route,
            endpoint: best,
            kind,
            model: model.clone(),
            at: SystemTime::now(),
            started: clock::now(),
            probe,
            budget_id,
            done: AtomicBool::new(false),
        };
        Pick::Go(Attempt {
            endpoint: endpoint.name.clone(),
            model,
            deadline,
            base_url: endpoint.base_url.clone(),
            key: self.routes[route].key.clone(),
            ticket: Arc::new(ticket),
        })
    }

    /// When the first route serving the model `name` may take a call of `cost` tokens (cooldown, budget,
    /// open breaker); `None` if every key left is disabled.
    fn soonest_ready(&self, name: &str, cost: u64, excluded: &[usize]) -> Option<Instant> {
        let now = clock::now();
        let mut routing = self.routing();
        let mut soonest: Option<Instant> = None;
        for (e, endpoint) in self.endpoints.iter().enumerate() {
            if endpoint.model(name).is_none() || excluded.contains(&e) {
                continue;
            }
            let gate = match routing.breakers[e].gate(now) {
                Gate::OpenUntil(until) => until,
                Gate::Pass | Gate::Probing => now,
            };
            let budget = routing.budgets[e].ready_at(now, cost);
            for r in &self.routes[endpoint.routes.clone()] {
                if r.disabled.load(Ordering::SeqCst) {
                    continue;
                }
                let at = gate.max(budget).max(r.cooling_until(now).unwrap_or(now));
                soonest = Some(soonest.map_or(at, |s| s.min(at)));
            }
        }
        soonest
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

    fn log_transition(&self, endpoint: &Endpoint, transition: Transition) {
        let name = endpoint.name.as_str();
        match transition {
            Transition::Opened { failures } => tracing::warn!(
                endpoint = name,
                failures,
                "circuit breaker opened: the engine endpoint keeps failing; it gets no calls until a probe"
            ),
            Transition::HalfOpened => tracing::warn!(
                endpoint = name,
                "circuit breaker half-open: one call probes the engine endpoint"
            ),
            Transition::Reopened => tracing::warn!(
                endpoint = name,
                "circuit breaker opened again: the probe of the engine endpoint failed"
            ),
            Transition::Closed => tracing::warn!(
                endpoint = name,
                "circuit breaker closed: the engine endpoint answers again"
            ),
        }
    }

    /// `min(max_delay, base_delay * 2^n)`.
    fn backoff_cap(&self, n: u32) -> Duration {
        let cap = self
            .retry
            .base_delay_ms
            .saturating_mul(1_u64.checked_shl(n).unwrap_or(u64::MAX))
            .min(self.retry.max_delay_ms);
        Duration::from_millis(cap)
    }

    /// Full jitter: random in `[0, min(max_delay, base_delay * 2^n)]`.
    fn backoff(&self, n: u32) -> Duration {
        let cap = self.backoff_cap(n).as_millis() as u64;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_loaded_keeps_every_tie_in_order() {
        let loads = [(7, 2), (3, 1), (9, 4), (5, 1)];
        assert_eq!(least_loaded(&loads, |a: i32, b| a.cmp(&b)), vec![3, 5]);
    }

    #[test]
    fn least_loaded_compares_with_the_given_order() {
        // in_flight / weight without division: 2/4 and 1/2 tie below 1/1.
        let loads = [(0, (1_i64, 1_i64)), (1, (2, 4)), (2, (1, 2))];
        let relative = |(a_in, a_weight): (i64, i64), (b_in, b_weight): (i64, i64)| {
            (a_in * b_weight).cmp(&(b_in * a_weight))
        };
        assert_eq!(least_loaded(&loads, relative), vec![1, 2]);
    }

    #[test]
    fn least_loaded_of_nothing_is_empty() {
        assert!(least_loaded::<usize, usize>(&[], |a, b| a.cmp(&b)).is_empty());
    }
}
