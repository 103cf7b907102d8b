//! A circuit breaker per provider, shared by every stream of every session:
//! after `threshold` consecutive connection failures the provider is left
//! alone for `cooldown`, then one attempt is let through (half-open) while
//! the other streams keep waiting; its success closes the breaker, its
//! failure opens it again. Streams whose provider is broken wait instead of
//! each retrying on its own, and do not all rush back at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

/// How long the one half-open attempt has before another is let through
/// (an attempt that never reports back must not keep the breaker shut).
pub const PROBE_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// Half-open: until when the attempt let through has the provider.
    probing_until: Option<Instant>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> CircuitBreaker {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// `None` when an attempt may go ahead now, else how long to wait.
    /// Once the cooldown is over, the first caller is let through and the
    /// others wait for its outcome.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.with(|s| match (s.open_until, s.probing_until) {
            (None, _) => None,
            (Some(until), _) if until > now => Some(until - now),
            (Some(_), Some(probe)) if probe > now => Some(probe - now),
            (Some(_), _) => {
                s.probing_until = Some(now + PROBE_WINDOW);
                None
            }
        })
    }

    pub fn success(&self) {
        self.with(|s| *s = State::default());
    }

    pub fn failure(&self, now: Instant) {
        let (threshold, cooldown) = (self.threshold, self.cooldown);
        self.with(|s| {
            s.failures += 1;
            if s.failures >= threshold {
                if s.open_until.is_none_or(|u| u <= now) {
                    tracing::warn!(
                        failures = s.failures,
                        cooldown_ms = cooldown.as_millis() as u64,
                        "speech provider circuit breaker open"
                    );
                }
                s.open_until = Some(now + cooldown);
                s.probing_until = None;
            }
        });
    }

    /// Whether attempts are held back now (open, or half-open with an
    /// attempt under way). Unlike [`wait`](Self::wait), takes no slot.
    pub fn is_open(&self, now: Instant) -> bool {
        self.with(|s| {
            s.open_until.is_some_and(|u| u > now) || s.probing_until.is_some_and(|p| p > now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cooldown() {
        let b = CircuitBreaker::new(3, Duration::from_secs(10));
        let t = Instant::now();
        b.failure(t);
        b.failure(t);
        assert!(!b.is_open(t));
        b.failure(t);
        assert!(b.is_open(t));
        assert!(b.is_open(t + Duration::from_secs(9)));
        assert!(!b.is_open(t + Duration::from_secs(11)));
        assert_eq!(
            b.wait(t + Duration::from_secs(11)),
            None,
            "one attempt goes"
        );
        b.failure(t + Duration::from_secs(11));
        assert!(
            b.is_open(t + Duration::from_secs(12)),
            "a failed half-open attempt reopens"
        );
        b.success();
        assert!(!b.is_open(t + Duration::from_secs(12)));
    }

    #[test]
    fn half_open_lets_one_attempt_through_and_the_others_wait_for_it() {
        let b = CircuitBreaker::new(1, Duration::from_secs(10));
        let t = Instant::now();
        b.failure(t);
        let after = t + Duration::from_secs(10);
        assert_eq!(b.wait(after), None, "the first stream probes");
        let others = b.wait(after + Duration::from_millis(100));
        assert_eq!(others, Some(PROBE_WINDOW - Duration::from_millis(100)));
        assert!(b.is_open(after + Duration::from_millis(100)));
        // The probe succeeds: everyone may go.
        b.success();
        assert_eq!(b.wait(after + Duration::from_millis(200)), None);
        assert_eq!(b.wait(after + Duration::from_millis(200)), None);

        // A probe that never reports back frees the slot after the window.
        b.failure(after);
        let later = after + Duration::from_secs(10);
        assert_eq!(b.wait(later), None);
        assert!(b.wait(later).is_some());
        assert_eq!(b.wait(later + PROBE_WINDOW), None);
    }
}
