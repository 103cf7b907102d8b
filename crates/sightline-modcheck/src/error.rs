//! What can stop the module check from reading a crate.

use std::path::PathBuf;

use thiserror::Error;

/// Why a crate's modules could not be read.
#[derive(Debug, Error)]
pub enum ModcheckError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("module `{module}` declared in {declared_in} has no file ({tried})")]
    MissingModule {
        module: String,
        declared_in: PathBuf,
        tried: String,
    },
}
