//! Errors of the audio crate: only a codec choice can be wrong; decoding
//! itself never fails (damaged frames are concealed).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AudioError {
    #[error("unknown audio codec {0:?} (expected \"pcm\" or \"lc3\")")]
    UnknownCodec(String),
    #[error("LC3 frame size {0} bytes is out of range (20 to 400)")]
    BadFrameBytes(u32),
}
