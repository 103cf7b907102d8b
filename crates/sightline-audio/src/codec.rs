//! Which codec a glasses connection sends its audio in.
//!
//! The glasses choose when they connect, with the `audioCodec` (and, for
//! LC3, `lc3FrameBytes`) field of `connection_init` or the query parameters
//! of the same names on the `/glasses-ws` URL. Without a choice the audio is
//! PCM, as in the MentraOS protocol.

use crate::error::AudioError;

/// LC3 frame size Sightline assumes when the glasses do not say: 20 bytes
/// per 10 ms frame (16 kbit/s), what MentraOS glasses send.
pub const DEFAULT_LC3_FRAME_BYTES: usize = 20;

/// LC3 frame sizes at 16 kHz and 10 ms: 20 to 400 bytes per frame.
pub const LC3_FRAME_BYTES: std::ops::RangeInclusive<usize> = 20..=400;

/// The audio encoding of a glasses connection's binary frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioCodec {
    /// Signed 16-bit little-endian PCM, 16 kHz, mono.
    #[default]
    Pcm,
    /// LC3, 16 kHz mono, 10 ms frames of `frame_bytes` bytes each; a binary
    /// frame carries one or more whole LC3 frames back to back.
    Lc3 { frame_bytes: usize },
}

impl AudioCodec {
    /// Reads a codec choice from its wire form: a name (`pcm`, `lc3`, any
    /// case) and an optional LC3 frame size.
    pub fn from_wire(name: &str, lc3_frame_bytes: Option<u32>) -> Result<AudioCodec, AudioError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "pcm" | "pcm_s16le" | "" => Ok(AudioCodec::Pcm),
            "lc3" => {
                let bytes = lc3_frame_bytes.unwrap_or(DEFAULT_LC3_FRAME_BYTES as u32);
                match usize::try_from(bytes) {
                    Ok(frame_bytes) if LC3_FRAME_BYTES.contains(&frame_bytes) => {
                        Ok(AudioCodec::Lc3 { frame_bytes })
                    }
                    _ => Err(AudioError::BadFrameBytes(bytes)),
                }
            }
            other => Err(AudioError::UnknownCodec(other.to_string())),
        }
    }

    /// The name used in logs and on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            AudioCodec::Pcm => "pcm",
            AudioCodec::Lc3 { .. } => "lc3",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        assert_eq!(AudioCodec::from_wire("PCM", None), Ok(AudioCodec::Pcm));
        assert_eq!(
            AudioCodec::from_wire("lc3", None),
            Ok(AudioCodec::Lc3 { frame_bytes: 20 })
        );
        assert_eq!(
            AudioCodec::from_wire("lc3", Some(40)),
            Ok(AudioCodec::Lc3 { frame_bytes: 40 })
        );
        assert_eq!(
            AudioCodec::from_wire("lc3", Some(7)),
            Err(AudioError::BadFrameBytes(7))
        );
        assert!(matches!(
            AudioCodec::from_wire("opus", None),
            Err(AudioError::UnknownCodec(_))
        ));
    }
}
