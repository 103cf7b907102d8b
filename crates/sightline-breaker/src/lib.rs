//! The circuit breaker Sightline puts in front of every remote service it
//! calls on its own: app servers (webhooks, one breaker per origin) and
//! speech providers (one breaker per provider, shared by every stream).
//!
//! Closed: calls go through and failures are counted;
//! `failure_threshold` failures in a row open it. Open: calls are refused
//! for `cooldown`, with how long is left. Then one trial call goes through
//! (half-open) while every other caller keeps waiting: its success closes
//! the breaker, its failure opens it again.
//!
//! A call holds a [`CallPermit`] from [`CircuitBreaker::check`] until it
//! records its outcome. A trial whose caller went away without recording
//! one (its actor stopped mid-call) gives its turn back when the permit
//! drops, and a trial that never reports back at all is given up after the
//! breaker's trial timeout: one lost call can never shut a service out for
//! everyone.
//!
//! Pure state behind one lock, with the clock passed in; no I/O, no
//! logging: callers log what [`Recorded`] tells them.

mod permit;
mod policy;
mod state;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use permit::CallPermit;
pub use policy::BreakerPolicy;
pub use state::Recorded;

use state::State;

/// One circuit breaker. Shared behind an [`Arc`]: a permit keeps its
/// breaker alive.
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    /// How long a trial call may stay silent before another is let through.
    trial_timeout: Duration,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker; a silent trial is given up after `cooldown`.
    pub fn new(policy: BreakerPolicy) -> CircuitBreaker {
        CircuitBreaker {
            policy: BreakerPolicy {
                failure_threshold: policy.failure_threshold.max(1),
                ..policy
            },
            trial_timeout: policy.cooldown,
            state: Mutex::new(State::default()),
        }
    }

    /// The same breaker, giving up a silent trial after `timeout` instead.
    pub fn with_trial_timeout(mut self, timeout: Duration) -> CircuitBreaker {
        self.trial_timeout = timeout;
        self
    }

    pub fn policy(&self) -> BreakerPolicy {
        self.policy
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic while holding this lock cannot leave the breaker half
        // updated in a harmful way: keep going with the state as it is.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// Whether a call may go out at `now`: a permit to make it, or how long
    /// until one may (the rest of the cooldown, or of the trial under way).
    pub fn check(self: &Arc<Self>, now: Instant) -> Result<CallPermit, Duration> {
        let trial_timeout = self.trial_timeout;
        let trial = self.with(|s| s.admit(now, trial_timeout))?;
        Ok(CallPermit::new(self.clone(), trial))
    }

    /// Records a call's outcome without a permit (a connection that had
    /// opened, then broke).
    pub fn record(&self, success: bool, now: Instant) -> Recorded {
        let policy = self.policy;
        self.with(|s| s.record(&policy, success, now))
    }

    pub(crate) fn give_back(&self, trial: u64) {
        self.with(|s| s.give_back(trial));
    }

    /// Whether calls are held back at `now` (open, or half-open with a
    /// trial under way). Unlike [`check`](Self::check), takes no turn.
    pub fn is_open(&self, now: Instant) -> bool {
        let trial_timeout = self.trial_timeout;
        self.with(|s| s.holds_back(now, trial_timeout))
    }

    /// Failures in a row so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.with(|s| s.failures)
    }

    /// How long the breaker stays open from `now`; zero when closed or
    /// ready for a trial.
    pub fn open_for(&self, now: Instant) -> Duration {
        self.with(|s| s.open_for(now))
    }
}

#[cfg(test)]
mod tests;
