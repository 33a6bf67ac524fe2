//! The client's clock: tokio's, read as a [`std::time::Instant`].
//!
//! Everything the client times (retry deadlines, cooldowns, `Retry-After`, circuit breakers,
//! budgets, latencies) reads this clock, and its waits use tokio's timer, so that both agree.
//! Outside a runtime whose time is paused it is the system's monotonic clock; in a test that
//! pauses tokio's time (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`), the
//! client's notion of "now" moves with it, and cooldowns and timeouts are tested without
//! sleeping.

use std::time::Instant;

/// Now, by tokio's clock.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn now_moves_with_tokios_paused_clock_and_only_with_it() {
        // Arrange
        let before = now();

        // Act
        std::thread::sleep(Duration::from_millis(5));
        let still = now();
        tokio::time::advance(Duration::from_secs(30)).await;
        let after = now();

        // Assert
        assert_eq!(still, before, "a paused clock does not move with real time");
        assert_eq!(after - before, Duration::from_secs(30));
    }

    #[test]
    fn now_is_the_system_clock_outside_a_runtime() {
        // Arrange
        let before = Instant::now();

        // Act
        let read = now();

        // Assert
        assert!(read >= before && read <= Instant::now(), "{read:?}");
    }
}
