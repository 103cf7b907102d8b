//! The breaker's state machine: closed, open until a time, half-open with
//! one trial under way.

use std::time::{Duration, Instant};

use crate::policy::BreakerPolicy;

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) failures: u32,
    open_until: Option<Instant>,
    /// The trial under way while half-open: its number and when it began.
    trial: Option<(u64, Instant)>,
    /// Numbers trials, so that a late give-back frees only its own turn.
    trials: u64,
}

/// What recording an outcome did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A success: the breaker is closed, its failures forgotten.
    Closed,
    /// A failure, not yet enough to open the breaker.
    Counted { failures: u32 },
    /// This failure opened a closed breaker.
    Opened { failures: u32 },
    /// A failure once the cooldown was over (a failed trial): open again.
    Reopened { failures: u32 },
    /// A failure while the breaker was open: its cooldown starts again.
    KeptOpen { failures: u32 },
}

impl Recorded {
    /// Whether this failure opened a closed breaker.
    pub fn opened(&self) -> bool {
        matches!(self, Recorded::Opened { .. })
    }

    /// Whether the breaker started refusing calls with this failure: it
    /// opened, or a trial failed.
    pub fn started_refusing(&self) -> bool {
        matches!(self, Recorded::Opened { .. } | Recorded::Reopened { .. })
    }
}

impl State {
    /// Lets a call through (`Ok(Some(trial))` for the half-open trial,
    /// `Ok(None)` while closed), or says how long to wait.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        trial_timeout: Duration,
    ) -> Result<Option<u64>, Duration> {
        match (self.open_until, self.trial) {
            (None, _) => Ok(None),
            (Some(until), _) if now < until => Err(until - now),
            // One trial at a time, unless it has been silent so long that
            // its caller must be gone.
            (Some(_), Some((_, since))) if now < since + trial_timeout => {
                Err(since + trial_timeout - now)
            }
            (Some(_), _) => {
                self.trials += 1;
                self.trial = Some((self.trials, now));
                Ok(Some(self.trials))
            }
        }
    }

    pub(crate) fn record(
        &mut self,
        policy: &BreakerPolicy,
        success: bool,
        now: Instant,
    ) -> Recorded {
        if success {
            *self = State {
                trials: self.trials,
                ..State::default()
            };
            return Recorded::Closed;
        }
        self.failures = self.failures.saturating_add(1);
        self.trial = None;
        let failures = self.failures;
        if failures < policy.failure_threshold {
            return Recorded::Counted { failures };
        }
        let before = self.open_until.replace(now + policy.cooldown);
        match before {
            None => Recorded::Opened { failures },
            Some(until) if until <= now => Recorded::Reopened { failures },
            Some(_) => Recorded::KeptOpen { failures },
        }
    }

    /// A trial's caller went away without an outcome: the next caller may
    /// try (unless another trial has begun meanwhile).
    pub(crate) fn give_back(&mut self, trial: u64) {
        if self.trial.is_some_and(|(n, _)| n == trial) {
            self.trial = None;
        }
    }

    pub(crate) fn holds_back(&self, now: Instant, trial_timeout: Duration) -> bool {
        self.open_until.is_some_and(|u| u > now)
            || (self.open_until.is_some()
                && self
                    .trial
                    .is_some_and(|(_, since)| since + trial_timeout > now))
    }

    pub(crate) fn open_for(&self, now: Instant) -> Duration {
        self.open_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }
}
