//! Soniox real-time speech recognition (and translation) over its
//! WebSocket API (`wss://stt-rt.soniox.com/transcribe-websocket`).
//!
//! The key goes in the handshake's `Authorization: Bearer` header and in
//! the `api_key` field of the first text message (the documented place for
//! the `stt-rt-preview` model; newer documentation reads the header), which
//! configures the stream (model, PCM format, language hints, endpoint
//! detection, and a one-way translation target for translation streams);
//! audio follows as binary frames and an empty frame ends it.
//! Replies carry `tokens` (`text`, `start_ms`, `end_ms`, `confidence`,
//! `is_final`, `speaker`, `translation_status`); a final token `<end>`
//! marks the end of an utterance. Errors arrive as `error_code` and
//! `error_message`, and `finished: true` ends the stream.

use serde::Deserialize;
use serde_json::json;

use crate::error::AsrError;
use crate::provider::{
    base, EndOfAudio, MessageReader, Provider, ProviderEvent, StreamSpec, Transcript,
};

/// Soniox's public real-time endpoint.
pub const ENDPOINT: &str = "wss://stt-rt.soniox.com/transcribe-websocket";
/// The real-time model Sightline asks for.
pub const MODEL: &str = "stt-rt-preview";

#[derive(Clone)]
pub struct Soniox {
    url: String,
    api_key: String,
}

impl std::fmt::Debug for Soniox {
    // The key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Soniox").field("url", &self.url).finish()
    }
}

impl Soniox {
    pub fn new(url: String, api_key: String) -> Soniox {
        Soniox { url, api_key }
    }
}

impl Provider for Soniox {
    fn name(&self) -> &'static str {
        "soniox"
    }
    fn supports(&self, _: &StreamSpec) -> bool {
        true
    }
    fn url(&self, _: &StreamSpec) -> String {
        self.url.clone()
    }
    fn headers(&self) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {}", self.api_key))]
    }
    fn opening(&self, spec: &StreamSpec) -> Option<String> {
        let mut config = json!({
            "api_key": self.api_key,
            "model": MODEL,
            "audio_format": "pcm_s16le",
            "sample_rate": crate::SAMPLE_RATE,
            "num_channels": 1,
            "enable_endpoint_detection": true,
        });
        // `all-to-<lang>`: no hint, Soniox detects the language.
        if !spec.detects_language() {
            config["language_hints"] = json!([spec.base_language()]);
        }
        if let Some(target) = &spec.target {
            config["translation"] = json!({"type": "one_way", "target_language": base(target)});
        }
        Some(config.to_string())
    }
    fn end_of_audio(&self) -> EndOfAudio {
        EndOfAudio::EmptyBinary
    }
    fn reader(&self, spec: &StreamSpec) -> Box<dyn MessageReader> {
        Box::new(SonioxReader {
            translating: spec.target.is_some(),
            finals: Vec::new(),
        })
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    tokens: Vec<Token>,
    error_code: Option<u16>,
    error_message: Option<String>,
    #[serde(default)]
    finished: bool,
}

#[derive(Deserialize, Clone)]
struct Token {
    text: String,
    start_ms: Option<u64>,
    end_ms: Option<u64>,
    confidence: Option<f64>,
    #[serde(default)]
    is_final: bool,
    speaker: Option<serde_json::Value>,
    translation_status: Option<String>,
}

impl Token {
    fn is_translation(&self) -> bool {
        self.translation_status.as_deref() == Some("translation")
    }
    fn is_marker(&self) -> bool {
        self.text == "<end>" || self.text == "<fin>"
    }
}

/// Collects final tokens until an utterance ends; reports interim results
/// as finals-so-far plus the current non-final tokens.
struct SonioxReader {
    translating: bool,
    finals: Vec<Token>,
}

impl SonioxReader {
    fn transcript(&self, tokens: &[Token], is_final: bool) -> Option<Transcript> {
        let spoken: Vec<&Token> = tokens.iter().filter(|t| !t.is_translation()).collect();
        let translated: Vec<&Token> = tokens.iter().filter(|t| t.is_translation()).collect();
        let shown = if self.translating {
            &translated
        } else {
            &spoken
        };
        let text: String = shown.iter().map(|t| t.text.as_str()).collect();
        if text.trim().is_empty() {
            return None;
        }
        let mut t = Transcript::new(text.trim(), is_final);
        t.start_ms = spoken.iter().find_map(|t| t.start_ms);
        t.end_ms = spoken.iter().rev().find_map(|t| t.end_ms);
        t.speaker = spoken.iter().find_map(|t| t.speaker.as_ref()).map(|s| {
            s.as_str()
                .map(String::from)
                .unwrap_or_else(|| s.to_string())
        });
        let confs: Vec<f64> = spoken.iter().filter_map(|t| t.confidence).collect();
        if !confs.is_empty() {
            t.confidence = Some(confs.iter().sum::<f64>() / confs.len() as f64);
        }
        if self.translating {
            let original: String = spoken.iter().map(|t| t.text.as_str()).collect();
            t.original_text = Some(original.trim().to_string());
        }
        Some(t)
    }
}

impl MessageReader for SonioxReader {
    fn read(&mut self, text: &str) -> Vec<ProviderEvent> {
        let Ok(reply) = serde_json::from_str::<Reply>(text) else {
            tracing::debug!(message = %text, "unreadable message from Soniox ignored");
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(code) = reply.error_code {
            let message = reply.error_message.unwrap_or_default();
            out.push(ProviderEvent::Error(AsrError::from_status(
                "soniox", code, &message,
            )));
            return out;
        }
        let mut pending = Vec::new();
        for token in reply.tokens {
            if !token.is_final {
                pending.push(token);
            } else if token.is_marker() {
                let finals = std::mem::take(&mut self.finals);
                out.extend(
                    self.transcript(&finals, true)
                        .map(ProviderEvent::Transcript),
                );
            } else {
                self.finals.push(token);
            }
        }
        if reply.finished {
            let finals = std::mem::take(&mut self.finals);
            out.extend(
                self.transcript(&finals, true)
                    .map(ProviderEvent::Transcript),
            );
            out.push(ProviderEvent::Finished);
        } else if !pending.is_empty() || !self.finals.is_empty() {
            let mut all = self.finals.clone();
            all.extend(pending);
            out.extend(self.transcript(&all, false).map(ProviderEvent::Transcript));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(ev: &[ProviderEvent]) -> Vec<(String, bool)> {
        ev.iter()
            .filter_map(|e| match e {
                ProviderEvent::Transcript(t) => Some((t.text.clone(), t.is_final)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn tokens_become_interim_then_final_results() {
        let mut r = Soniox::new("u".into(), "k".into()).reader(&StreamSpec::transcription("en-US"));
        let ev =
            r.read(r#"{"tokens":[{"text":"Hel","is_final":false,"start_ms":100,"end_ms":200}]}"#);
        assert_eq!(texts(&ev), vec![("Hel".into(), false)]);
        let ev = r.read(r#"{"tokens":[{"text":"Hello","is_final":true,"start_ms":100,"end_ms":300},{"text":" wor","is_final":false,"start_ms":400,"end_ms":500}]}"#);
        assert_eq!(texts(&ev), vec![("Hello wor".into(), false)]);
        let ev = r.read(r#"{"tokens":[{"text":" world","is_final":true,"start_ms":400,"end_ms":700},{"text":"<end>","is_final":true}]}"#);
        let ProviderEvent::Transcript(t) = &ev[0] else {
            panic!()
        };
        assert_eq!(
            (t.text.as_str(), t.is_final, t.start_ms, t.end_ms),
            ("Hello world", true, Some(100), Some(700))
        );
    }

    #[test]
    fn errors_are_classed() {
        let mut r = Soniox::new("u".into(), "k".into()).reader(&StreamSpec::transcription("en"));
        let ev = r.read(r#"{"error_code":401,"error_message":"Invalid API key."}"#);
        assert!(matches!(&ev[0], ProviderEvent::Error(e) if e.is_permanent()));
        let ev = r.read(r#"{"error_code":503,"error_message":"busy"}"#);
        assert!(matches!(&ev[0], ProviderEvent::Error(e) if !e.is_permanent()));
    }

    #[test]
    fn translation_streams_show_the_translation() {
        let mut r =
            Soniox::new("u".into(), "k".into()).reader(&StreamSpec::translation("en-US", "es-ES"));
        let ev = r.read(r#"{"tokens":[{"text":"Hello","is_final":true,"start_ms":0,"end_ms":300,"translation_status":"original"},{"text":"Hola","is_final":true,"translation_status":"translation"},{"text":"<end>","is_final":true}]}"#);
        let ProviderEvent::Transcript(t) = &ev[0] else {
            panic!()
        };
        assert_eq!(t.text, "Hola");
        assert_eq!(t.original_text.as_deref(), Some("Hello"));
    }
}
