//! Leave to make one call through a breaker.

use std::sync::Arc;
use std::time::Instant;

use crate::{CircuitBreaker, Recorded};

/// Leave to make one call through a breaker. Record the call's outcome
/// with [`CallPermit::record`]; dropped without one, a trial call gives its
/// turn back so that the next caller can try.
#[derive(Debug)]
#[must_use = "record the call's outcome with CallPermit::record"]
pub struct CallPermit {
    breaker: Arc<CircuitBreaker>,
    /// The number of the half-open trial this permit is, if it is one.
    trial: Option<u64>,
}

impl CallPermit {
    pub(crate) fn new(breaker: Arc<CircuitBreaker>, trial: Option<u64>) -> Self {
        CallPermit { breaker, trial }
    }

    /// Whether this call is the half-open trial.
    pub fn is_trial(&self) -> bool {
        self.trial.is_some()
    }

    /// Records the outcome of the call.
    pub fn record(mut self, success: bool, now: Instant) -> Recorded {
        self.trial = None;
        self.breaker.record(success, now)
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if let Some(trial) = self.trial {
            self.breaker.give_back(trial);
        }
    }
}
