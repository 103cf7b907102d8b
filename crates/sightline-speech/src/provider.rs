//! The seam between Sightline and a speech synthesiser: a provider turns a
//! checked [`SpeechRequest`] into audio the phone can play.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

use crate::request::SpeechRequest;

/// Spoken audio, as the phone receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    pub bytes: Bytes,
    /// `audio/wav`, `audio/mpeg`, …
    pub content_type: String,
}

/// Why a provider produced no audio.
#[derive(Debug, Error)]
pub enum SynthesisError {
    #[error("{provider} did not answer within {after:?}")]
    Timeout {
        provider: &'static str,
        after: Duration,
    },
    #[error("{provider} produced more than {limit} bytes of audio")]
    TooLarge {
        provider: &'static str,
        limit: usize,
    },
    #[error("{provider} could not be started: {reason}")]
    Unavailable {
        provider: &'static str,
        reason: String,
    },
    #[error("{provider} failed: {reason}")]
    Failed {
        provider: &'static str,
        reason: String,
    },
    #[error("{provider} answered HTTP {status}: {detail}")]
    Status {
        provider: &'static str,
        status: u16,
        detail: String,
    },
}

/// A text-to-speech engine. Futures need not be `Send`: the HTTP provider
/// runs on the actix worker that took the request.
#[async_trait(?Send)]
pub trait SpeechSynthesizer: Send + Sync {
    /// A short name for metrics, logs and the cache key (`espeak`,
    /// `elevenlabs`).
    fn name(&self) -> &'static str;

    /// Speaks the request's text.
    async fn synthesize(&self, request: &SpeechRequest) -> Result<Audio, SynthesisError>;
}
