//! One attempt: a request sent on one route ([`Attempt`]), read and classified
//! ([`post_json`](Attempt::post_json)), and ended once ([`Ticket`]), which releases the route and
//! reports the attempt: log event, counters, [`CallRecord`].

use super::classify::{Failure, Outcome};
use super::meter::Meter;
use super::route::{Lease, Routes};
use crate::clock;
use crate::kind::ModelKind;
use crate::usage::CallRecord;
use kb_core::error::chain;
use kb_core::{ModelError, Usage};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// One attempt on one route: everything a request needs, owned.
pub(crate) struct Attempt {
    /// The endpoint's `name`.
    pub endpoint: String,
    /// The model id sent to this endpoint.
    pub model: String,
    /// The call's deadline, all attempts included.
    pub deadline: Instant,
    http: reqwest::Client,
    base_url: String,
    key: Option<SecretString>,
    /// Ends the attempt: whoever holds the attempt last reports how it went.
    pub ticket: Arc<Ticket>,
}

impl Attempt {
    /// Start an attempt of a `kind` call on the route `lease` took.
    pub(super) fn start(
        http: &reqwest::Client,
        routes: &Arc<Routes>,
        meter: &Arc<Meter>,
        lease: Lease,
        kind: ModelKind,
        deadline: Instant,
    ) -> Self {
        meter.count_call();
        Self {
            endpoint: lease.endpoint_name.clone(),
            model: lease.model.clone(),
            deadline,
            http: http.clone(),
            base_url: lease.base_url.clone(),
            key: lease.key.clone(),
            ticket: Arc::new(Ticket {
                routes: routes.clone(),
                meter: meter.clone(),
                lease,
                kind,
                at: SystemTime::now(),
                started: clock::now(),
                done: AtomicBool::new(false),
            }),
        }
    }

    /// `POST {base_url}/{path}` with the route's key, if any.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}/{path}", self.base_url));
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

    /// Send `body` to `path`, then read and parse the answer, within `cap` and the call's
    /// deadline; a failure is classified for the retry loop.
    pub async fn post_json<R: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        cap: Duration,
    ) -> Result<R, Failure> {
        let budget = self.budget(cap);
        let exchange = async {
            let response = self
                .post(path)
                .json(body)
                .send()
                .await
                .map_err(|e| Failure::from_reqwest(&self.endpoint, e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| Failure::from_reqwest(&self.endpoint, e))?;
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes);
                return Err(Failure::from_status(
                    &self.endpoint,
                    status,
                    &headers,
                    &text,
                ));
            }
            serde_json::from_slice(&bytes).map_err(|e| Failure::malformed(&self.endpoint, e))
        };
        tokio::time::timeout(budget, exchange)
            .await
            .unwrap_or_else(|_| Err(Failure::timeout(&self.endpoint, path, budget)))
    }
}

/// A successful attempt; `reported: false` when the value took the attempt over and ends it
/// itself (streams do at their end).
pub(crate) struct Success<T> {
    pub value: T,
    pub usage: Option<Usage>,
    pub reported: bool,
}

/// An attempt in flight, holding its route's [`Lease`]. [`finish`](Self::finish) ends it once:
/// route released (load, breaker, budget), counters, log event and [`CallRecord`]. Dropped
/// without it (the caller dropped the call or the stream), it finishes as `cancelled`.
pub(crate) struct Ticket {
    routes: Arc<Routes>,
    meter: Arc<Meter>,
    lease: Lease,
    kind: ModelKind,
    at: SystemTime,
    started: Instant,
    done: AtomicBool,
}

impl Ticket {
    /// The route the attempt is on.
    pub(super) fn route(&self) -> usize {
        self.lease.route
    }

    /// The endpoint the attempt is on.
    pub(super) fn endpoint(&self) -> usize {
        self.lease.endpoint
    }

    /// End the attempt (only the first call counts). `error` must be redacted.
    pub fn finish(&self, outcome: Outcome, usage: Option<Usage>, error: Option<&ModelError>) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        self.routes.release(&self.lease, outcome, usage);

        let latency_ms = u64::try_from(
            clock::now()
                .saturating_duration_since(self.started)
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let usage = usage.unwrap_or_default();
        self.meter.count_tokens(usage);
        let (name, model, kind) = (
            self.lease.endpoint_name.as_str(),
            self.lease.model.as_str(),
            self.kind,
        );
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
                self.meter.count_failure();
                tracing::warn!(
                    endpoint = name,
                    model,
                    kind = kind.as_str(),
                    latency_ms,
                    outcome = %outcome,
                    error = %chain(error),
                    "engine call failed"
                );
            }
        }
        self.meter.record(|| CallRecord {
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

impl Drop for Ticket {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled, None, None);
    }
}
