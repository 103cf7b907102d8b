//! Turning driver errors into [`StoreError`]s that say what failed.
//!
//! An unreachable database (no server selectable, broken socket, pool
//! cleared by a network error) becomes [`StoreError::Unavailable`], so the
//! server can answer 503 and sessions know to keep their cached state; a
//! unique-index violation becomes [`StoreError::Conflict`]; anything else is
//! a [`StoreError::Backend`] naming the operation.

use mongodb::error::{Error, ErrorKind, WriteFailure};

use crate::StoreError;

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Whether `e` is a unique-index violation.
pub fn is_duplicate_key(e: &Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// Maps a driver error raised during `op`.
pub fn store_error(op: &'static str, e: Error) -> StoreError {
    let reason = e.to_string();
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => StoreError::Unavailable { op, reason },
        _ => StoreError::Backend { op, reason },
    }
}
