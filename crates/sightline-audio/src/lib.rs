//! Sightline's audio input, before anything else sees it.
//!
//! The glasses send binary WebSocket frames in the codec they chose when
//! they connected ([`AudioCodec`]): raw PCM (signed 16-bit little-endian,
//! 16 kHz, mono) or LC3 frames. An [`AudioDecoder`] per glasses connection
//! turns those frames into PCM in that same format, which is what apps
//! subscribed to `audio_chunk` and the speech recognisers receive.
//!
//! A damaged LC3 frame never stops the decoder: it is concealed (the codec's
//! packet-loss concealment, or silence when the frame is too short to be
//! one), counted in [`DecodeStats`], and logged once per burst.
//!
//! Nothing here does I/O or knows about actors, so every rule is unit-tested.
//!
//! Reading order: [`codec`], [`pcm`], [`lc3`], [`decoder`], [`stats`].

pub mod codec;
pub mod decoder;
pub mod error;
pub mod lc3;
pub mod pcm;
pub mod stats;

pub use codec::AudioCodec;
pub use decoder::AudioDecoder;
pub use error::AudioError;
pub use stats::DecodeStats;

/// Sample rate of every PCM buffer Sightline hands on.
pub const SAMPLE_RATE: u32 = 16_000;
