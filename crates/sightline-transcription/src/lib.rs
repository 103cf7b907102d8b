//! Sightline's speech recognition.
//!
//! A [`TranscriptionStream`](stream::TranscriptionStream) actor runs per
//! (user session, language or translation pair). The session feeds it PCM
//! (16 kHz s16le mono) and the glasses' voice-activity state; it keeps one
//! WebSocket to the configured speech provider open while there is speech,
//! and sends each interim and final result, timed in milliseconds from the
//! start of the stream, to the recipient the session gave it.
//!
//! Providers sit behind one trait, [`Provider`](provider::Provider): it
//! says how to open a provider's WebSocket, what to send first and last,
//! and how to read its messages. The WebSocket itself is run by
//! [`connection`] for all of them. Failures are classed ([`AsrError`]):
//! transient ones (network, 5xx, timeouts) make the stream reconnect with
//! backoff while a bounded [`replay`] buffer keeps the audio not yet
//! transcribed; permanent ones (bad key, bad configuration) fail the stream
//! once. A [`breaker::CircuitBreaker`] per provider (Sightline's one breaker
//! type, from `sightline-breaker`), shared by every session,
//! stops all streams hammering a provider that is down.
//!
//! Translation: Soniox and the local recogniser (speech → English) translate
//! in the speech stream itself; every other pair is transcribed in its own
//! language and the text translated by a [`TextTranslator`]
//! ([`libretranslate`], [`deepl`]), run by a [`relay::TranslationRelay`].
//!
//! Reading order: [`config`], [`error`], [`provider`] and its
//! implementations ([`vosk`], [`soniox`], [`deepgram`]), [`connection`],
//! [`timeline`], [`replay`], [`breaker`], [`stream`]; then
//! [`translator`], [`translate_config`], [`relay`].

pub mod breaker;
pub mod config;
pub mod connection;
pub mod deepgram;
pub mod deepl;
pub mod error;
pub mod libretranslate;
pub mod provider;
pub mod relay;
pub mod replay;
pub mod soniox;
pub mod stream;
pub mod timeline;
pub mod translate_config;
pub mod translator;
pub mod vosk;

pub use config::{AsrConfig, ProviderKind};
pub use error::{AsrError, ErrorClass};
pub use provider::{Provider, StreamSpec, Transcript};
pub use relay::TranslationRelay;
pub use stream::{StreamEvent, StreamUpdate, TranscriptionStream};
pub use translate_config::RelaySettings;
pub use translate_config::{TranslateConfig, TranslatorKind};
pub use translator::{TextTranslator, TranslateRequest, Translation, TranslationError};

/// Sample rate of the PCM every provider receives.
pub const SAMPLE_RATE: u32 = 16_000;

/// Milliseconds of 16 kHz s16le audio in `bytes`.
pub fn pcm_ms(bytes: usize) -> u64 {
    (bytes / 2) as u64 * 1000 / SAMPLE_RATE as u64
}
