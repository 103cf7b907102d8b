//! PCM framing: Sightline's PCM is signed 16-bit little-endian, 16 kHz,
//! mono. Glasses may split a sample across two WebSocket frames, so
//! [`PcmFramer`] carries an odd trailing byte over to the next frame and
//! only ever hands on whole samples.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes per PCM sample.
pub const BYTES_PER_SAMPLE: usize = 2;

/// Milliseconds of audio in `bytes` of PCM.
pub fn duration_ms(bytes: usize) -> u64 {
    (bytes / BYTES_PER_SAMPLE) as u64 * 1000 / crate::SAMPLE_RATE as u64
}

/// Samples as little-endian bytes.
pub fn samples_to_bytes(samples: &[i16]) -> Bytes {
    let mut out = BytesMut::with_capacity(samples.len() * BYTES_PER_SAMPLE);
    for s in samples {
        out.put_i16_le(*s);
    }
    out.freeze()
}

/// Little-endian bytes as samples (a trailing odd byte is ignored).
pub fn bytes_to_samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(BYTES_PER_SAMPLE)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Reassembles whole samples from PCM frames of any length.
#[derive(Debug, Default)]
pub struct PcmFramer {
    carry: Option<u8>,
}

impl PcmFramer {
    /// The whole samples available after `frame`, as bytes.
    pub fn push(&mut self, frame: &[u8]) -> Bytes {
        if self.carry.is_none() && frame.len().is_multiple_of(BYTES_PER_SAMPLE) {
            return Bytes::copy_from_slice(frame);
        }
        let mut out = BytesMut::with_capacity(frame.len() + 1);
        if let Some(b) = self.carry.take() {
            out.put_u8(b);
        }
        out.extend_from_slice(frame);
        if !out.len().is_multiple_of(BYTES_PER_SAMPLE) {
            let last = out.split_off(out.len() - 1);
            self.carry = last.first().copied();
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_frames_pass_through() {
        let mut f = PcmFramer::default();
        assert_eq!(&f.push(&[1, 2, 3, 4])[..], &[1, 2, 3, 4]);
    }

    #[test]
    fn a_split_sample_is_joined() {
        let mut f = PcmFramer::default();
        assert_eq!(&f.push(&[1, 2, 3])[..], &[1, 2]);
        assert_eq!(&f.push(&[4, 5])[..], &[3, 4]);
        assert_eq!(&f.push(&[6])[..], &[5, 6]);
    }

    #[test]
    fn conversions_round_trip() {
        let s = [0i16, 1, -1, i16::MAX, i16::MIN];
        assert_eq!(bytes_to_samples(&samples_to_bytes(&s)), s);
        assert_eq!(duration_ms(3200), 100);
    }
}
