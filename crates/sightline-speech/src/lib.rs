//! Sightline's text-to-speech: what the SDK's `session.audio.speak()`
//! plays. The SDK asks the phone to play `GET /api/tts?text=…`; Sightline
//! checks the parameters ([`request`]), looks in its cache ([`cache`]) and
//! otherwise has a provider speak the text ([`provider`]): espeak-ng on the
//! host by default ([`espeak`], offline, WAV), or ElevenLabs
//! ([`elevenlabs`], MP3) as the MentraOS cloud does. [`service`] ties them
//! together with a bound on syntheses running at once.

pub mod cache;
pub mod elevenlabs;
pub mod espeak;
pub mod provider;
pub mod request;
pub mod service;

pub use cache::{CacheKey, CacheLimits, SpeechCache};
pub use elevenlabs::{ElevenLabs, ElevenLabsConfig};
pub use espeak::{Espeak, EspeakConfig};
pub use provider::{Audio, SpeechSynthesizer, SynthesisError};
pub use request::{RawSpeechQuery, RequestError, RequestLimits, SpeechRequest, VoiceSettings};
pub use service::{ProviderChoice, SpeechConfig, SpeechError, SpeechService, Spoken};
