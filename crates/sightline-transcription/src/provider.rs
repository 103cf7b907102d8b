//! The one trait every speech provider implements, and the values that
//! cross it.
//!
//! A provider is a WebSocket protocol: where to connect and with which
//! headers, the text message that opens a stream (configuration), the
//! message that ends the audio, and how to read what comes back. The
//! WebSocket itself is run by [`crate::connection`], the same for all.

use std::fmt;

use crate::error::AsrError;

/// What a stream transcribes: speech in `language`, translated into
/// `target` for a translation stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamSpec {
    /// BCP-47 language of the speech, e.g. `en-US`.
    pub language: String,
    /// For `translation:<src>-to-<tgt>` streams: the target language.
    pub target: Option<String>,
}

impl StreamSpec {
    pub fn transcription(language: impl Into<String>) -> StreamSpec {
        StreamSpec {
            language: language.into(),
            target: None,
        }
    }

    pub fn translation(source: impl Into<String>, target: impl Into<String>) -> StreamSpec {
        StreamSpec {
            language: source.into(),
            target: Some(target.into()),
        }
    }

    /// The primary subtag (`en` of `en-US`), what most providers take.
    pub fn base_language(&self) -> &str {
        base(&self.language)
    }

    /// Whether the spoken language is to be detected (`all-to-<lang>`
    /// translations, `transcription:auto`).
    pub fn detects_language(&self) -> bool {
        matches!(self.language.as_str(), "all" | "auto")
    }

    /// The speech-only stream behind a translation: the same speech
    /// transcribed in its own language.
    pub fn source(&self) -> StreamSpec {
        StreamSpec::transcription(self.language.clone())
    }
}

impl fmt::Display for StreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            None => write!(f, "transcription:{}", self.language),
            Some(t) => write!(f, "translation:{}-to-{t}", self.language),
        }
    }
}

/// The primary subtag of a language tag.
pub fn base(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

/// A result as a provider reports it, timed in milliseconds of the audio
/// sent on this provider connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The recognised text (for translation streams: the translation).
    pub text: String,
    /// For translation streams: the text in the spoken language.
    pub original_text: Option<String>,
    pub is_final: bool,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub speaker: Option<String>,
    pub confidence: Option<f64>,
    /// The spoken language the provider detected (for `all-to-<lang>`
    /// translations), as a BCP-47 tag or primary subtag.
    pub detected_language: Option<String>,
    /// For translation streams: `text` is the spoken text itself, not a
    /// translation (the speech was already in the target language, or the
    /// translator could not be reached).
    pub untranslated: bool,
}

impl Transcript {
    pub fn new(text: impl Into<String>, is_final: bool) -> Transcript {
        Transcript {
            text: text.into(),
            original_text: None,
            is_final,
            start_ms: None,
            end_ms: None,
            speaker: None,
            confidence: None,
            detected_language: None,
            untranslated: false,
        }
    }
}

/// What one provider message means.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    Transcript(Transcript),
    /// The provider reports an error in-band.
    Error(AsrError),
    /// The provider has sent its last result for this connection.
    Finished,
}

/// Reads one connection's messages; holds whatever the provider's
/// protocol needs to remember between messages.
pub trait MessageReader: Send {
    fn read(&mut self, text: &str) -> Vec<ProviderEvent>;
}

/// How the end of the audio is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOfAudio {
    Text(String),
    EmptyBinary,
}

/// A speech provider's streaming protocol.
pub trait Provider: Send + Sync + fmt::Debug {
    /// Short name, for logs and for the `provider` field of results.
    fn name(&self) -> &'static str;
    /// Whether this provider can serve a stream (translation support).
    fn supports(&self, spec: &StreamSpec) -> bool;
    /// The WebSocket URL of a stream.
    fn url(&self, spec: &StreamSpec) -> String;
    /// Extra handshake headers (authorisation).
    fn headers(&self) -> Vec<(String, String)>;
    /// The text message that configures a stream, sent right after opening.
    fn opening(&self, spec: &StreamSpec) -> Option<String>;
    /// The message that announces the end of the audio.
    fn end_of_audio(&self) -> EndOfAudio;
    /// A reader for one connection's messages.
    fn reader(&self, spec: &StreamSpec) -> Box<dyn MessageReader>;
}
