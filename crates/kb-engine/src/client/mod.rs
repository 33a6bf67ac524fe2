//! The engine client: every call goes through its retry loop, which takes routes (see
//! [`route`]) for attempts (see [`attempt`]) until one succeeds, none can, or the attempts or
//! the time run out.
//!
//! The adapters on top ([`RemoteEmbedder`](crate::RemoteEmbedder),
//! [`RemoteChat`](crate::RemoteChat)) say what one attempt sends and reads; this module says
//! where and how often.

pub(crate) mod attempt;
mod breaker;
mod budget;
pub(crate) mod classify;
mod meter;
mod route;
pub(crate) mod wire;

pub use breaker::CircuitState;
pub use meter::EngineStats;
pub use route::EndpointHealth;

use crate::clock;
use crate::config::{EngineConfig, RetryConfig, TimeoutConfig};
use crate::error::EngineError;
use crate::kind::ModelKind;
use crate::usage::UsageRecorder;
use attempt::{Attempt, Success};
use classify::{Action, Failure, Outcome};
use kb_core::ModelError;
use kb_core::error::{BoxError, chain};
use meter::Meter;
use rand::Rng;
use route::{Pick, Routes};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
///
/// [`embedder`](Self::embedder) and [`chat`](Self::chat) make the adapters to kb-core's traits.
#[derive(Clone)]
pub struct EngineClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    routes: Arc<Routes>,
    meter: Arc<Meter>,
    retry: RetryConfig,
    timeouts: TimeoutConfig,
}

impl fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes = &self.inner.routes;
        f.debug_struct("EngineClient")
            .field("endpoints", &routes.endpoint_names())
            .field("routes", &routes.route_count())
            .finish_non_exhaustive()
    }
}

/// Why the retry loop stopped without a result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    OutOfAttemptsOrTime,
    Budget,
    Open,
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
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                routes: Arc::new(Routes::new(config.endpoints, &config.breaker)),
                meter: Arc::new(Meter::default()),
                retry: config.retry,
                timeouts: config.timeouts,
            }),
        })
    }

    /// Send a [`CallRecord`](crate::CallRecord) of every attempt (retries included) to
    /// `recorder`, replacing any recorder set before.
    ///
    /// The recorder belongs to the client: every clone, and every embedder and chat model made
    /// from it, before or after, uses it.
    pub fn with_recorder(self, recorder: Arc<dyn UsageRecorder>) -> Self {
        self.inner.meter.set_recorder(recorder);
        self
    }

    /// Whether some endpoint serves `kind`'s default logical model (`embed` or `chat`).
    pub fn serves(&self, kind: ModelKind) -> bool {
        self.serves_model(kind.as_str())
    }

    /// Whether some endpoint serves the logical model name `name`.
    pub fn serves_model(&self, name: &str) -> bool {
        self.inner.routes.serves(name)
    }

    /// Counters since the client was created.
    pub fn stats(&self) -> EngineStats {
        self.inner.meter.stats()
    }

    /// The state of each endpoint, in configuration order.
    pub fn health(&self) -> Vec<EndpointHealth> {
        self.inner.routes.health()
    }

    /// The per-attempt timeouts.
    pub(crate) fn timeouts(&self) -> &TimeoutConfig {
        &self.inner.timeouts
    }

    /// The model id the first endpoint serving the logical model sends (for logs and the
    /// embedder's model id).
    pub(crate) fn model_name(&self, kind: ModelKind, alias: Option<&str>) -> Option<String> {
        self.inner.routes.model_name(alias.unwrap_or(kind.as_str()))
    }

    /// Run `op` on routes until it succeeds, cannot succeed, or the attempts or time run out.
    ///
    /// `cost` is the call's estimated tokens, for the endpoints' token budgets.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        kind: ModelKind,
        alias: Option<&str>,
        cost: u64,
        mut op: F,
    ) -> Result<T, ModelError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<Success<T>, Failure>>,
    {
        let inner = &*self.inner;
        let name = alias.unwrap_or(kind.as_str());
        if !inner.routes.serves(name) {
            let how = if name == kind.as_str() {
                format!("set engine.endpoints[].{kind}_model")
            } else {
                "map it in engine.endpoints[].models".to_owned()
            };
            return Err(ModelError::permanent(format!(
                "no engine endpoint serves the {kind} model {name:?}: {how}"
            )));
        }
        let deadline = clock::now() + Duration::from_millis(inner.retry.deadline_ms);
        let mut tried: Vec<usize> = Vec::new();
        let mut excluded: Vec<usize> = Vec::new();
        let mut attempts = 0;
        let mut last: Option<ModelError> = None;
        let mut stop = Stop::OutOfAttemptsOrTime;
        while attempts < inner.retry.max_attempts && clock::now() < deadline {
            let attempt = match inner.routes.pick(kind, name, &tried, &excluded, cost) {
                Pick::Go(lease) => Attempt::start(
                    &inner.http,
                    &inner.routes,
                    &inner.meter,
                    lease,
                    kind,
                    deadline,
                ),
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
                        ModelError::permanent(format!(
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
                        Action::DisableRoute => {
                            inner.routes.disable(ticket.route(), failure.outcome)
                        }
                        Action::SkipEndpoint => {
                            excluded.push(ticket.endpoint());
                            attempts += 1;
                        }
                        Action::Retry => {
                            let rest = self
                                .backoff(attempts)
                                .max(error.retry_after().unwrap_or_default());
                            inner.routes.cool_down(ticket.route(), clock::now() + rest);
                            attempts += 1;
                        }
                    }
                    tried.push(ticket.route());
                    last = Some(error);
                }
            }
        }
        let error = last.unwrap_or_else(|| match stop {
            Stop::Budget => ModelError::rate_limited(
                format!(
                    "the client-side budgets (requests_per_minute, tokens_per_minute) of the \
                     engine endpoints serving {kind} are used up"
                ),
                None,
            ),
            Stop::Open => ModelError::transient(
                format!(
                    "every engine endpoint serving {kind} keeps failing (circuit breaker open)"
                ),
                None,
            ),
            Stop::OutOfAttemptsOrTime => ModelError::transient(
                format!("no engine endpoint serving {kind} became available in time"),
                None,
            ),
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
            .inner
            .routes
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
                source,
            } => ModelError::Transient {
                message: gave_up(message),
                retry_after: wait(retry_after),
                source,
            },
            ModelError::RateLimited {
                message,
                retry_after,
                source,
            } => ModelError::RateLimited {
                message: gave_up(message),
                retry_after: wait(retry_after),
                source,
            },
            other => other,
        }
    }

    /// `min(max_delay, base_delay * 2^n)`.
    fn backoff_cap(&self, n: u32) -> Duration {
        let retry = &self.inner.retry;
        let cap = retry
            .base_delay_ms
            .saturating_mul(1_u64.checked_shl(n).unwrap_or(u64::MAX))
            .min(retry.max_delay_ms);
        Duration::from_millis(cap)
    }

    /// Full jitter: random in `[0, min(max_delay, base_delay * 2^n)]`.
    fn backoff(&self, n: u32) -> Duration {
        let cap = self.backoff_cap(n).as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=cap))
    }

    /// `text` with every configured key replaced (an engine might echo one back).
    pub(crate) fn redact_text(&self, text: String) -> String {
        self.inner.routes.redact_text(text)
    }

    /// The error with every configured key replaced in its text, its cause's included.
    fn redact(&self, error: ModelError) -> ModelError {
        let clean = |text: String| self.redact_text(text);
        let clean_source = |source: Option<BoxError>| source.map(|cause| self.redact_cause(cause));
        match error {
            ModelError::Transient {
                message,
                retry_after,
                source,
            } => ModelError::Transient {
                message: clean(message),
                retry_after,
                source: clean_source(source),
            },
            ModelError::RateLimited {
                message,
                retry_after,
                source,
            } => ModelError::RateLimited {
                message: clean(message),
                retry_after,
                source: clean_source(source),
            },
            ModelError::ContextLengthExceeded { message, source } => {
                ModelError::ContextLengthExceeded {
                    message: clean(message),
                    source: clean_source(source),
                }
            }
            ModelError::InvalidRequest { message, source } => ModelError::InvalidRequest {
                message: clean(message),
                source: clean_source(source),
            },
            ModelError::Permanent { message, source } => ModelError::Permanent {
                message: clean(message),
                source: clean_source(source),
            },
        }
    }

    /// A cause as is, or its text with the keys replaced when it shows one (a cause cannot be
    /// edited, only replaced).
    fn redact_cause(&self, cause: BoxError) -> BoxError {
        let text = chain(&*cause).to_string();
        let clean = self.redact_text(text.clone());
        if clean == text { cause } else { clean.into() }
    }
}
