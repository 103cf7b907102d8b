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
    /// A trial call is under way while half-open.
    trial_running: bool,
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

    /// Whether a call to `url` may go out at `now`.
    pub fn check(&self, url: &str, now: Instant) -> Result<(), BreakerOpen> {
        let origin = origin_of(url);
        self.with(|map| {
            let Some(b) = map.get_mut(&origin) else {
                return Ok(());
            };
            match b.open_until {
                None => Ok(()),
                Some(until) if now < until => Err(BreakerOpen {
                    origin,
                    retry_in: until - now,
                }),
                Some(_) if b.trial_running => Err(BreakerOpen {
                    origin,
                    retry_in: Duration::ZERO,
                }),
                Some(_) => {
                    b.trial_running = true;
                    Ok(())
                }
            }
        })
    }

    /// Records the outcome of a call to `url`. Returns true when this
    /// failure opened the breaker.
    pub fn record(&self, url: &str, success: bool, now: Instant) -> bool {
        let origin = origin_of(url);
        let policy = self.policy;
        self.with(|map| {
            if success {
                map.remove(&origin);
                return false;
            }
            let b = map.entry(origin).or_default();
            b.consecutive_failures = b.consecutive_failures.saturating_add(1);
            let was_open = b.open_until.is_some();
            b.trial_running = false;
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
        assert!(!b.record(URL, false, t));
        assert!(!b.record(URL, false, t));
        assert!(b.check(URL, t).is_ok());
        assert!(b.record(URL, false, t), "the third failure opens it");
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
            b.record(URL, false, t);
        }
        let later = t + Duration::from_secs(11);
        assert!(b.check(URL, later).is_ok(), "the trial call");
        assert!(b.check(URL, later).is_err(), "only one trial at a time");
        b.record(URL, false, later);
        assert!(b.check(URL, later + Duration::from_secs(1)).is_err());
        let again = later + Duration::from_secs(11);
        assert!(b.check(URL, again).is_ok());
        b.record(URL, true, again);
        assert!(b.check(URL, again).is_ok());
        assert!(b.states(again).is_empty());
    }
}
