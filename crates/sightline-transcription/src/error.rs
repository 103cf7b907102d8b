//! Errors of speech providers, classed by what the stream should do next.

use thiserror::Error;

/// What a failure means for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network trouble, a 5xx, a timeout, a provider restart: reconnect
    /// with backoff and replay the audio not yet transcribed.
    Transient,
    /// A bad key, a bad configuration, an unsupported language: retrying
    /// cannot help; the stream fails and its apps are told.
    Permanent,
}

/// A provider failure, with the provider's name and what happened.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{provider}: {message}")]
pub struct AsrError {
    pub class: ErrorClass,
    pub provider: &'static str,
    pub message: String,
}

impl AsrError {
    pub fn transient(provider: &'static str, message: impl Into<String>) -> AsrError {
        AsrError {
            class: ErrorClass::Transient,
            provider,
            message: message.into(),
        }
    }

    pub fn permanent(provider: &'static str, message: impl Into<String>) -> AsrError {
        AsrError {
            class: ErrorClass::Permanent,
            provider,
            message: message.into(),
        }
    }

    /// Classes an HTTP status met while opening a provider's WebSocket:
    /// 401/403 (bad key), 400/404/422 (bad request or configuration) are
    /// permanent; 408, 429 and 5xx are transient.
    pub fn from_status(provider: &'static str, status: u16, body: &str) -> AsrError {
        let message = format!("HTTP {status} when connecting: {}", body.trim());
        match status {
            408 | 429 | 500..=599 => AsrError::transient(provider, message),
            400..=499 => AsrError::permanent(provider, message),
            _ => AsrError::transient(provider, message),
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.class == ErrorClass::Permanent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classed() {
        assert!(AsrError::from_status("x", 401, "").is_permanent());
        assert!(AsrError::from_status("x", 403, "").is_permanent());
        assert!(AsrError::from_status("x", 400, "").is_permanent());
        assert!(!AsrError::from_status("x", 503, "").is_permanent());
        assert!(!AsrError::from_status("x", 429, "").is_permanent());
        assert!(!AsrError::from_status("x", 408, "").is_permanent());
    }
}
