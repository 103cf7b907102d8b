//! Hostile audio from the glasses: any codec choice, any frame size, any
//! bytes, split anywhere.
//!
//! The decoder must never panic (a damaged LC3 frame is concealed, a frame
//! of the wrong length silenced), must always hand on whole 16-bit samples,
//! and for LC3 exactly one 10 ms frame of PCM per codec frame started. PCM
//! passes through unchanged however it is split. The `lc3_frames` fuzz
//! target in `fuzz/` runs the same checks for hours.

use proptest::prelude::*;
use sightline_audio::codec::LC3_FRAME_BYTES;
use sightline_audio::lc3::{Lc3FrameDecoder, SAMPLES_PER_FRAME};
use sightline_audio::{AudioCodec, AudioDecoder, AudioError};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

/// Where to cut a byte string into WebSocket frames.
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        out.push(bytes[from..p].to_vec());
        from = p;
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_codec_choice_is_a_codec_or_an_error(name in any::<String>(), bytes in proptest::option::of(any::<u32>())) {
        match AudioCodec::from_wire(&name, bytes) {
            Ok(AudioCodec::Lc3 { frame_bytes }) => prop_assert!(LC3_FRAME_BYTES.contains(&frame_bytes)),
            Ok(AudioCodec::Pcm) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn lc3_frame_sizes_round_trip(n in 0u32..1000, name in prop::sample::select(&["lc3", "LC3", " Lc3 "][..])) {
        let got = AudioCodec::from_wire(name, Some(n));
        if LC3_FRAME_BYTES.contains(&(n as usize)) {
            prop_assert_eq!(got, Ok(AudioCodec::Lc3 { frame_bytes: n as usize }));
        } else {
            prop_assert_eq!(got, Err(AudioError::BadFrameBytes(n)));
        }
    }

    #[test]
    fn lc3_decoder_takes_any_bytes_split_anywhere(
        frame_bytes in prop_oneof![3 => LC3_FRAME_BYTES, 1 => any::<usize>()],
        audio in prop::collection::vec(any::<u8>(), 0..1200),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut d = AudioDecoder::new(AudioCodec::Lc3 { frame_bytes }, "test");
        let AudioCodec::Lc3 { frame_bytes: used } = d.codec() else {
            return Err(TestCaseError::fail("codec changed"));
        };
        prop_assert!(LC3_FRAME_BYTES.contains(&used));
        for frame in split(&audio, &cuts) {
            let pcm = d.decode(&frame);
            prop_assert_eq!(pcm.len(), frame.len().div_ceil(used) * SAMPLES_PER_FRAME * 2);
        }
        let stats = d.stats();
        prop_assert!(stats.bursts <= stats.frames_concealed);
    }

    #[test]
    fn lc3_frame_decoder_takes_frames_of_any_length(
        frame_bytes in 0usize..500,
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 0..8),
    ) {
        let mut d = Lc3FrameDecoder::new(frame_bytes);
        let mut out = [0i16; SAMPLES_PER_FRAME];
        for frame in frames {
            let _ = d.decode(&frame, &mut out);
        }
    }

    #[test]
    fn pcm_passes_through_however_it_is_split(
        audio in prop::collection::vec(any::<u8>(), 0..4000),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut d = AudioDecoder::new(AudioCodec::Pcm, "test");
        let mut out = Vec::new();
        for frame in split(&audio, &cuts) {
            let pcm = d.decode(&frame);
            prop_assert_eq!(pcm.len() % 2, 0);
            out.extend_from_slice(&pcm);
        }
        // Everything comes out but a trailing odd byte.
        prop_assert_eq!(&out[..], &audio[..audio.len() & !1]);
    }
}
