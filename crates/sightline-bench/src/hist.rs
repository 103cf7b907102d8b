//! A latency histogram in microseconds that many tasks record into at once
//! (atomic buckets, log-linear with 256 sub-buckets per power of two, so
//! every reported percentile is within 0.4 % of the true value).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

const SUB: u64 = 256;
const LINEAR: u64 = 2 * SUB;
const MAX_SHIFT: u64 = 30;
const BUCKETS: usize = (LINEAR + MAX_SHIFT * SUB) as usize;

/// Concurrent latency histogram.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

fn index(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let msb = 63 - u64::from(us.leading_zeros());
    let shift = (msb - 8).min(MAX_SHIFT);
    let mantissa = (us >> shift).min(2 * SUB - 1);
    ((LINEAR + (shift - 1) * SUB + (mantissa - SUB)) as usize).min(BUCKETS - 1)
}

fn value(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < LINEAR {
        return idx;
    }
    let shift = (idx - LINEAR) / SUB + 1;
    let mantissa = (idx - LINEAR) % SUB + SUB;
    (mantissa << shift) + (1 << (shift - 1))
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Histogram {
    pub fn record(&self, us: u64) {
        self.buckets[index(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.max.store(0, Ordering::Relaxed);
    }

    /// The value at quantile `q` (0..1), in microseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
        if total == 0 {
            return 0;
        }
        let target = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target {
                return value(i).min(self.max.load(Ordering::Relaxed));
            }
        }
        self.max.load(Ordering::Relaxed)
    }

    pub fn percentiles(&self) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: self.count(),
            p50: ms(self.quantile(0.50)),
            p90: ms(self.quantile(0.90)),
            p99: ms(self.quantile(0.99)),
            p999: ms(self.quantile(0.999)),
            max: ms(self.max.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_precision() {
        for us in [0u64, 1, 511, 512, 1000, 1500, 65_000, 1_000_000, 30_000_000] {
            let v = value(index(us));
            let err = (v as f64 - us as f64).abs() / (us.max(1) as f64);
            assert!(err < 0.005, "{us} -> {v}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let h = Histogram::default();
        for us in 1..=10_000 {
            h.record(us);
        }
        let p = h.percentiles();
        assert!((p.p50 - 5.0).abs() < 0.05, "{p:?}");
        assert!((p.p99 - 9.9).abs() < 0.05, "{p:?}");
        assert_eq!(p.count, 10_000);
    }
}
