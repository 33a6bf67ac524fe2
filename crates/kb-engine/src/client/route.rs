//! The routes (endpoint × key) and their state: load, cooldowns, disabled keys, each endpoint's
//! circuit breaker and budget; and the choice of the route for the next attempt.

use super::breaker::{Breaker, CircuitState, Gate, Transition};
use super::budget::Budget;
use super::classify::Outcome;
use crate::clock;
use crate::config::{BreakerConfig, EndpointConfig, REDACTED};
use crate::kind::ModelKind;
use kb_core::Usage;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::cmp::{Ordering as Order, Reverse};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a call waiting for a half-open endpoint's probe looks again.
const PROBE_POLL: Duration = Duration::from_millis(20);

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

/// Every endpoint and route of a client, in configuration order.
pub(super) struct Routes {
    endpoints: Vec<Endpoint>,
    routes: Vec<RouteState>,
    /// What route choice reads and changes together, under one lock.
    routing: Mutex<Routing>,
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

/// A route taken for one attempt: counted in its route's and endpoint's load, perhaps the probe
/// of a half-open breaker, perhaps holding budget, until [`Routes::release`].
pub(super) struct Lease {
    pub route: usize,
    pub endpoint: usize,
    /// The endpoint's `name`.
    pub endpoint_name: String,
    /// The model id this endpoint is sent for the call's logical model.
    pub model: String,
    pub base_url: String,
    pub key: Option<SecretString>,
    probe: bool,
    budget_id: Option<u64>,
}

/// The route choice for the next attempt.
pub(super) enum Pick {
    Go(Lease),
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

impl Routes {
    /// One route per key of each endpoint (one without a key for an endpoint without keys).
    pub fn new(endpoints: Vec<EndpointConfig>, breaker: &BreakerConfig) -> Self {
        let cooldown = Duration::from_millis(breaker.cooldown_ms);
        let mut routes = Vec::new();
        let mut breakers = Vec::new();
        let mut budgets = Vec::new();
        let endpoints: Vec<Endpoint> = endpoints
            .into_iter()
            .enumerate()
            .map(|(e, mut ep)| {
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
                breakers.push(Breaker::new(breaker.failures, cooldown));
                budgets.push(Budget::new(ep.requests_per_minute, ep.tokens_per_minute));
                Endpoint {
                    name: ep.name,
                    base_url: ep.base_url.trim_end_matches('/').to_owned(),
                    weight: i64::from(ep.weight),
                    models,
                    routes: first..routes.len(),
                    in_flight: AtomicUsize::new(0),
                }
            })
            .collect();
        let picker = || Picker {
            current: vec![0; endpoints.len()],
            next_key: vec![0; endpoints.len()],
        };
        let routing = Routing {
            pickers: [picker(), picker()],
            breakers,
            budgets,
        };
        Self {
            endpoints,
            routes,
            routing: Mutex::new(routing),
        }
    }

    fn routing(&self) -> MutexGuard<'_, Routing> {
        self.routing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The endpoints' names, in configuration order.
    pub fn endpoint_names(&self) -> Vec<&str> {
        self.endpoints.iter().map(|e| e.name.as_str()).collect()
    }

    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// Whether some endpoint serves the logical model name `name`.
    pub fn serves(&self, name: &str) -> bool {
        self.endpoints.iter().any(|e| e.model(name).is_some())
    }

    /// The model id the first endpoint serving the logical model `name` is sent.
    pub fn model_name(&self, name: &str) -> Option<String> {
        self.endpoints
            .iter()
            .find_map(|e| e.model(name))
            .map(str::to_owned)
    }

    /// The state of each endpoint, in configuration order.
    pub fn health(&self) -> Vec<EndpointHealth> {
        let now = clock::now();
        let routing = self.routing();
        self.endpoints
            .iter()
            .enumerate()
            .map(|(e, ep)| {
                let routes = &self.routes[ep.routes.clone()];
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

    /// The next route for the logical model `name`: among the eligible ones, untried in this
    /// call if possible, the least loaded endpoint relative to its weight (ties by smooth
    /// weighted round-robin), then its least loaded key (ties in turn). Takes the route: load,
    /// budget, breaker probe.
    pub fn pick(
        &self,
        kind: ModelKind,
        name: &str,
        tried: &[usize],
        excluded: &[usize],
        cost: u64,
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
            log_transition(endpoint, transition);
        }

        Pick::Go(Lease {
            route,
            endpoint: best,
            endpoint_name: endpoint.name.clone(),
            model: endpoint
                .model(name)
                .expect("BUG: only endpoints serving the model are picked")
                .to_owned(),
            base_url: endpoint.base_url.clone(),
            key: self.routes[route].key.clone(),
            probe,
            budget_id,
        })
    }

    /// Give back what [`pick`](Self::pick) took, telling the breaker how the attempt went and
    /// the budget the tokens it really used.
    pub fn release(&self, lease: &Lease, outcome: Outcome, usage: Option<Usage>) {
        let endpoint = &self.endpoints[lease.endpoint];
        endpoint.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.routes[lease.route]
            .in_flight
            .fetch_sub(1, Ordering::SeqCst);
        let transition = {
            let mut routing = self.routing();
            if let (Some(id), Some(usage)) = (lease.budget_id, usage) {
                routing.budgets[lease.endpoint].correct(id, usage.total());
            }
            routing.breakers[lease.endpoint].record(outcome.health(), lease.probe, clock::now())
        };
        if let Some(transition) = transition {
            log_transition(endpoint, transition);
        }
    }

    /// Rest the route until `until`, unless another call already set a later time.
    pub fn cool_down(&self, route: usize, until: Instant) {
        let mut cooldown = self.routes[route].cooldown();
        if cooldown.is_none_or(|current| current < until) {
            *cooldown = Some(until);
        }
    }

    /// Take the route out for good: its key was refused.
    pub fn disable(&self, route: usize, outcome: Outcome) {
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

    /// When the first route serving the model `name` may take a call of `cost` tokens (cooldown,
    /// budget, open breaker); `None` if every key left is disabled.
    pub fn soonest_ready(&self, name: &str, cost: u64, excluded: &[usize]) -> Option<Instant> {
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

    /// `text` with every configured key replaced (an engine might echo one back).
    pub fn redact_text(&self, mut text: String) -> String {
        for key in self.routes.iter().filter_map(|r| r.key.as_ref()) {
            let key = key.expose_secret();
            if !key.is_empty() && text.contains(key) {
                text = text.replace(key, REDACTED);
            }
        }
        text
    }
}

fn log_transition(endpoint: &Endpoint, transition: Transition) {
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
