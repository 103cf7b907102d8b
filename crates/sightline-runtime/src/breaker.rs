//! Circuit breakers for app servers: after a run of failed webhook calls to
//! one app server, calls to it fail at once for a cool-down instead of
//! piling up timeouts in every session that starts the app.
//!
//! One breaker per origin (scheme, host and port of the app's public URL),
//! shared by all sessions. Closed: calls go through and failures are
//! counted; `failure_threshold` failures in a row open it. Open: calls fail
//! at once until `cooldown` has passed. Then one trial call goes through
//! (half-open): success closes the breaker, failure opens it again.
//!
//! A call holds a [`CallPermit`] from [`WebhookBreakers::check`] until it
//! records its outcome. A trial whose caller went away without recording
//! one (its session stopped mid-call and the future was dropped) gives its
//! turn back when the permit drops, and a trial that never reports back at
//! all is given up after another `cooldown`: one lost call can never shut
//! an app server out for every user.
//!
//! The lock is taken once per webhook call, never per message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    pub failure_threshold: u32,
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// When the trial call under way while half-open started.
    trial_since: Option<Instant>,
}

/// Leave to make one call through a breaker. Record the call's outcome
/// with [`CallPermit::record`]; dropped without one, a trial call gives its
/// turn back so that the next caller can try.
#[derive(Debug)]
#[must_use = "record the call's outcome with CallPermit::record"]
pub struct CallPermit<'a> {
    breakers: &'a WebhookBreakers,
    origin: String,
    trial: bool,
}

impl CallPermit<'_> {
    /// Records the outcome of the call. Returns true when this failure
    /// opened the breaker.
    pub fn record(mut self, success: bool, now: Instant) -> bool {
        self.trial = false;
        self.breakers.record_origin(&self.origin, success, now)
    }
}

impl Drop for CallPermit<'_> {
    fn drop(&mut self) {
        if self.trial {
            self.breakers.with(|map| {
                if let Some(b) = map.get_mut(&self.origin) {
                    b.trial_since = None;
                }
            });
        }
    }
}

/// A call refused because the app server's breaker is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    pub origin: String,
    pub retry_in: Duration,
}

/// One breaker as the stats show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerState {
    pub origin: String,
    pub consecutive_failures: u32,
    /// Milliseconds left before a trial call is allowed; 0 when closed.
    pub open_for_ms: u64,
}

/// Every app server's breaker.
#[derive(Debug, Default)]
pub struct WebhookBreakers {
    policy: BreakerPolicy,
    breakers: Mutex<HashMap<String, Breaker>>,
}

/// The part of a URL a breaker is kept for.
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{}", authority.to_ascii_lowercase())
}

impl WebhookBreakers {
    pub fn new(policy: BreakerPolicy) -> Self {
        WebhookBreakers {
            policy,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Breaker>) -> R) -> R {
        // A panic while holding this lock cannot leave a breaker half
        // updated in a harmful way: keep going with the data as it is.
        let mut map = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut map)
    }

    /// Whether a call to `url` may go out at `now`: a permit to make it, or
    /// how long the breaker stays open.
    pub fn check(&self, url: &str, now: Instant) -> Result<CallPermit<'_>, BreakerOpen> {
        let origin = origin_of(url);
        let cooldown = self.policy.cooldown;
        let trial = self.with(|map| {
            let Some(b) = map.get_mut(&origin) else {
                return Ok(false);
            };
            match (b.open_until, b.trial_since) {
                (None, _) => Ok(false),
                (Some(until), _) if now < until => Err(until - now),
                // One trial at a time, unless it has been silent so long
                // that its caller must be gone.
                (Some(_), Some(since)) if now < since + cooldown => Err(Duration::ZERO),
                (Some(_), _) => {
                    b.trial_since = Some(now);
                    Ok(true)
                }
            }
        });
        match trial {
            Ok(trial) => Ok(CallPermit {
                breakers: self,
                origin,
                trial,
            }),
            Err(retry_in) => Err(BreakerOpen { origin, retry_in }),
        }
    }

    fn record_origin(&self, origin: &str, success: bool, now: Instant) -> bool {
        let policy = self.policy;
        self.with(|map| {
            if success {
                map.remove(origin);
                return false;
            }
            let b = map.entry(origin.to_string()).or_default();
            b.consecutive_failures = b.consecutive_failures.saturating_add(1);
            let was_open = b.open_until.is_some();
            b.trial_since = None;
            if b.consecutive_failures >= policy.failure_threshold {
                b.open_until = Some(now + policy.cooldown);
                return !was_open || b.consecutive_failures == policy.failure_threshold;
            }
            false
        })
    }

    /// Every breaker that has seen a failure.
    pub fn states(&self, now: Instant) -> Vec<BreakerState> {
        self.with(|map| {
            let mut v: Vec<BreakerState> = map
                .iter()
                .map(|(origin, b)| BreakerState {
                    origin: origin.clone(),
                    consecutive_failures: b.consecutive_failures,
                    open_for_ms: b
                        .open_until
                        .map_or(0, |u| u.saturating_duration_since(now).as_millis() as u64),
                })
                .collect();
            v.sort_by(|a, b| a.origin.cmp(&b.origin));
            v
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://App.example:8080/webhook";

    fn breakers() -> WebhookBreakers {
        WebhookBreakers::new(BreakerPolicy {
            failure_threshold: 3,
            cooldown: Duration::from_secs(10),
        })
    }

    #[test]
    fn origins_ignore_paths_and_case() {
        assert_eq!(origin_of(URL), "http://app.example:8080");
        assert_eq!(
            origin_of("https://a.b/x?y#z"),
            origin_of("https://A.B/settings")
        );
    }

    #[test]
    fn opens_after_the_threshold_and_fails_fast() {
        let b = breakers();
        let t = Instant::now();
        assert!(!fail(&b, t));
        assert!(!fail(&b, t));
        assert!(fail(&b, t), "the third failure opens it");
        let open = b.check("http://app.example:8080/settings", t).unwrap_err();
        assert_eq!(open.retry_in, Duration::from_secs(10));
        assert!(b.check("http://other.example/webhook", t).is_ok());
        assert_eq!(b.states(t)[0].open_for_ms, 10_000);
    }

    #[test]
    fn one_trial_after_the_cooldown_closes_or_reopens() {
        let b = breakers();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let later = t + Duration::from_secs(11);
        let trial = b.check(URL, later).expect("the trial call");
        assert!(b.check(URL, later).is_err(), "only one trial at a time");
        trial.record(false, later);
        assert!(b.check(URL, later + Duration::from_secs(1)).is_err());
        let again = later + Duration::from_secs(11);
        let trial = b.check(URL, again).expect("the next trial");
        trial.record(true, again);
        assert!(b.check(URL, again).is_ok());
        assert!(b.states(again).is_empty());
    }

    #[test]
    fn a_trial_dropped_without_an_outcome_gives_its_turn_back() {
        let b = breakers();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let later = t + Duration::from_secs(11);
        let trial = b.check(URL, later).expect("the trial call");
        drop(trial); // its session stopped mid-call
        let next = b.check(URL, later).expect("the next caller may try");
        next.record(true, later);
        assert!(b.states(later).is_empty());
    }

    #[test]
    fn a_trial_that_never_reports_back_is_given_up_after_a_cooldown() {
        let b = breakers();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let later = t + Duration::from_secs(11);
        let lost = b.check(URL, later).expect("the trial call");
        assert!(b.check(URL, later + Duration::from_secs(9)).is_err());
        let next = b
            .check(URL, later + Duration::from_secs(10))
            .expect("a silent trial does not block for ever");
        next.record(true, later + Duration::from_secs(10));
        std::mem::forget(lost);
        assert!(b.check(URL, later + Duration::from_secs(10)).is_ok());
    }

    fn fail(b: &WebhookBreakers, now: Instant) -> bool {
        b.check(URL, now).expect("closed").record(false, now)
    }
}
