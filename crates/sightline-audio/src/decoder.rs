//! [`AudioDecoder`]: a glasses connection's binary frames in, PCM out.
//!
//! One per glasses connection, owned by the connection actor. PCM frames
//! pass through (re-aligned to whole samples); LC3 frames are split into
//! codec frames, decoded, and damaged ones concealed and counted. A damaged
//! burst is logged once, when it starts.

use bytes::Bytes;

use crate::codec::{AudioCodec, LC3_FRAME_BYTES};
use crate::lc3::{FrameOutcome, Lc3FrameDecoder, SAMPLES_PER_FRAME};
use crate::pcm::{samples_to_bytes, PcmFramer};
use crate::stats::DecodeStats;

/// Turns one connection's audio frames into PCM.
pub struct AudioDecoder {
    inner: Inner,
    stats: DecodeStats,
    /// Named in the burst log line (e.g. the user and connection).
    label: String,
}

enum Inner {
    Pcm(PcmFramer),
    Lc3 {
        decoder: Box<Lc3FrameDecoder>,
        frame_bytes: usize,
    },
}

impl AudioDecoder {
    /// A decoder for `codec`. An LC3 frame size outside
    /// [`LC3_FRAME_BYTES`] (which [`AudioCodec::from_wire`] refuses) is
    /// brought to the nearest legal size, so a hand-built codec can neither
    /// divide by zero nor turn each input byte into a whole frame of PCM.
    pub fn new(codec: AudioCodec, label: impl Into<String>) -> AudioDecoder {
        let inner = match codec {
            AudioCodec::Pcm => Inner::Pcm(PcmFramer::default()),
            AudioCodec::Lc3 { frame_bytes } => {
                let frame_bytes =
                    frame_bytes.clamp(*LC3_FRAME_BYTES.start(), *LC3_FRAME_BYTES.end());
                Inner::Lc3 {
                    decoder: Box::new(Lc3FrameDecoder::new(frame_bytes)),
                    frame_bytes,
                }
            }
        };
        AudioDecoder {
            inner,
            stats: DecodeStats::default(),
            label: label.into(),
        }
    }

    pub fn codec(&self) -> AudioCodec {
        match &self.inner {
            Inner::Pcm(_) => AudioCodec::Pcm,
            Inner::Lc3 { frame_bytes, .. } => AudioCodec::Lc3 {
                frame_bytes: *frame_bytes,
            },
        }
    }

    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// PCM (s16le, 16 kHz, mono) for one binary frame; may be empty.
    pub fn decode(&mut self, frame: &[u8]) -> Bytes {
        match &mut self.inner {
            Inner::Pcm(framer) => framer.push(frame),
            Inner::Lc3 {
                decoder,
                frame_bytes,
            } => {
                let frames = frame.len().div_ceil(*frame_bytes);
                let mut samples = Vec::with_capacity(frames * SAMPLES_PER_FRAME);
                let mut out = [0i16; SAMPLES_PER_FRAME];
                for chunk in frame.chunks(*frame_bytes) {
                    match decoder.decode(chunk, &mut out) {
                        FrameOutcome::Decoded => self.stats.good(),
                        outcome => {
                            if self.stats.concealed() {
                                tracing::warn!(
                                    stream = %self.label,
                                    ?outcome,
                                    bytes = chunk.len(),
                                    concealed_total = self.stats.frames_concealed,
                                    "damaged LC3 audio; concealing (logged once per burst)"
                                );
                            }
                        }
                    }
                    samples.extend_from_slice(&out);
                }
                samples_to_bytes(&samples)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_passes_through() {
        let mut d = AudioDecoder::new(AudioCodec::Pcm, "t");
        assert_eq!(&d.decode(&[1, 2, 3, 4])[..], &[1, 2, 3, 4]);
    }

    #[test]
    fn out_of_range_lc3_frame_sizes_are_clamped_not_fatal() {
        // A frame size of 0 used to divide by zero on the first frame.
        for (asked, used) in [(0, 20), (1, 20), (401, 400), (usize::MAX, 400)] {
            let mut d = AudioDecoder::new(AudioCodec::Lc3 { frame_bytes: asked }, "t");
            assert_eq!(d.codec(), AudioCodec::Lc3 { frame_bytes: used });
            let pcm = d.decode(&[0u8; 45]);
            assert_eq!(pcm.len(), 45usize.div_ceil(used) * SAMPLES_PER_FRAME * 2);
        }
    }

    #[test]
    fn a_truncated_lc3_tail_is_concealed_and_counted() {
        let mut d = AudioDecoder::new(AudioCodec::Lc3 { frame_bytes: 20 }, "t");
        // 2 frames and 5 stray bytes: three frames of output, one concealed
        // at least (the stray tail).
        let pcm = d.decode(&[0u8; 45]);
        assert_eq!(pcm.len(), 3 * SAMPLES_PER_FRAME * 2);
        assert!(d.stats().frames_concealed >= 1);
        assert_eq!(
            d.stats().frames_concealed + d.stats().frames_decoded,
            3,
            "every frame is either decoded or concealed"
        );
    }
}
