//! The one trait every text-translation provider implements, its request
//! and result, and its errors.
//!
//! A translation subscription the speech provider cannot serve itself (a
//! pair other than speech → English on the local recogniser, or any pair on
//! Deepgram) is served in two steps: the speech is transcribed in its own
//! language, and each result's text is sent to a [`TextTranslator`]
//! ([`crate::relay`] does this). Failures are classed like the speech
//! providers' ([`ErrorClass`]): transient ones are retried, permanent ones
//! fail the translation once.

use std::fmt;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use thiserror::Error;

use crate::error::ErrorClass;

/// One text to translate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateRequest {
    pub text: String,
    /// BCP-47 tag of the text's language; `None` lets the provider detect it.
    pub source: Option<String>,
    /// BCP-47 tag of the language wanted.
    pub target: String,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub text: String,
    /// The language the provider detected, when it says.
    pub detected_source: Option<String>,
}

/// A translation failure, with the provider's name and what happened.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{provider}: {message}")]
pub struct TranslationError {
    pub class: ErrorClass,
    pub provider: &'static str,
    pub message: String,
}

impl TranslationError {
    pub fn transient(provider: &'static str, message: impl Into<String>) -> TranslationError {
        TranslationError {
            class: ErrorClass::Transient,
            provider,
            message: message.into(),
        }
    }

    pub fn permanent(provider: &'static str, message: impl Into<String>) -> TranslationError {
        TranslationError {
            class: ErrorClass::Permanent,
            provider,
            message: message.into(),
        }
    }

    /// Classes an HTTP status of a translation API: 408, 429 and 5xx are
    /// transient; every other 4xx (bad key, quota used up, bad request,
    /// unsupported language) is permanent.
    pub fn from_status(provider: &'static str, status: u16, body: &str) -> TranslationError {
        let body: String = body.trim().chars().take(300).collect();
        let message = format!("HTTP {status}: {body}");
        match status {
            408 | 429 | 500..=599 => TranslationError::transient(provider, message),
            400..=499 => TranslationError::permanent(provider, message),
            _ => TranslationError::transient(provider, message),
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.class == ErrorClass::Permanent
    }
}

/// A text-translation provider's HTTP API.
///
/// The future runs on the caller's actix arbiter (the HTTP client is not
/// `Send`); it must end within the provider's configured timeout.
pub trait TextTranslator: Send + Sync + fmt::Debug {
    /// Short name, for logs.
    fn name(&self) -> &'static str;
    fn translate(
        &self,
        request: TranslateRequest,
    ) -> LocalBoxFuture<'static, Result<Translation, TranslationError>>;
}

/// Limits every HTTP translator applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranslatorLimits {
    /// Longest text sent in one request, in characters; longer text is cut
    /// at a word boundary before this many characters.
    pub max_chars: usize,
    /// Longest wait for one request's answer.
    pub timeout: Duration,
}

impl Default for TranslatorLimits {
    fn default() -> Self {
        TranslatorLimits {
            max_chars: 2000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `text` cut to at most `max` characters, at the last whitespace before
/// the limit when there is one.
pub fn bounded(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        None => text,
        Some((cut, _)) => {
            let head = &text[..cut];
            match head.rfind(char::is_whitespace) {
                Some(space) if space > 0 => head[..space].trim_end(),
                _ => head,
            }
        }
    }
}

/// Posts a JSON body and reads a JSON answer, mapping every failure to a
/// [`TranslationError`]: timeouts and network trouble are transient,
/// statuses per [`TranslationError::from_status`], an unreadable answer is
/// transient.
pub(crate) async fn post_json(
    provider: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, TranslationError> {
    let client = awc::Client::builder().timeout(timeout).finish();
    let mut request = client.post(url);
    for (k, v) in headers {
        request = request.insert_header((k, v));
    }
    let sending = tokio::time::timeout(timeout, request.send_json(&body)).await;
    let mut response = match sending {
        Err(_) => return Err(TranslationError::transient(provider, "timed out")),
        Ok(Err(e)) => {
            return Err(TranslationError::transient(
                provider,
                format!("request failed: {e}"),
            ))
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    // Answers are small; anything past 1 MiB is not one.
    let reading = tokio::time::timeout(timeout, response.body().limit(1 << 20)).await;
    let bytes = match reading {
        Err(_) => {
            return Err(TranslationError::transient(
                provider,
                "timed out reading the answer",
            ))
        }
        Ok(Err(e)) => {
            return Err(TranslationError::transient(
                provider,
                format!("could not read the answer: {e}"),
            ))
        }
        Ok(Ok(b)) => b,
    };
    if !(200..300).contains(&status) {
        return Err(TranslationError::from_status(
            provider,
            status,
            &String::from_utf8_lossy(&bytes),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| TranslationError::transient(provider, format!("unreadable answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classed() {
        let c = |s| TranslationError::from_status("x", s, "").is_permanent();
        assert!(c(403));
        assert!(c(400));
        assert!(c(456));
        assert!(!c(429));
        assert!(!c(503));
        assert!(!c(408));
    }

    #[test]
    fn long_text_is_cut_at_a_word() {
        assert_eq!(bounded("hello world", 100), "hello world");
        assert_eq!(bounded("hello world again", 13), "hello world");
        assert_eq!(bounded("abcdefgh", 4), "abcd");
        assert_eq!(bounded("ñññññ", 3), "ñññ");
    }
}
