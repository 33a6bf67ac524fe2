//! The circuit breaker of one endpoint: stop sending calls to an engine that keeps failing,
//! and let one call probe it again after a rest.
//!
//! ```text
//! closed --(breaker.failures consecutive Down results)--> open
//! open   --(breaker.cooldown_ms elapsed, a call is routed here)--> half-open: that call is the probe
//! half-open --(probe Up)--> closed      half-open --(probe Down)--> open again
//! ```
//!
//! Time is passed in, so that the state machine is tested without sleeping.

use super::classify::Health;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant};

/// The state of an endpoint's circuit breaker, as shown by
/// [`EngineClient::health`](crate::EngineClient::health).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls flow.
    Closed,
    /// The endpoint kept failing: no calls until the cooldown is over.
    Open,
    /// The cooldown is over: the next call probes the endpoint (or is probing it).
    HalfOpen,
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        })
    }
}

/// Whether a call may be routed to the endpoint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Yes (as the probe when the breaker is half-open).
    Pass,
    /// A probe is on its way: wait for its result.
    Probing,
    /// Open until then.
    OpenUntil(Instant),
}

/// A change of state worth a warning in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// After this many consecutive failures.
    Opened {
        failures: u32,
    },
    HalfOpened,
    Reopened,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
pub(crate) struct Breaker {
    state: State,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: State::Closed { failures: 0 },
            threshold: threshold.max(1),
            cooldown,
        }
    }

    pub fn gate(&self, now: Instant) -> Gate {
        match self.state {
            State::Closed { .. } | State::HalfOpen { probing: false } => Gate::Pass,
            State::Open { until } if until <= now => Gate::Pass,
            State::Open { until } => Gate::OpenUntil(until),
            State::HalfOpen { probing: true } => Gate::Probing,
        }
    }

    pub fn state(&self, now: Instant) -> CircuitState {
        match self.state {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if until > now => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// A call is routed here (after [`gate`](Self::gate) said `Pass`): `true` when it is the
    /// probe of a half-open breaker.
    pub fn admit(&mut self, now: Instant) -> (bool, Option<Transition>) {
        match self.state {
            State::Closed { .. } => (false, None),
            State::Open { until } => {
                debug_assert!(until <= now, "BUG: a call was routed to an open circuit");
                self.state = State::HalfOpen { probing: true };
                (true, Some(Transition::HalfOpened))
            }
            State::HalfOpen { .. } => {
                self.state = State::HalfOpen { probing: true };
                (true, None)
            }
        }
    }

    /// The result of a call routed here; `probe` as [`admit`](Self::admit) said.
    pub fn record(&mut self, health: Health, probe: bool, now: Instant) -> Option<Transition> {
        match (self.state, health) {
            (State::Closed { .. }, Health::Up) => {
                self.state = State::Closed { failures: 0 };
                None
            }
            (State::Closed { failures }, Health::Down) => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    self.state = State::Open {
                        until: now + self.cooldown,
                    };
                    Some(Transition::Opened { failures })
                } else {
                    self.state = State::Closed { failures };
                    None
                }
            }
            // Any success while half-open shows the endpoint is back.
            (State::HalfOpen { .. }, Health::Up) => {
                self.state = State::Closed { failures: 0 };
                Some(Transition::Closed)
            }
            (State::HalfOpen { .. }, Health::Down) if probe => {
                self.state = State::Open {
                    until: now + self.cooldown,
                };
                Some(Transition::Reopened)
            }
            // The probe said nothing (cancelled, 429, 4xx): let the next call probe.
            (State::HalfOpen { probing: true }, Health::Neutral) if probe => {
                self.state = State::HalfOpen { probing: false };
                None
            }
            // Calls sent before the breaker opened finish late: their news is stale, and the
            // probe decides.
            (State::Closed { .. }, Health::Neutral)
            | (State::HalfOpen { .. }, _)
            | (State::Open { .. }, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn fail(b: &mut Breaker, times: u32, now: Instant) -> Option<Transition> {
        (0..times)
            .map(|_| b.record(Health::Down, false, now))
            .last()
            .flatten()
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        // Arrange
        let now = Instant::now();
        let mut breaker = Breaker::new(3, COOLDOWN);

        // Act
        let before = fail(&mut breaker, 2, now);
        let opened = breaker.record(Health::Down, false, now);

        // Assert
        assert_eq!(before, None);
        assert_eq!(opened, Some(Transition::Opened { failures: 3 }));
        assert_eq!(breaker.gate(now), Gate::OpenUntil(now + COOLDOWN));
        assert_eq!(breaker.state(now), CircuitState::Open);
    }

    #[test]
    fn a_success_resets_the_count_of_consecutive_failures() {
        // Arrange
        let now = Instant::now();
        let mut breaker = Breaker::new(3, COOLDOWN);

        // Act
        fail(&mut breaker, 2, now);
        breaker.record(Health::Up, false, now);
        fail(&mut breaker, 2, now);
        breaker.record(Health::Neutral, false, now);

        // Assert
        assert_eq!(breaker.gate(now), Gate::Pass);
    }

    #[test]
    fn after_the_cooldown_one_probe_passes_and_its_success_closes() {
        // Arrange
        let now = Instant::now();
        let later = now + COOLDOWN;
        let mut breaker = Breaker::new(1, COOLDOWN);
        fail(&mut breaker, 1, now);

        // Act
        let gate = breaker.gate(later);
        let (probe, half_opened) = breaker.admit(later);
        let second = breaker.gate(later);
        let closed = breaker.record(Health::Up, probe, later);

        // Assert
        assert_eq!(gate, Gate::Pass);
        assert!(probe);
        assert_eq!(half_opened, Some(Transition::HalfOpened));
        assert_eq!(second, Gate::Probing);
        assert_eq!(closed, Some(Transition::Closed));
        assert_eq!(breaker.state(later), CircuitState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown() {
        // Arrange
        let now = Instant::now();
        let later = now + COOLDOWN;
        let mut breaker = Breaker::new(1, COOLDOWN);
        fail(&mut breaker, 1, now);

        // Act
        let (probe, _) = breaker.admit(later);
        let reopened = breaker.record(Health::Down, probe, later);

        // Assert
        assert_eq!(reopened, Some(Transition::Reopened));
        assert_eq!(breaker.gate(later), Gate::OpenUntil(later + COOLDOWN));
    }

    #[test]
    fn a_probe_that_says_nothing_lets_the_next_call_probe() {
        // Arrange
        let now = Instant::now();
        let later = now + COOLDOWN;
        let mut breaker = Breaker::new(1, COOLDOWN);
        fail(&mut breaker, 1, now);
        let (probe, _) = breaker.admit(later);

        // Act
        breaker.record(Health::Neutral, probe, later);

        // Assert
        assert_eq!(breaker.gate(later), Gate::Pass);
        assert_eq!(breaker.state(later), CircuitState::HalfOpen);
    }

    #[test]
    fn late_failures_of_calls_sent_before_opening_change_nothing() {
        // Arrange
        let now = Instant::now();
        let later = now + COOLDOWN;
        let mut breaker = Breaker::new(1, COOLDOWN);
        fail(&mut breaker, 1, now);

        // Act
        let while_open = breaker.record(Health::Down, false, now);
        let (_, _) = breaker.admit(later);
        let while_probing = breaker.record(Health::Down, false, later);

        // Assert
        assert_eq!(while_open, None);
        assert_eq!(while_probing, None);
        assert_eq!(breaker.gate(later), Gate::Probing);
    }
}
