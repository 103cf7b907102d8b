//! The production provider: ElevenLabs (or any server speaking its API),
//! as the MentraOS cloud uses it, so apps hear the voices they chose.
//!
//! One `POST {base}/v1/text-to-speech/{voice_id}/stream` per text, with the
//! account key in `xi-api-key` and the JSON body `{text, model_id,
//! voice_settings}`; the voice, model and settings the app did not give
//! take MentraOS's defaults. The answer (MP3 by default) is read whole, up
//! to a size limit and within a time limit, so it can be cached.

use std::time::Duration;

use async_trait::async_trait;
use awc::error::SendRequestError;
use serde::Serialize;

use crate::provider::{Audio, SpeechSynthesizer, SynthesisError};
use crate::request::{ResolvedSettings, SpeechRequest};

const NAME: &str = "elevenlabs";
/// The public ElevenLabs API.
pub const DEFAULT_BASE_URL: &str = "https://api.elevenlabs.io";
/// How much of an error answer is kept for the log.
const DETAIL_BYTES: usize = 512;

/// Where and how ElevenLabs is called.
#[derive(Clone, PartialEq)]
pub struct ElevenLabsConfig {
    /// Base URL, without a trailing path (`https://api.elevenlabs.io`).
    pub base_url: String,
    pub api_key: String,
    /// Longest wait for the whole answer.
    pub timeout: Duration,
    /// Largest answer accepted.
    pub max_audio_bytes: usize,
}

impl ElevenLabsConfig {
    pub fn new(api_key: impl Into<String>) -> ElevenLabsConfig {
        ElevenLabsConfig {
            base_url: DEFAULT_BASE_URL.into(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(15),
            max_audio_bytes: 8 << 20,
        }
    }
}

impl std::fmt::Debug for ElevenLabsConfig {
    // The key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("max_audio_bytes", &self.max_audio_bytes)
            .finish()
    }
}

/// The request body ElevenLabs reads.
#[derive(Debug, Serialize)]
struct Body<'a> {
    text: &'a str,
    model_id: &'a str,
    voice_settings: ResolvedSettings,
}

/// Speaks through an ElevenLabs-compatible API.
#[derive(Debug, Clone)]
pub struct ElevenLabs {
    config: ElevenLabsConfig,
}

impl ElevenLabs {
    pub fn new(config: ElevenLabsConfig) -> ElevenLabs {
        ElevenLabs { config }
    }

    /// The URL a request is posted to. The voice id was checked to be
    /// URL-safe ([`SpeechRequest::parse`]).
    pub fn url(&self, request: &SpeechRequest) -> String {
        format!(
            "{}/v1/text-to-speech/{}/stream",
            self.config.base_url.trim_end_matches('/'),
            request.voice_or_default()
        )
    }

    async fn call(&self, request: &SpeechRequest) -> Result<Audio, SynthesisError> {
        let timeout = self.config.timeout;
        let body = Body {
            text: &request.text,
            model_id: request.model_or_default(),
            voice_settings: request.settings.resolved(),
        };
        let client = awc::Client::builder().timeout(timeout).finish();
        let mut response = client
            .post(self.url(request))
            .insert_header(("xi-api-key", self.config.api_key.as_str()))
            .insert_header(("accept", "audio/mpeg"))
            .send_json(&body)
            .await
            .map_err(|e| match e {
                SendRequestError::Timeout => SynthesisError::Timeout {
                    provider: NAME,
                    after: timeout,
                },
                e => SynthesisError::Unavailable {
                    provider: NAME,
                    reason: e.to_string(),
                },
            })?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.starts_with("audio/"))
            .unwrap_or("audio/mpeg")
            .to_string();
        let limit = self.config.max_audio_bytes;
        if !status.is_success() {
            let detail = response
                .body()
                .limit(DETAIL_BYTES)
                .await
                .unwrap_or_default();
            return Err(SynthesisError::Status {
                provider: NAME,
                status: status.as_u16(),
                detail: String::from_utf8_lossy(&detail).into_owned(),
            });
        }
        if let Some(length) = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if length > limit as u64 {
                return Err(SynthesisError::TooLarge {
                    provider: NAME,
                    limit,
                });
            }
        }
        let bytes = response.body().limit(limit).await.map_err(|e| match e {
            awc::error::PayloadError::Overflow => SynthesisError::TooLarge {
                provider: NAME,
                limit,
            },
            e => SynthesisError::Failed {
                provider: NAME,
                reason: format!("reading the audio: {e}"),
            },
        })?;
        if bytes.is_empty() {
            return Err(SynthesisError::Failed {
                provider: NAME,
                reason: "the answer held no audio".into(),
            });
        }
        Ok(Audio {
            bytes,
            content_type,
        })
    }
}

#[async_trait(?Send)]
impl SpeechSynthesizer for ElevenLabs {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn synthesize(&self, request: &SpeechRequest) -> Result<Audio, SynthesisError> {
        let after = self.config.timeout;
        // The client's timeout covers the answer's head; this one the body too.
        tokio::time::timeout(after, self.call(request))
            .await
            .map_err(|_| SynthesisError::Timeout {
                provider: NAME,
                after,
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_the_voice_and_tolerates_a_trailing_slash() {
        let mut config = ElevenLabsConfig::new("k");
        config.base_url = "http://127.0.0.1:9/".into();
        let p = ElevenLabs::new(config);
        let mut r = SpeechRequest::new("hi");
        assert_eq!(
            p.url(&r),
            "http://127.0.0.1:9/v1/text-to-speech/8IRrZoKuYTPnpLc6lM6a/stream"
        );
        r.voice_id = Some("abc".into());
        assert_eq!(p.url(&r), "http://127.0.0.1:9/v1/text-to-speech/abc/stream");
        assert!(!format!("{p:?}").contains("\"k\""));
    }
}
