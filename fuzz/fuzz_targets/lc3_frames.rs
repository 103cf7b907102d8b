//! Fuzz target: the glasses' binary audio frames and their codec choice.
//!
//! The first byte picks how the codec is configured: from its wire form
//! (`AudioCodec::from_wire` with a name and a frame size, the path hostile
//! glasses reach) or directly with an arbitrary frame size. The rest of the
//! input is fed to an `AudioDecoder` twice: as one binary frame, then in
//! pieces of a size taken from the input. The PCM out must always be whole
//! samples, and for LC3 exactly one 10 ms frame per started codec frame.
//!
//! The LC3 decoder contains panics of the codec library on purpose (the
//! frame is silenced and the codec rebuilt), so those are let through
//! quietly here; a panic anywhere else, or one that escapes the decoder,
//! still aborts and is a finding.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use sightline_audio::lc3::SAMPLES_PER_FRAME;
use sightline_audio::{AudioCodec, AudioDecoder};

const NAMES: [&str; 8] = [
    "lc3",
    "LC3",
    " lc3 ",
    "pcm",
    "pcm_s16le",
    "",
    "opus",
    "lc3\0",
];

static QUIET_CODEC_PANICS: Once = Once::new();

fn contain_codec_panics() {
    QUIET_CODEC_PANICS.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_codec = info
                .location()
                .is_some_and(|l| l.file().contains("lc3-codec") || l.file().contains("lc3_codec"));
            if !in_codec {
                fuzzer_hook(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    contain_codec_panics();
    let [mode, a, b, piece, audio @ ..] = data else {
        return;
    };
    let size = u16::from_le_bytes([*a, *b]);
    let codec = if mode & 0x80 == 0 {
        let name = NAMES[usize::from(mode & 7)];
        let frame_bytes = match mode & 0x18 {
            0 => None,
            0x08 => Some(u32::from(size) % 512),
            _ => Some(u32::from(size) << (u32::from(mode & 0x60) >> 2)),
        };
        match AudioCodec::from_wire(name, frame_bytes) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    } else {
        AudioCodec::Lc3 {
            frame_bytes: usize::from(size),
        }
    };
    let mut decoder = AudioDecoder::new(codec, "fuzz");
    let frame_bytes = match decoder.codec() {
        AudioCodec::Pcm => None,
        AudioCodec::Lc3 { frame_bytes } => Some(frame_bytes),
    };
    let expect = |input: usize| match frame_bytes {
        Some(n) => input.div_ceil(n) * SAMPLES_PER_FRAME * 2,
        None => input,
    };

    let pcm = decoder.decode(audio);
    assert_eq!(pcm.len() % 2, 0, "PCM must be whole samples");
    if frame_bytes.is_some() {
        assert_eq!(pcm.len(), expect(audio.len()));
    }

    let mut total = 0;
    for chunk in audio.chunks(usize::from(*piece).max(1)) {
        let pcm = decoder.decode(chunk);
        assert_eq!(pcm.len() % 2, 0, "PCM must be whole samples");
        if frame_bytes.is_some() {
            assert_eq!(pcm.len(), expect(chunk.len()));
        }
        total += pcm.len();
    }
    if frame_bytes.is_none() {
        // PCM passes through; at most one odd byte is held back.
        assert!(total + 1 >= audio.len() && total <= audio.len() + 1);
    }
    let stats = decoder.stats();
    assert!(stats.bursts <= stats.frames_concealed);
});
