//! Circuit breakers for app servers: after a run of failed webhook calls to
//! one app server, calls to it fail at once for a cool-down instead of
//! piling up timeouts in every session that starts the app.
//!
//! One breaker per origin (scheme, host and port of the app's public URL),
//! shared by all sessions: Sightline's one [`CircuitBreaker`] type (crate
//! `sightline-breaker`, also used for the speech provider), kept in a map
//! by origin. Closed: calls go through and failures are counted;
//! `failure_threshold` failures in a row open it. Open: calls fail at once
//! until `cooldown` has passed. Then one trial call goes through
//! (half-open): success closes the breaker, failure opens it again.
//!
//! A call holds a [`CallPermit`] from [`WebhookBreakers::check`] until it
//! records its outcome. A trial whose caller went away without recording
//! one (its session stopped mid-call and the future was dropped) gives its
//! turn back when the permit drops, and a trial that never reports back at
//! all is given up after another `cooldown`: one lost call can never shut
//! an app server out for every user.
//!
//! The map's lock is taken once per webhook call, never per message; the
//! map keeps only the breakers that have seen a failure or have a call
//! under way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use sightline_breaker::{BreakerPolicy, CallPermit, CircuitBreaker, Recorded};

/// A call refused because the app server's breaker is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    pub origin: String,
    /// How long until a call may go (the rest of the cooldown, or of the
    /// trial call under way).
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
    breakers: Mutex<HashMap<String, Arc<CircuitBreaker>>>,
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

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Arc<CircuitBreaker>>) -> R) -> R {
        // A panic while holding this lock cannot leave the map half
        // updated in a harmful way: keep going with the data as it is.
        let mut map = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut map)
    }

    /// Whether a call to `url` may go out at `now`: a permit to make it, or
    /// how long the breaker stays open.
    pub fn check(&self, url: &str, now: Instant) -> Result<CallPermit, BreakerOpen> {
        let origin = origin_of(url);
        let policy = self.policy;
        let breaker = self.with(|map| {
            // Forget breakers that are closed with no failure and no call
            // under way (a permit holds its breaker): the map holds the
            // app servers that are failing, and those being called.
            map.retain(|_, b| Arc::strong_count(b) > 1 || b.consecutive_failures() > 0);
            map.entry(origin.clone())
                .or_insert_with(|| Arc::new(CircuitBreaker::new(policy)))
                .clone()
        });
        breaker
            .check(now)
            .map_err(|retry_in| BreakerOpen { origin, retry_in })
    }

    /// Every breaker that has seen a failure.
    pub fn states(&self, now: Instant) -> Vec<BreakerState> {
        self.with(|map| {
            let mut v: Vec<BreakerState> = map
                .iter()
                .filter(|(_, b)| b.consecutive_failures() > 0)
                .map(|(origin, b)| BreakerState {
                    origin: origin.clone(),
                    consecutive_failures: b.consecutive_failures(),
                    open_for_ms: b.open_for(now).as_millis() as u64,
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
        assert!(!trial.record(false, later).opened(), "already open");
        assert!(b.check(URL, later + Duration::from_secs(1)).is_err());
        let again = later + Duration::from_secs(11);
        let trial = b.check(URL, again).expect("the next trial");
        trial.record(true, again);
        assert!(b.check(URL, again).is_ok());
        assert!(b.states(again).is_empty());
    }

    // How a trial call gives its turn back is the breaker's own rule,
    // tested in `sightline-breaker`; here, what the map by origin adds.

    #[test]
    fn app_servers_that_recovered_are_forgotten() {
        let b = breakers();
        let t = Instant::now();
        fail(&b, t);
        let other = b.check("http://other.example/webhook", t).expect("closed");
        assert_eq!(
            b.with(|m| m.len()),
            2,
            "a failing origin and a call under way"
        );
        other.record(true, t);
        b.check(URL, t).expect("closed").record(true, t);
        let after = b.check("http://third.example/", t).expect("closed");
        assert_eq!(b.with(|m| m.len()), 1, "only the call under way");
        drop(after);
        assert!(b.states(t).is_empty());
    }

    fn fail(b: &WebhookBreakers, now: Instant) -> bool {
        b.check(URL, now)
            .expect("closed")
            .record(false, now)
            .opened()
    }
}
