//! LC3 interoperability with Google's reference codec (liblc3): speech is
//! synthesised with espeak-ng, resampled to 16 kHz with sox, encoded with
//! liblc3's `elc3` at 16 kbit/s (20-byte 10 ms frames, what glasses send),
//! then decoded twice: by liblc3's own `dlc3` (the reference) and by
//! Sightline's [`AudioDecoder`]. Sightline's PCM must match the reference
//! to within [`MIN_SNR_DB`] once aligned by the codec delay (which `dlc3`
//! trims and a streaming decoder cannot).
//!
//! Needs espeak-ng, sox and liblc3-tools (scripts/setup-test-deps.sh
//! installs them); the test fails, naming what is missing, without them.

use std::path::Path;
use std::process::Command;

use sightline_audio::pcm::bytes_to_samples;
use sightline_audio::{AudioCodec, AudioDecoder};

/// Sightline's decode of a reference LC3 stream must be this close to the
/// reference decoder's output (signal-to-difference ratio over the whole
/// utterance).
const MIN_SNR_DB: f64 = 45.0;

/// The lags searched when aligning Sightline's output with `dlc3`'s.
const MAX_LAG: usize = 160;

/// LC3's algorithmic delay at 10 ms / 16 kHz: 2.5 ms, 40 samples. `dlc3`
/// trims it from its output; a streaming decoder cannot.
const CODEC_DELAY: usize = 40;

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} is required for the LC3 interop test ({e}); run scripts/setup-test-deps.sh")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The samples of a 16-bit mono WAV file.
fn wav_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            let end = (at + 8 + len).min(bytes.len());
            return bytes_to_samples(&bytes[at + 8..end]);
        }
        at += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// The frames of a liblc3 bitstream file (header, then length-prefixed
/// frames).
fn lc3_frames(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[0..2], &[0x1c, 0xcc], "not a liblc3 bitstream file");
    let header = u16::from_le_bytes([bytes[2], bytes[3]]) as usize;
    let mut at = header;
    let mut frames = Vec::new();
    while at + 2 <= bytes.len() {
        let len = u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
        frames.push(bytes[at + 2..at + 2 + len].to_vec());
        at += 2 + len;
    }
    frames
}

fn snr_db(reference: &[i16], ours: &[i16], lag: usize) -> f64 {
    let (mut signal, mut noise) = (0f64, 0f64);
    for (i, r) in reference.iter().enumerate() {
        let o = ours.get(i + lag).copied().unwrap_or(0) as f64;
        let r = *r as f64;
        signal += r * r;
        noise += (r - o) * (r - o);
    }
    10.0 * (signal / noise.max(1e-9)).log10()
}

/// Speech encoded by liblc3, as frames, plus liblc3's decode of it.
fn reference_speech(dir: &Path) -> (Vec<Vec<u8>>, Vec<i16>) {
    let raw = dir.join("speech.wav");
    let wav16 = dir.join("speech16k.wav");
    let lc3 = dir.join("speech.lc3");
    let reference = dir.join("reference.wav");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    run(
        "espeak-ng",
        &[
            "-w",
            &s(&raw),
            "please remind me to call my mother tomorrow",
        ],
    );
    run(
        "sox",
        &[&s(&raw), "-r", "16000", "-c", "1", "-b", "16", &s(&wav16)],
    );
    run("elc3", &["-b", "16000", "-m", "10", &s(&wav16), &s(&lc3)]);
    run("dlc3", &[&s(&lc3), &s(&reference)]);
    (lc3_frames(&lc3), wav_samples(&reference))
}

#[test]
fn reference_encoded_speech_decodes_like_the_reference_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, reference) = reference_speech(dir.path());
    assert!(
        frames.iter().all(|f| f.len() == 20),
        "elc3 at 16 kbit/s makes 20-byte frames"
    );

    // Glasses send several frames per WebSocket message: 5 here (50 ms).
    let mut decoder = AudioDecoder::new(AudioCodec::Lc3 { frame_bytes: 20 }, "interop");
    let mut ours = Vec::new();
    for group in frames.chunks(5) {
        let message: Vec<u8> = group.concat();
        ours.extend(bytes_to_samples(&decoder.decode(&message)));
    }
    assert_eq!(
        decoder.stats().frames_concealed,
        0,
        "reference frames are all intact"
    );
    assert_eq!(decoder.stats().frames_decoded as usize, frames.len());

    let (lag, snr) = (0..=MAX_LAG)
        .map(|lag| (lag, snr_db(&reference, &ours, lag)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    println!(
        "LC3 interop: {} frames, Sightline vs dlc3 SNR {snr:.1} dB at a lag of {lag} samples (threshold {MIN_SNR_DB} dB)",
        frames.len()
    );
    assert_eq!(lag, CODEC_DELAY, "aligned by exactly the codec delay");
    assert!(
        snr >= MIN_SNR_DB,
        "Sightline's LC3 decode is {snr:.1} dB from liblc3's (needs {MIN_SNR_DB} dB)"
    );
}

#[test]
fn damaged_frames_in_reference_speech_are_concealed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, reference) = reference_speech(dir.path());
    let mut decoder = AudioDecoder::new(AudioCodec::Lc3 { frame_bytes: 20 }, "damage");
    let mut ours = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let pcm = match i {
            // A burst of three frames with flipped bits...
            50..=52 => decoder.decode(&frame.iter().map(|b| b ^ 0xa5).collect::<Vec<_>>()),
            // ...and a frame cut short in transit.
            120 => decoder.decode(&frame[..11]),
            _ => decoder.decode(frame),
        };
        ours.extend(bytes_to_samples(&pcm));
    }
    let stats = decoder.stats();
    assert_eq!(
        ours.len(),
        frames.len() * 160,
        "every frame, damaged or not, yields 10 ms of audio"
    );
    assert!(stats.frames_concealed >= 2, "damage was noticed: {stats:?}");
    assert!(stats.bursts >= 2, "two separate bursts: {stats:?}");
    assert_eq!(
        stats.frames_decoded + stats.frames_concealed,
        frames.len() as u64
    );
    // The rest of the utterance is unharmed: decoding stays close to the
    // reference overall.
    let snr = (0..=MAX_LAG)
        .map(|lag| snr_db(&reference, &ours, lag))
        .fold(f64::MIN, f64::max);
    println!("LC3 with damaged frames: {stats:?}, SNR {snr:.1} dB");
    assert!(snr > 3.0, "damage stays local (SNR {snr:.1} dB)");
}
