//! The Vosk server WebSocket protocol (alphacep vosk-server), the offline
//! provider: Sightline's own local recogniser (tools/whisper-vosk) and any
//! Vosk server speak it.
//!
//! Open with `{"config": {"sample_rate": 16000}}`, send PCM as binary
//! frames, end with `{"eof": 1}`. Each reply is `{"partial": text}` or a
//! final `{"text": text, "result": [{word, start, end, conf}]}` with times
//! in seconds. The protocol has no error messages.
//!
//! Sightline adds two fields to the configuration, which a Vosk server
//! ignores and the local recogniser reads: `language` (the primary subtag
//! of the spoken language, or `auto` to have it detected) and, for
//! `translation:<src>-to-en*` streams, `"task": "translate"` (Whisper's
//! speech → English translation). The recogniser marks translated replies
//! with `"task": "translate"` and adds `original_text` (the speech in its
//! own language) and `language` (the one detected) to final ones. A reply
//! to a translation stream without the mark comes from a server that does
//! not translate: the stream fails (permanently) rather than passing the
//! untranslated text off as a translation. The recogniser refuses what its
//! models cannot do (translation or non-English speech without a
//! multilingual model) with `{"error": reason}` and a close with code 4001;
//! either fails the stream permanently.

use serde::Deserialize;

use crate::error::AsrError;
use crate::provider::{
    base, EndOfAudio, MessageReader, Provider, ProviderEvent, StreamSpec, Transcript,
};

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
        // Whisper translates speech into English only.
        spec.target
            .as_deref()
            .is_none_or(|t| base(t).eq_ignore_ascii_case("en"))
    }
    fn url(&self, _: &StreamSpec) -> String {
        self.url.clone()
    }
    fn headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn opening(&self, spec: &StreamSpec) -> Option<String> {
        let mut config = serde_json::json!({ "sample_rate": crate::SAMPLE_RATE });
        config["language"] = if spec.detects_language() {
            "auto".into()
        } else {
            spec.base_language().to_ascii_lowercase().into()
        };
        if spec.target.is_some() {
            config["task"] = "translate".into();
        }
        Some(serde_json::json!({ "config": config }).to_string())
    }
    fn end_of_audio(&self) -> EndOfAudio {
        EndOfAudio::Text(r#"{"eof": 1}"#.into())
    }
    fn reader(&self, spec: &StreamSpec) -> Box<dyn MessageReader> {
        Box::new(VoskReader {
            last_partial: String::new(),
            target: spec.target.clone(),
        })
    }
}

#[derive(Deserialize)]
struct Reply {
    partial: Option<String>,
    text: Option<String>,
    #[serde(default)]
    result: Vec<Word>,
    /// `"translate"` on the local recogniser's translated replies.
    task: Option<String>,
    original_text: Option<String>,
    language: Option<String>,
    /// The local recogniser's refusal of the configuration.
    error: Option<String>,
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
    /// The target language of a translation stream.
    target: Option<String>,
}

impl MessageReader for VoskReader {
    fn read(&mut self, text: &str) -> Vec<ProviderEvent> {
        let Ok(reply) = serde_json::from_str::<Reply>(text) else {
            tracing::debug!(message = %text, "unreadable message from the Vosk server ignored");
            return Vec::new();
        };
        if let Some(reason) = reply.error {
            return vec![ProviderEvent::Error(AsrError::permanent("vosk", reason))];
        }
        let translated = reply.task.as_deref() == Some("translate");
        if self.target.is_some() && !translated {
            if reply.text.as_deref().is_some_and(|t| !t.trim().is_empty()) {
                return vec![ProviderEvent::Error(AsrError::permanent(
                    "vosk",
                    "the Vosk server answered without translating: it does not support the \
                     translate task (Sightline's local recogniser with a multilingual model does)",
                ))];
            }
            return Vec::new(); // an untranslated partial is not shown
        }
        if let Some(text) = reply.text {
            self.last_partial.clear();
            if text.trim().is_empty() {
                return Vec::new();
            }
            let mut t = Transcript::new(text.trim(), true);
            t.detected_language = reply.language.filter(|l| !l.is_empty());
            if let Some(target) = &self.target {
                let original = reply.original_text.unwrap_or_default();
                t.original_text = Some(original.trim().to_string());
                // Speech already in English is passed through as spoken.
                t.untranslated = t
                    .detected_language
                    .as_deref()
                    .is_some_and(|l| base(l).eq_ignore_ascii_case(base(target)));
            }
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

    #[test]
    fn the_configuration_asks_for_the_language_and_the_translation() {
        let v = Vosk::new("ws://x".into());
        let open = |spec: &StreamSpec| -> serde_json::Value {
            serde_json::from_str(&v.opening(spec).unwrap()).unwrap()
        };
        assert_eq!(
            open(&StreamSpec::transcription("en-US")),
            serde_json::json!({"config": {"sample_rate": 16000, "language": "en"}})
        );
        assert_eq!(
            open(&StreamSpec::translation("de-DE", "en-US")),
            serde_json::json!({"config": {"sample_rate": 16000, "language": "de", "task": "translate"}})
        );
        assert_eq!(
            open(&StreamSpec::translation("all", "en-US")),
            serde_json::json!({"config": {"sample_rate": 16000, "language": "auto", "task": "translate"}})
        );
        assert!(v.supports(&StreamSpec::translation("es-ES", "en-US")));
        assert!(v.supports(&StreamSpec::translation("all", "en-GB")));
        assert!(!v.supports(&StreamSpec::translation("en-US", "es-ES")));
    }

    #[test]
    fn translated_replies_carry_the_original_text() {
        let mut r = Vosk::new("ws://x".into()).reader(&StreamSpec::translation("all", "en-US"));
        assert!(
            r.read(r#"{"partial": "hallo"}"#).is_empty(),
            "an unmarked partial is not shown"
        );
        assert_eq!(
            r.read(r#"{"partial": "hello", "task": "translate"}"#).len(),
            1
        );
        let ev = r.read(
            r#"{"text": "Good morning.", "task": "translate", "original_text": "Guten Morgen.", "language": "de", "result": [{"word":"Good morning.","start":0.2,"end":1.0,"conf":1.0}]}"#,
        );
        let ProviderEvent::Transcript(t) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(t.text, "Good morning.");
        assert_eq!(t.original_text.as_deref(), Some("Guten Morgen."));
        assert_eq!(t.detected_language.as_deref(), Some("de"));
        assert!(!t.untranslated);
        let ev = r.read(r#"{"text": "Hello.", "task": "translate", "original_text": "Hello.", "language": "en"}"#);
        let ProviderEvent::Transcript(t) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert!(t.untranslated, "English speech is not a translation");
    }

    #[test]
    fn a_server_that_does_not_translate_fails_the_translation() {
        let mut r = Vosk::new("ws://x".into()).reader(&StreamSpec::translation("de-DE", "en-US"));
        let ev = r.read(r#"{"text": "guten morgen", "result": []}"#);
        assert!(
            matches!(&ev[0], ProviderEvent::Error(e) if e.is_permanent()),
            "{ev:?}"
        );
        let mut r = Vosk::new("ws://x".into()).reader(&StreamSpec::transcription("de-DE"));
        let ev = r.read(r#"{"error": "no multilingual Whisper model"}"#);
        assert!(
            matches!(&ev[0], ProviderEvent::Error(e) if e.is_permanent()),
            "{ev:?}"
        );
    }
}
