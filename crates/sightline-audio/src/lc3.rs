//! One LC3 decoder (16 kHz, mono, 10 ms frames) built on the `lc3-codec`
//! crate, hardened for frames that arrive over a network.
//!
//! `lc3-codec` decodes into working buffers it borrows; [`Lc3FrameDecoder`]
//! owns those buffers together with the decoder. Every frame is first
//! checked (side information and spectrum must parse) so damaged frames are
//! known and counted; the codec then conceals them from the last good
//! spectrum. A frame of the wrong length is replaced by silence. Should the
//! codec ever panic on hostile input, the panic is contained, the frame is
//! concealed with silence and the decoder is rebuilt: one connection's
//! garbage never takes its session down.

use std::panic::{catch_unwind, AssertUnwindSafe};

use lc3_codec::common::complex::{Complex, Scaler};
use lc3_codec::common::config::{FrameDuration, Lc3Config, SamplingFrequency};
use lc3_codec::common::constants::MAX_LEN_SPECTRAL;
use lc3_codec::decoder::buffer_reader::BufferReader;
use lc3_codec::decoder::lc3_decoder::Lc3Decoder;
use lc3_codec::decoder::{arithmetic_codec, side_info_reader};
use ouroboros::self_referencing;

/// Samples in one 10 ms frame at 16 kHz.
pub const SAMPLES_PER_FRAME: usize = 160;

const FREQUENCY: SamplingFrequency = SamplingFrequency::Hz16000;
const DURATION: FrameDuration = FrameDuration::TenMs;

/// The codec and the working memory it borrows, kept together.
#[self_referencing]
struct Codec {
    scaler: Vec<Scaler>,
    complex: Vec<Complex>,
    #[borrows(mut scaler, mut complex)]
    #[not_covariant]
    decoder: Lc3Decoder<'this>,
}

impl Codec {
    fn fresh() -> Codec {
        let (scaler_len, complex_len) =
            Lc3Decoder::calc_working_buffer_lengths(1, DURATION, FREQUENCY);
        CodecBuilder {
            scaler: vec![0.0; scaler_len],
            complex: vec![Complex::default(); complex_len],
            decoder_builder: |scaler, complex| {
                Lc3Decoder::new(1, DURATION, FREQUENCY, scaler, complex)
            },
        }
        .build()
    }
}

/// How a frame was turned into samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    Decoded,
    /// Damaged: the codec's packet-loss concealment filled in.
    Concealed,
    /// Wrong length, or the codec failed: silence filled in.
    Silenced,
}

/// A stateful LC3 decoder for one audio stream.
pub struct Lc3FrameDecoder {
    codec: Codec,
    config: Lc3Config,
    frame_bytes: usize,
}

impl Lc3FrameDecoder {
    /// A decoder for frames of `frame_bytes` bytes.
    pub fn new(frame_bytes: usize) -> Lc3FrameDecoder {
        Lc3FrameDecoder {
            codec: Codec::fresh(),
            config: Lc3Config::new(FREQUENCY, DURATION),
            frame_bytes,
        }
    }

    /// Decodes one frame into `out` (160 samples).
    pub fn decode(&mut self, frame: &[u8], out: &mut [i16; SAMPLES_PER_FRAME]) -> FrameOutcome {
        if frame.len() != self.frame_bytes {
            out.fill(0);
            return FrameOutcome::Silenced;
        }
        let config = self.config;
        let intact = catch_unwind(|| frame_parses(frame, &config)).unwrap_or(false);
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            self.codec
                .with_decoder_mut(|d| d.decode_frame(16, 0, frame, &mut out[..]).is_ok())
        }));
        match decoded {
            Ok(true) if intact => FrameOutcome::Decoded,
            Ok(true) => FrameOutcome::Concealed,
            Ok(false) | Err(_) => {
                // The codec's state is unknown after a failure: start over.
                self.codec = Codec::fresh();
                out.fill(0);
                FrameOutcome::Silenced
            }
        }
    }
}

/// Whether a frame's side information and spectrum decode without error.
fn frame_parses(frame: &[u8], config: &Lc3Config) -> bool {
    let mut reader = BufferReader::new();
    let Ok(side_info) = side_info_reader::read(frame, &mut reader, config.fs_ind, config.ne) else {
        return false;
    };
    let mut spectrum = [0i32; MAX_LEN_SPECTRAL];
    arithmetic_codec::decode(
        frame,
        &mut reader,
        config.fs_ind,
        config.ne,
        &side_info,
        &config.n_ms,
        &mut spectrum,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_length_is_silence() {
        let mut d = Lc3FrameDecoder::new(20);
        let mut out = [7i16; SAMPLES_PER_FRAME];
        assert_eq!(d.decode(&[1, 2, 3], &mut out), FrameOutcome::Silenced);
        assert!(out.iter().all(|s| *s == 0));
    }

    #[test]
    fn random_bytes_never_panic_out() {
        // A simple deterministic generator: the point is many odd frames.
        let mut d = Lc3FrameDecoder::new(20);
        let mut x: u32 = 0x1234_5678;
        let mut out = [0i16; SAMPLES_PER_FRAME];
        let mut seen_not_decoded = 0;
        for _ in 0..2000 {
            let mut frame = [0u8; 20];
            for b in frame.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            if d.decode(&frame, &mut out) != FrameOutcome::Decoded {
                seen_not_decoded += 1;
            }
        }
        assert!(
            seen_not_decoded > 0,
            "random bytes should not all parse as LC3"
        );
    }
}
