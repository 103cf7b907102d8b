//! Totals per kind of actor that outlive the actors: each probe counts
//! into its kind's totals, and the registry keeps one per kind.

use std::sync::atomic::{AtomicU64, Ordering};

/// Totals per kind of actor that outlive the actors themselves.
#[derive(Debug, Default)]
pub struct KindTotals {
    failures: AtomicU64,
}

impl KindTotals {
    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Failures of every actor of this kind since the process started.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}
