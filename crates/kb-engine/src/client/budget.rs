//! Client-side budgets of one endpoint: requests and tokens per minute, over a sliding window.
//!
//! A sliding window rather than a token bucket (such as the `governor` crate's GCRA): a call's
//! tokens are only estimated when it is sent and corrected with the usage the engine reports,
//! and the router asks *when* a call of a given cost would fit without taking the budget yet;
//! a log of the last minute's calls does both simply.
//!
//! Time is passed in, so that the window is tested without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The length of the window the limits are counted over.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry {
    at: Instant,
    tokens: u64,
    id: u64,
}

/// The requests sent to one endpoint within the last [`WINDOW`], and their tokens.
#[derive(Debug)]
pub(crate) struct Budget {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
    entries: VecDeque<Entry>,
    tokens: u64,
    next_id: u64,
}

impl Budget {
    pub fn new(requests_per_minute: Option<u32>, tokens_per_minute: Option<u64>) -> Self {
        Self {
            requests_per_minute,
            tokens_per_minute,
            entries: VecDeque::new(),
            tokens: 0,
            next_id: 0,
        }
    }

    fn unlimited(&self) -> bool {
        self.requests_per_minute.is_none() && self.tokens_per_minute.is_none()
    }

    fn prune(&mut self, now: Instant) {
        while let Some(first) = self.entries.front() {
            if first.at + WINDOW > now {
                break;
            }
            self.tokens -= first.tokens;
            self.entries.pop_front();
        }
    }

    /// When a request of `cost` tokens fits: `now` if it does now.
    ///
    /// A request larger than the whole token budget fits once the window is empty (else it
    /// would never be sent).
    pub fn ready_at(&mut self, now: Instant, cost: u64) -> Instant {
        if self.unlimited() {
            return now;
        }
        self.prune(now);
        let mut at = now;
        if let Some(rpm) = self.requests_per_minute {
            let rpm = rpm as usize;
            if rpm > 0 && self.entries.len() >= rpm {
                at = at.max(self.entries[self.entries.len() - rpm].at + WINDOW);
            }
        }
        if let Some(tpm) = self.tokens_per_minute {
            let fits = |used: u64| used == 0 || used.saturating_add(cost) <= tpm;
            if !fits(self.tokens) {
                let mut used = self.tokens;
                for entry in &self.entries {
                    used -= entry.tokens;
                    if fits(used) {
                        at = at.max(entry.at + WINDOW);
                        break;
                    }
                }
            }
        }
        at
    }

    /// Count a request of (an estimated) `cost` tokens sent now; the id corrects it later.
    pub fn take(&mut self, now: Instant, cost: u64) -> Option<u64> {
        if self.unlimited() {
            return None;
        }
        self.prune(now);
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_back(Entry {
            at: now,
            tokens: cost,
            id,
        });
        self.tokens += cost;
        Some(id)
    }

    /// Replace the estimate of request `id` by the tokens the engine reported (if the request
    /// is still in the window).
    pub fn correct(&mut self, id: u64, tokens: u64) {
        // Ids grow with time, so the entries are sorted by id.
        if let Ok(i) = self.entries.binary_search_by_key(&id, |e| e.id) {
            let entry = &mut self.entries[i];
            self.tokens = self.tokens - entry.tokens + tokens;
            entry.tokens = tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn unlimited_budget_is_always_ready_and_keeps_nothing() {
        // Arrange
        let now = Instant::now();
        let mut budget = Budget::new(None, None);

        // Act
        let id = budget.take(now, 1_000_000);

        // Assert
        assert_eq!(id, None);
        assert_eq!(budget.ready_at(now, u64::MAX), now);
    }

    #[test]
    fn requests_per_minute_wait_for_the_oldest_request_to_leave_the_window() {
        // Arrange
        let start = Instant::now();
        let mut budget = Budget::new(Some(2), None);
        budget.take(start, 0);
        budget.take(start + 10 * MS, 0);

        // Act
        let third = budget.ready_at(start + 20 * MS, 0);
        let after_a_minute = budget.ready_at(start + WINDOW, 0);

        // Assert
        assert_eq!(third, start + WINDOW);
        assert_eq!(after_a_minute, start + WINDOW);
    }

    #[test]
    fn tokens_per_minute_wait_until_enough_tokens_leave_the_window() {
        // Arrange
        let start = Instant::now();
        let mut budget = Budget::new(None, Some(100));
        budget.take(start, 40);
        budget.take(start + 10 * MS, 40);

        // Act
        let small = budget.ready_at(start + 20 * MS, 20);
        let medium = budget.ready_at(start + 20 * MS, 50);
        let large = budget.ready_at(start + 20 * MS, 90);

        // Assert
        assert_eq!(small, start + 20 * MS);
        assert_eq!(medium, start + WINDOW);
        assert_eq!(large, start + 10 * MS + WINDOW);
    }

    #[test]
    fn a_request_larger_than_the_budget_waits_for_an_empty_window() {
        // Arrange
        let start = Instant::now();
        let mut budget = Budget::new(None, Some(100));

        // Act
        let alone = budget.ready_at(start, 500);
        budget.take(start, 500);
        let next = budget.ready_at(start + MS, 1);

        // Assert
        assert_eq!(alone, start);
        assert_eq!(next, start + WINDOW);
    }

    #[test]
    fn reported_usage_corrects_the_estimate() {
        // Arrange
        let start = Instant::now();
        let mut budget = Budget::new(None, Some(100));
        let id = budget
            .take(start, 90)
            .expect("limited budgets track requests");

        // Act
        let before = budget.ready_at(start + MS, 50);
        budget.correct(id, 30);
        let after = budget.ready_at(start + MS, 50);

        // Assert
        assert_eq!(before, start + WINDOW);
        assert_eq!(after, start + MS);
    }
}
