//! Errors found while reading a frame from glasses or an app.

use thiserror::Error;

/// Why an inbound frame could not be understood. Each variant carries enough
/// context to tell the sender what to fix; none of them is fatal to a session.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("message must be a JSON object with a string \"type\" field")]
    MissingType,
    #[error("message of type \"{kind}\" is invalid: {reason}")]
    InvalidField { kind: String, reason: String },
    #[error("unknown message type \"{0}\"")]
    UnknownType(String),
}

impl ProtocolError {
    /// The error code the MentraOS protocol uses for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::UnknownType(_) => "UNKNOWN_MESSAGE_TYPE",
            _ => "MALFORMED_MESSAGE",
        }
    }

    pub(crate) fn invalid(kind: &str, err: impl std::fmt::Display) -> Self {
        ProtocolError::InvalidField {
            kind: kind.to_string(),
            reason: err.to_string(),
        }
    }
}
