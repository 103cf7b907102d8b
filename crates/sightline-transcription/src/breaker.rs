//! The speech provider's circuit breaker, shared by every stream of every
//! session: Sightline's one [`CircuitBreaker`] (crate `sightline-breaker`),
//! with a short trial window. After `threshold` consecutive connection
//! failures the provider is left alone for `cooldown`, then one attempt is
//! let through (half-open) while the other streams keep waiting; its
//! success closes the breaker, its failure opens it again. Streams whose
//! provider is broken wait instead of each retrying on its own, and do not
//! all rush back at once. A stream holds its [`CallPermit`] while it
//! connects: a stream that stops mid-attempt gives its turn back at once.

use std::time::Duration;

pub use sightline_breaker::{BreakerPolicy, CallPermit, CircuitBreaker, Recorded};

/// How long the one half-open attempt has before another is let through
/// (an attempt that never reports back must not keep the breaker shut).
pub const PROBE_WINDOW: Duration = Duration::from_secs(1);

/// A speech provider's breaker.
pub fn provider_breaker(threshold: u32, cooldown: Duration) -> CircuitBreaker {
    CircuitBreaker::new(BreakerPolicy {
        failure_threshold: threshold,
        cooldown,
    })
    .with_trial_timeout(PROBE_WINDOW)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    fn breaker(threshold: u32, cooldown: Duration) -> Arc<CircuitBreaker> {
        Arc::new(provider_breaker(threshold, cooldown))
    }

    #[test]
    fn opens_after_threshold_and_half_opens_after_cooldown() {
        let b = breaker(3, Duration::from_secs(10));
        let t = Instant::now();
        b.record(false, t);
        b.record(false, t);
        assert!(!b.is_open(t));
        b.record(false, t);
        assert!(b.is_open(t));
        assert!(b.is_open(t + Duration::from_secs(9)));
        assert!(!b.is_open(t + Duration::from_secs(11)));
        let attempt = b
            .check(t + Duration::from_secs(11))
            .expect("one attempt goes");
        attempt.record(false, t + Duration::from_secs(11));
        assert!(
            b.is_open(t + Duration::from_secs(12)),
            "a failed half-open attempt reopens"
        );
        b.record(true, t + Duration::from_secs(12));
        assert!(!b.is_open(t + Duration::from_secs(12)));
    }

    #[test]
    fn half_open_lets_one_attempt_through_and_the_others_wait_for_it() {
        let b = breaker(1, Duration::from_secs(10));
        let t = Instant::now();
        b.record(false, t);
        let after = t + Duration::from_secs(10);
        let probe = b.check(after).expect("the first stream probes");
        let others = b.check(after + Duration::from_millis(100));
        assert_eq!(
            others.unwrap_err(),
            PROBE_WINDOW - Duration::from_millis(100)
        );
        assert!(b.is_open(after + Duration::from_millis(100)));
        // The probe succeeds: everyone may go.
        probe.record(true, after + Duration::from_millis(200));
        assert!(b.check(after + Duration::from_millis(200)).is_ok());
        assert!(b.check(after + Duration::from_millis(200)).is_ok());

        // A probe that never reports back frees the slot after the window.
        b.record(false, after);
        let later = after + Duration::from_secs(10);
        let lost = b.check(later).expect("the next probe");
        assert!(b.check(later).is_err());
        assert!(b.check(later + PROBE_WINDOW).is_ok());
        drop(lost);
    }

    #[test]
    fn a_stream_that_stops_mid_attempt_gives_its_turn_back() {
        let b = breaker(1, Duration::from_secs(10));
        let t = Instant::now();
        b.record(false, t);
        let after = t + Duration::from_secs(10);
        let attempt = b.check(after).expect("the first stream probes");
        drop(attempt); // its stream stopped
        assert!(b.check(after).is_ok(), "the next stream may try at once");
    }
}
