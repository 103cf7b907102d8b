//! Errors of the store, saying which operation failed and why.

use thiserror::Error;

/// Why a store call failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("store backend failed during {op}: {reason}")]
    Backend { op: &'static str, reason: String },
    #[error("stored record is corrupt ({what}): {reason}")]
    Corrupt { what: String, reason: String },
    #[error("store is unreachable during {op}: {reason}")]
    Unavailable { op: &'static str, reason: String },
    #[error("store did not answer {op} within {ms} ms")]
    Timeout { op: &'static str, ms: u64 },
}

impl StoreError {
    /// Whether the backend could not be reached or did not answer in time:
    /// the call may succeed later without any change on Sightline's side.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Timeout { .. }
        )
    }

    pub(crate) fn backend(op: &'static str, e: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            op,
            reason: e.to_string(),
        }
    }
}
