//! The Vosk server WebSocket protocol (alphacep vosk-server), the offline
//! provider: Sightline's own local recogniser (tools/whisper-vosk) and any
//! Vosk server speak it.
//!
//! Open with `{"config": {"sample_rate": 16000}}`, send PCM as binary
//! frames, end with `{"eof": 1}`. Each reply is `{"partial": text}` or a
//! final `{"text": text, "result": [{word, start, end, conf}]}` with times
//! in seconds. The protocol has no error messages and no translation.

use serde::Deserialize;

use crate::provider::{EndOfAudio, MessageReader, Provider, ProviderEvent, StreamSpec, Transcript};

#[derive(Debug, Clone)]
pub struct Vosk {
    url: String,
}

impl Vosk {
    pub fn new(url: String) -> Vosk {
        Vosk { url }
    }
}

impl Provider for Vosk {
    fn name(&self) -> &'static str {
        "vosk"
    }
    fn supports(&self, spec: &StreamSpec) -> bool {
        spec.target.is_none()
    }
    fn url(&self, _: &StreamSpec) -> String {
        self.url.clone()
    }
    fn headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn opening(&self, _: &StreamSpec) -> Option<String> {
        Some(format!(
            r#"{{"config": {{"sample_rate": {}}}}}"#,
            crate::SAMPLE_RATE
        ))
    }
    fn end_of_audio(&self) -> EndOfAudio {
        EndOfAudio::Text(r#"{"eof": 1}"#.into())
    }
    fn reader(&self, _: &StreamSpec) -> Box<dyn MessageReader> {
        Box::new(VoskReader {
            last_partial: String::new(),
        })
    }
}

#[derive(Deserialize)]
struct Reply {
    partial: Option<String>,
    text: Option<String>,
    #[serde(default)]
    result: Vec<Word>,
}

#[derive(Deserialize)]
struct Word {
    start: Option<f64>,
    end: Option<f64>,
    conf: Option<f64>,
}

/// Turns Vosk replies into results; repeated identical partials (Vosk
/// answers every audio frame) are reported once.
struct VoskReader {
    last_partial: String,
}

impl MessageReader for VoskReader {
    fn read(&mut self, text: &str) -> Vec<ProviderEvent> {
        let Ok(reply) = serde_json::from_str::<Reply>(text) else {
            tracing::debug!(message = %text, "unreadable message from the Vosk server ignored");
            return Vec::new();
        };
        if let Some(text) = reply.text {
            self.last_partial.clear();
            if text.trim().is_empty() {
                return Vec::new();
            }
            let mut t = Transcript::new(text.trim(), true);
            t.start_ms = reply.result.first().and_then(|w| w.start).map(secs_to_ms);
            t.end_ms = reply.result.last().and_then(|w| w.end).map(secs_to_ms);
            let confs: Vec<f64> = reply.result.iter().filter_map(|w| w.conf).collect();
            if !confs.is_empty() {
                t.confidence = Some(confs.iter().sum::<f64>() / confs.len() as f64);
            }
            return vec![ProviderEvent::Transcript(t)];
        }
        match reply.partial {
            Some(p) if !p.trim().is_empty() && p != self.last_partial => {
                self.last_partial = p.clone();
                vec![ProviderEvent::Transcript(Transcript::new(p.trim(), false))]
            }
            _ => Vec::new(),
        }
    }
}

fn secs_to_ms(s: f64) -> u64 {
    (s.max(0.0) * 1000.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Box<dyn MessageReader> {
        Vosk::new("ws://x".into()).reader(&StreamSpec::transcription("en-US"))
    }

    #[test]
    fn partials_once_and_finals_with_times() {
        let mut r = reader();
        assert!(r.read(r#"{"partial": ""}"#).is_empty());
        assert_eq!(r.read(r#"{"partial": "hello"}"#).len(), 1);
        assert!(r.read(r#"{"partial": "hello"}"#).is_empty());
        let ev = r.read(
            r#"{"text": "hello world", "result": [{"word":"hello","start":0.5,"end":0.9,"conf":1.0},{"word":"world","start":1.0,"end":1.25,"conf":0.5}]}"#,
        );
        let ProviderEvent::Transcript(t) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert!(t.is_final);
        assert_eq!((t.start_ms, t.end_ms), (Some(500), Some(1250)));
        assert_eq!(t.confidence, Some(0.75));
        assert!(r.read(r#"{"text": ""}"#).is_empty());
        assert!(r.read("not json").is_empty());
    }
}
