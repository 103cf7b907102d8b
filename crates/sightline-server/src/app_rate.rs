//! Per-app request rates for REST routes apps call with their API key
//! (simple storage): one token bucket per package, all of the app's users
//! together.
//!
//! Only packages whose API key was verified get a bucket, and the table
//! holds at most a bounded number of them: when it is full, the bucket used
//! longest ago is dropped (its app starts again with a full burst), so no
//! caller can grow it past its bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::limits::{Admission, Rate, TokenBucket};

/// One app's bucket and when it was last asked.
#[derive(Debug)]
struct Entry {
    bucket: TokenBucket,
    used: Instant,
}

/// Token buckets by package, at most `max_apps` of them.
#[derive(Debug)]
pub struct AppRates {
    rate: Rate,
    max_apps: usize,
    buckets: Mutex<HashMap<String, Entry>>,
}

impl AppRates {
    pub fn new(rate: Rate, max_apps: usize) -> Self {
        AppRates {
            rate,
            max_apps: max_apps.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for one request of `package` now; `false` when the
    /// app is over its rate.
    pub fn admit(&self, package: &str) -> bool {
        self.admit_at(package, Instant::now())
    }

    /// [`AppRates::admit`] on an injected clock.
    pub fn admit_at(&self, package: &str, now: Instant) -> bool {
        // A poisoned lock only means another request panicked while
        // holding plain counters; they are still usable.
        let mut buckets = match self.buckets.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !buckets.contains_key(package) && buckets.len() >= self.max_apps {
            let idlest = buckets
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(p, _)| p.clone());
            if let Some(p) = idlest {
                buckets.remove(&p);
            }
        }
        let entry = buckets.entry(package.to_string()).or_insert_with(|| Entry {
            bucket: TokenBucket::new(self.rate, now),
            used: now,
        });
        entry.used = now;
        matches!(entry.bucket.admit(now), Admission::Admit)
    }

    /// How many apps have a bucket.
    pub fn tracked(&self) -> usize {
        match self.buckets.lock() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_app_has_its_own_rate() {
        let rates = AppRates::new(
            Rate {
                per_second: 1,
                burst: 2,
            },
            8,
        );
        let t0 = Instant::now();
        assert!(rates.admit_at("com.a", t0));
        assert!(rates.admit_at("com.a", t0));
        assert!(!rates.admit_at("com.a", t0), "past the burst");
        assert!(rates.admit_at("com.b", t0), "another app is not held up");
        assert!(rates.admit_at("com.a", t0 + Duration::from_secs(1)));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_idlest_app() {
        let rates = AppRates::new(
            Rate {
                per_second: 1,
                burst: 1,
            },
            2,
        );
        let t0 = Instant::now();
        assert!(rates.admit_at("com.a", t0));
        assert!(rates.admit_at("com.b", t0 + Duration::from_millis(1)));
        assert!(rates.admit_at("com.c", t0 + Duration::from_millis(2)));
        assert_eq!(rates.tracked(), 2);
        assert!(
            !rates.admit_at("com.b", t0 + Duration::from_millis(3)),
            "com.b kept its spent bucket"
        );
    }
}
