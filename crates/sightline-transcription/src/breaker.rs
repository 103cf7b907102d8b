//! A circuit breaker per provider, shared by every stream of every session:
//! after `threshold` consecutive connection failures the provider is left
//! alone for `cooldown`, then one attempt is let through (half-open); a
//! success closes the breaker again. Streams whose provider is broken wait
//! instead of each retrying on its own.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
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
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.with(|s| match s.open_until {
            Some(until) if until > now => Some(until - now),
            _ => None,
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
            }
        });
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.wait(now).is_some()
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
        b.failure(t + Duration::from_secs(11));
        assert!(
            b.is_open(t + Duration::from_secs(12)),
            "a failed half-open attempt reopens"
        );
        b.success();
        assert!(!b.is_open(t + Duration::from_secs(12)));
    }
}
