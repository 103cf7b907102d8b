//! What an app asks to hear: the query of `GET /api/tts` as the SDK's
//! `session.audio.speak(text, options)` builds it, parsed and checked.
//!
//! The SDK sends `text`, and only when the app gave them `voice_id`,
//! `model_id` and `voice_settings` (a JSON object with `stability`,
//! `similarity_boost`, `style`, `use_speaker_boost`, `speed`). A
//! [`SpeechRequest`] holds them validated: the text is non-empty and
//! bounded, the ids are short and made of URL-safe characters (the voice id
//! becomes part of a provider's URL path), every setting is in its range.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// MentraOS's default ElevenLabs voice.
pub const DEFAULT_VOICE_ID: &str = "8IRrZoKuYTPnpLc6lM6a";
/// MentraOS's default ElevenLabs model.
pub const DEFAULT_MODEL_ID: &str = "eleven_turbo_v2_5";
/// Default text limit, in characters (Unicode scalar values).
pub const DEFAULT_MAX_TEXT_CHARS: usize = 1000;
/// Longest voice or model id accepted.
pub const MAX_ID_CHARS: usize = 64;
/// Longest `voice_settings` JSON accepted, in bytes.
pub const MAX_SETTINGS_BYTES: usize = 1024;
/// Range of `voice_settings.speed` (ElevenLabs' documented range, kept for
/// every provider so an app sounds alike on each).
pub const SPEED_RANGE: (f64, f64) = (0.7, 1.2);

/// The query string exactly as it arrives, before any check.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawSpeechQuery {
    pub text: Option<String>,
    pub voice_id: Option<String>,
    pub model_id: Option<String>,
    pub voice_settings: Option<String>,
}

/// Why a request was refused. Each message is shown to the app developer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RequestError {
    /// Wording of the MentraOS cloud, which SDK apps may match on.
    #[error("Text parameter is required and must be a string")]
    MissingText,
    #[error("Text is too long: {chars} characters, at most {max} are spoken per request")]
    TextTooLong { chars: usize, max: usize },
    #[error("Text contains control characters")]
    ControlCharacters,
    #[error("Invalid {name}: 1 to {MAX_ID_CHARS} characters of A-Z, a-z, 0-9, '_', '-' or '.'")]
    InvalidId { name: &'static str },
    /// Wording of the MentraOS cloud.
    #[error("Invalid voice_settings JSON format")]
    InvalidSettingsJson,
    #[error("voice_settings.{name} must be between {min} and {max}, not {value}")]
    SettingOutOfRange {
        name: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
}

impl RequestError {
    /// Whether the text was refused for its length (HTTP 413).
    pub fn is_too_long(&self) -> bool {
        matches!(self, RequestError::TextTooLong { .. })
    }
}

/// The voice settings an app may give; absent ones take the provider's
/// defaults. Keys the SDK does not define are ignored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VoiceSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_boost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_speaker_boost: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// Voice settings with MentraOS's defaults filled in, as ElevenLabs gets
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResolvedSettings {
    pub stability: f64,
    pub similarity_boost: f64,
    pub style: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_speaker_boost: Option<bool>,
    pub speed: f64,
}

impl VoiceSettings {
    /// Parses and range-checks the `voice_settings` parameter.
    pub fn parse(json: &str) -> Result<VoiceSettings, RequestError> {
        if json.len() > MAX_SETTINGS_BYTES {
            return Err(RequestError::InvalidSettingsJson);
        }
        // An object only: serde would also read a struct from an array.
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|_| RequestError::InvalidSettingsJson)?;
        if !value.is_object() {
            return Err(RequestError::InvalidSettingsJson);
        }
        let s: VoiceSettings =
            serde_json::from_value(value).map_err(|_| RequestError::InvalidSettingsJson)?;
        let unit = (0.0, 1.0);
        let checks = [
            ("stability", s.stability, unit),
            ("similarity_boost", s.similarity_boost, unit),
            ("style", s.style, unit),
            ("speed", s.speed, SPEED_RANGE),
        ];
        for (name, value, (min, max)) in checks {
            if let Some(value) = value {
                if !(min..=max).contains(&value) {
                    return Err(RequestError::SettingOutOfRange {
                        name,
                        value,
                        min,
                        max,
                    });
                }
            }
        }
        Ok(s)
    }

    /// The settings with MentraOS's defaults for those not given.
    pub fn resolved(&self) -> ResolvedSettings {
        ResolvedSettings {
            stability: self.stability.unwrap_or(0.68),
            similarity_boost: self.similarity_boost.unwrap_or(0.75),
            style: self.style.unwrap_or(0.0),
            use_speaker_boost: self.use_speaker_boost,
            speed: self.speed.unwrap_or(1.13),
        }
    }
}

/// Bounds on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Longest text, in characters.
    pub max_text_chars: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_text_chars: DEFAULT_MAX_TEXT_CHARS,
        }
    }
}

/// A checked request to speak a text.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    pub text: String,
    /// As the app gave it; providers apply their own default.
    pub voice_id: Option<String>,
    pub model_id: Option<String>,
    pub settings: VoiceSettings,
}

impl SpeechRequest {
    /// A request for `text` with every option left to the provider.
    pub fn new(text: impl Into<String>) -> SpeechRequest {
        SpeechRequest {
            text: text.into(),
            voice_id: None,
            model_id: None,
            settings: VoiceSettings::default(),
        }
    }

    /// Checks the query. Empty parameters count as absent, as they do in
    /// the MentraOS cloud; a text of only spaces has nothing to say.
    pub fn parse(
        raw: RawSpeechQuery,
        limits: RequestLimits,
    ) -> Result<SpeechRequest, RequestError> {
        let text = raw
            .text
            .filter(|t| !t.trim().is_empty())
            .ok_or(RequestError::MissingText)?;
        let chars = text.chars().count();
        if chars > limits.max_text_chars {
            return Err(RequestError::TextTooLong {
                chars,
                max: limits.max_text_chars,
            });
        }
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(RequestError::ControlCharacters);
        }
        let voice_id = checked_id("voice_id", raw.voice_id)?;
        let model_id = checked_id("model_id", raw.model_id)?;
        let settings = match raw.voice_settings.filter(|s| !s.is_empty()) {
            Some(json) => VoiceSettings::parse(&json)?,
            None => VoiceSettings::default(),
        };
        Ok(SpeechRequest {
            text,
            voice_id,
            model_id,
            settings,
        })
    }

    /// The voice ElevenLabs speaks with.
    pub fn voice_or_default(&self) -> &str {
        self.voice_id.as_deref().unwrap_or(DEFAULT_VOICE_ID)
    }

    /// The model ElevenLabs speaks with.
    pub fn model_or_default(&self) -> &str {
        self.model_id.as_deref().unwrap_or(DEFAULT_MODEL_ID)
    }
}

fn checked_id(name: &'static str, id: Option<String>) -> Result<Option<String>, RequestError> {
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return Ok(None);
    };
    let fine = id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        // "." and ".." would change a URL path's meaning.
        && id.bytes().any(|b| b != b'.');
    if fine {
        Ok(Some(id))
    } else {
        Err(RequestError::InvalidId { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> RawSpeechQuery {
        let mut q = RawSpeechQuery::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "text" => q.text = v,
                "voice_id" => q.voice_id = v,
                "model_id" => q.model_id = v,
                "voice_settings" => q.voice_settings = v,
                _ => unreachable!("test keys"),
            }
        }
        q
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<SpeechRequest, RequestError> {
        SpeechRequest::parse(query(pairs), RequestLimits::default())
    }

    #[test]
    fn a_plain_text_takes_every_default() {
        let r = parse(&[("text", "Hello from the glasses")]).unwrap();
        assert_eq!(r, SpeechRequest::new("Hello from the glasses"));
        assert_eq!(r.voice_or_default(), DEFAULT_VOICE_ID);
        assert_eq!(r.model_or_default(), DEFAULT_MODEL_ID);
        let d = r.settings.resolved();
        assert_eq!(
            (d.speed, d.stability, d.similarity_boost, d.style),
            (1.13, 0.68, 0.75, 0.0)
        );
        assert_eq!(d.use_speaker_boost, None);
    }

    #[test]
    fn missing_or_empty_text_is_refused_with_the_mentraos_message() {
        for q in [vec![], vec![("text", "")], vec![("text", "   ")]] {
            let e = parse(&q).unwrap_err();
            assert_eq!(e, RequestError::MissingText);
            assert_eq!(
                e.to_string(),
                "Text parameter is required and must be a string"
            );
        }
    }

    #[test]
    fn text_is_bounded_in_characters_not_bytes() {
        let limits = RequestLimits { max_text_chars: 5 };
        let ok = SpeechRequest::parse(query(&[("text", "héllo")]), limits);
        assert!(ok.is_ok(), "five characters, six bytes: {ok:?}");
        let e = SpeechRequest::parse(query(&[("text", "hello!")]), limits).unwrap_err();
        assert_eq!(e, RequestError::TextTooLong { chars: 6, max: 5 });
        assert!(e.is_too_long());
        assert!(e.to_string().contains("at most 5"), "{e}");
        let long = "a".repeat(DEFAULT_MAX_TEXT_CHARS + 1);
        assert!(parse(&[("text", &long)]).unwrap_err().is_too_long());
        assert!(parse(&[("text", &long[1..])]).is_ok());
    }

    #[test]
    fn control_characters_are_refused_but_line_breaks_pass() {
        assert!(parse(&[("text", "one\ntwo\tthree")]).is_ok());
        assert_eq!(
            parse(&[("text", "bell\u{7}")]).unwrap_err(),
            RequestError::ControlCharacters
        );
        assert_eq!(
            parse(&[("text", "nul\0")]).unwrap_err(),
            RequestError::ControlCharacters
        );
    }

    #[test]
    fn ids_are_bounded_and_url_safe() {
        let r = parse(&[
            ("text", "hi"),
            ("voice_id", "21m00Tcm4TlvDq8ikWAM"),
            ("model_id", "eleven_multilingual_v2"),
        ])
        .unwrap();
        assert_eq!(r.voice_or_default(), "21m00Tcm4TlvDq8ikWAM");
        assert_eq!(r.model_or_default(), "eleven_multilingual_v2");
        for bad in ["../admin", "a/b", "a b", "é", "..", "a?b", &"x".repeat(65)] {
            assert_eq!(
                parse(&[("text", "hi"), ("voice_id", bad)]).unwrap_err(),
                RequestError::InvalidId { name: "voice_id" },
                "{bad:?}"
            );
        }
        assert_eq!(
            parse(&[("text", "hi"), ("model_id", "m#1")]).unwrap_err(),
            RequestError::InvalidId { name: "model_id" }
        );
        assert!(parse(&[("text", "hi"), ("voice_id", "")])
            .unwrap()
            .voice_id
            .is_none());
    }

    #[test]
    fn voice_settings_are_typed_and_range_checked() {
        let r = parse(&[
            ("text", "hi"),
            (
                "voice_settings",
                r#"{"stability":0.4,"similarity_boost":0.9,"style":0.2,"use_speaker_boost":true,"speed":0.9,"future_key":1}"#,
            ),
        ])
        .unwrap();
        assert_eq!(
            r.settings,
            VoiceSettings {
                stability: Some(0.4),
                similarity_boost: Some(0.9),
                style: Some(0.2),
                use_speaker_boost: Some(true),
                speed: Some(0.9),
            }
        );
        let partial = parse(&[("text", "hi"), ("voice_settings", r#"{"speed":1.0}"#)]).unwrap();
        let resolved = partial.settings.resolved();
        assert_eq!((resolved.speed, resolved.stability), (1.0, 0.68));

        for bad in [
            "{",
            "[1]",
            "\"x\"",
            r#"{"speed":"fast"}"#,
            r#"{"use_speaker_boost":1}"#,
        ] {
            let e = parse(&[("text", "hi"), ("voice_settings", bad)]).unwrap_err();
            assert_eq!(e, RequestError::InvalidSettingsJson, "{bad}");
            assert_eq!(e.to_string(), "Invalid voice_settings JSON format");
        }
        let huge = format!(
            r#"{{"speed":1.0,"pad":"{}"}}"#,
            "x".repeat(MAX_SETTINGS_BYTES)
        );
        assert_eq!(
            parse(&[("text", "hi"), ("voice_settings", &huge)]).unwrap_err(),
            RequestError::InvalidSettingsJson
        );
        let e = parse(&[("text", "hi"), ("voice_settings", r#"{"speed":3}"#)]).unwrap_err();
        assert!(
            matches!(e, RequestError::SettingOutOfRange { name: "speed", .. }),
            "{e:?}"
        );
        let e = parse(&[("text", "hi"), ("voice_settings", r#"{"stability":-0.1}"#)]).unwrap_err();
        assert!(
            matches!(
                e,
                RequestError::SettingOutOfRange {
                    name: "stability",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("between 0 and 1"), "{e}");
    }
}
