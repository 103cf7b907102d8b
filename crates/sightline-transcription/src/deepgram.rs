//! Deepgram live streaming (`wss://api.deepgram.com/v1/listen`).
//!
//! The stream's options go in the URL query (linear16 PCM at 16 kHz, mono,
//! language, interim results, punctuation), the key in the handshake's
//! `Authorization: Token` header; a bad key is refused with HTTP 401 before
//! the WebSocket opens. Audio goes as binary frames and
//! `{"type":"CloseStream"}` ends it. Replies of type `Results` carry
//! `channel.alternatives[0].transcript`, `is_final`, `start` and `duration`
//! (seconds). Deepgram does not translate.

use serde::Deserialize;

use crate::error::AsrError;
use crate::provider::{EndOfAudio, MessageReader, Provider, ProviderEvent, StreamSpec, Transcript};

/// Deepgram's public live endpoint.
pub const ENDPOINT: &str = "wss://api.deepgram.com/v1/listen";

#[derive(Clone)]
pub struct Deepgram {
    url: String,
    api_key: String,
}

impl std::fmt::Debug for Deepgram {
    // The key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deepgram").field("url", &self.url).finish()
    }
}

impl Deepgram {
    pub fn new(url: String, api_key: String) -> Deepgram {
        Deepgram { url, api_key }
    }
}

impl Provider for Deepgram {
    fn name(&self) -> &'static str {
        "deepgram"
    }
    fn supports(&self, spec: &StreamSpec) -> bool {
        spec.target.is_none()
    }
    fn url(&self, spec: &StreamSpec) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}encoding=linear16&sample_rate={}&channels=1&language={}&interim_results=true&punctuate=true",
            self.url,
            crate::SAMPLE_RATE,
            // Deepgram's name for detecting (and switching) languages.
            if spec.detects_language() { "multi" } else { spec.language.as_str() }
        )
    }
    fn headers(&self) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Token {}", self.api_key))]
    }
    fn opening(&self, _: &StreamSpec) -> Option<String> {
        None
    }
    fn end_of_audio(&self) -> EndOfAudio {
        EndOfAudio::Text(r#"{"type":"CloseStream"}"#.into())
    }
    fn reader(&self, _: &StreamSpec) -> Box<dyn MessageReader> {
        Box::new(DeepgramReader)
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "type")]
    kind: Option<String>,
    channel: Option<Channel>,
    #[serde(default)]
    is_final: bool,
    start: Option<f64>,
    duration: Option<f64>,
    description: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
    confidence: Option<f64>,
}

struct DeepgramReader;

impl MessageReader for DeepgramReader {
    fn read(&mut self, text: &str) -> Vec<ProviderEvent> {
        let Ok(reply) = serde_json::from_str::<Reply>(text) else {
            tracing::debug!(message = %text, "unreadable message from Deepgram ignored");
            return Vec::new();
        };
        match reply.kind.as_deref() {
            Some("Results") => {
                let Some(alt) = reply
                    .channel
                    .and_then(|c| c.alternatives.into_iter().next())
                else {
                    return Vec::new();
                };
                if alt.transcript.trim().is_empty() {
                    return Vec::new();
                }
                let mut t = Transcript::new(alt.transcript.trim(), reply.is_final);
                let start = reply.start.unwrap_or(0.0);
                t.start_ms = Some((start * 1000.0).round() as u64);
                t.end_ms = reply
                    .duration
                    .map(|d| ((start + d) * 1000.0).round() as u64);
                t.confidence = alt.confidence;
                vec![ProviderEvent::Transcript(t)]
            }
            Some("Error") => {
                let message = reply.description.or(reply.message).unwrap_or_default();
                vec![ProviderEvent::Error(AsrError::transient(
                    "deepgram", message,
                ))]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read() {
        let mut r = DeepgramReader;
        let ev = r.read(r#"{"type":"Results","channel":{"alternatives":[{"transcript":"hello there","confidence":0.9}]},"is_final":true,"start":1.5,"duration":0.75}"#);
        let ProviderEvent::Transcript(t) = &ev[0] else {
            panic!()
        };
        assert_eq!(
            (t.text.as_str(), t.is_final, t.start_ms, t.end_ms),
            ("hello there", true, Some(1500), Some(2250))
        );
        assert!(r.read(r#"{"type":"Metadata","request_id":"x"}"#).is_empty());
        assert!(r.read(r#"{"type":"Results","channel":{"alternatives":[{"transcript":""}]},"is_final":false}"#).is_empty());
    }

    #[test]
    fn the_url_carries_the_stream_options() {
        let d = Deepgram::new(ENDPOINT.into(), "k".into());
        let url = d.url(&StreamSpec::transcription("en-US"));
        assert!(
            url.starts_with("wss://api.deepgram.com/v1/listen?encoding=linear16&sample_rate=16000")
        );
        assert!(url.contains("language=en-US"));
        assert_eq!(d.headers()[0].1, "Token k");
    }
}
