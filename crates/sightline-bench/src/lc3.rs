//! LC3 decode time: Sightline's decoder (`sightline_audio`, the one every
//! glasses connection uses) against Google's liblc3 on the same frames.
//! liblc3 is loaded at run time (Debian `liblc3-0`, pulled in by
//! `liblc3-tools`), so the suite builds without it; it also encodes the
//! test frames from a synthetic voice-like signal.

use std::ffi::{c_int, c_uint, c_void};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sightline_audio::lc3::{Lc3FrameDecoder, SAMPLES_PER_FRAME};

const DT_US: c_int = 10_000;
const SR_HZ: c_int = 16_000;
const PCM_S16: c_int = 0;

type SizeFn = unsafe extern "C" fn(c_int, c_int) -> c_uint;
type SetupFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void) -> *mut c_void;
type EncodeFn =
    unsafe extern "C" fn(*mut c_void, c_int, *const c_void, c_int, c_int, *mut c_void) -> c_int;
type DecodeFn =
    unsafe extern "C" fn(*mut c_void, *const c_void, c_int, c_int, *mut c_void, c_int) -> c_int;

/// liblc3, loaded.
struct LibLc3 {
    _lib: libloading::Library,
    encoder_size: SizeFn,
    setup_encoder: SetupFn,
    encode: EncodeFn,
    decoder_size: SizeFn,
    setup_decoder: SetupFn,
    decode: DecodeFn,
}

impl LibLc3 {
    fn load() -> Result<LibLc3> {
        let names = ["liblc3.so.1", "liblc3.so.0", "liblc3.so"];
        let lib = names
            .iter()
            // SAFETY: liblc3 has no initialisers with preconditions.
            .find_map(|n| unsafe { libloading::Library::new(n) }.ok())
            .context("liblc3 not found (install liblc3-tools or liblc3-dev)")?;
        // SAFETY: the signatures are those of lc3.h (liblc3 1.0).
        unsafe {
            let encoder_size = *lib.get::<SizeFn>(b"lc3_encoder_size\0")?;
            let setup_encoder = *lib.get::<SetupFn>(b"lc3_setup_encoder\0")?;
            let encode = *lib.get::<EncodeFn>(b"lc3_encode\0")?;
            let decoder_size = *lib.get::<SizeFn>(b"lc3_decoder_size\0")?;
            let setup_decoder = *lib.get::<SetupFn>(b"lc3_setup_decoder\0")?;
            let decode = *lib.get::<DecodeFn>(b"lc3_decode\0")?;
            Ok(LibLc3 {
                _lib: lib,
                encoder_size,
                setup_encoder,
                encode,
                decoder_size,
                setup_decoder,
                decode,
            })
        }
    }

    /// Encodes 10 ms frames of `pcm` at `frame_bytes` each.
    fn encode_all(&self, pcm: &[i16], frame_bytes: usize) -> Result<Vec<Vec<u8>>> {
        // SAFETY: memory is sized by lc3_encoder_size and pointer-aligned
        // (u64); every buffer passed is as long as liblc3 reads or writes.
        unsafe {
            let size = (self.encoder_size)(DT_US, SR_HZ) as usize;
            let mut mem = vec![0u64; size.div_ceil(8)];
            let enc = (self.setup_encoder)(DT_US, SR_HZ, 0, mem.as_mut_ptr().cast());
            if enc.is_null() {
                bail!("lc3_setup_encoder failed");
            }
            let mut frames = Vec::new();
            for chunk in pcm.chunks_exact(SAMPLES_PER_FRAME) {
                let mut out = vec![0u8; frame_bytes];
                let rc = (self.encode)(
                    enc,
                    PCM_S16,
                    chunk.as_ptr().cast(),
                    1,
                    frame_bytes as c_int,
                    out.as_mut_ptr().cast(),
                );
                if rc != 0 {
                    bail!("lc3_encode failed ({rc})");
                }
                frames.push(out);
            }
            Ok(frames)
        }
    }

    /// Decodes every frame; returns the PCM and the seconds it took.
    fn decode_all(&self, frames: &[Vec<u8>]) -> Result<(Vec<i16>, f64)> {
        // SAFETY: as in `encode_all`; each output holds one frame's samples.
        unsafe {
            let size = (self.decoder_size)(DT_US, SR_HZ) as usize;
            let mut mem = vec![0u64; size.div_ceil(8)];
            let dec = (self.setup_decoder)(DT_US, SR_HZ, 0, mem.as_mut_ptr().cast());
            if dec.is_null() {
                bail!("lc3_setup_decoder failed");
            }
            let mut pcm = vec![0i16; frames.len() * SAMPLES_PER_FRAME];
            let t0 = Instant::now();
            for (f, out) in frames.iter().zip(pcm.chunks_exact_mut(SAMPLES_PER_FRAME)) {
                (self.decode)(
                    dec,
                    f.as_ptr().cast(),
                    f.len() as c_int,
                    PCM_S16,
                    out.as_mut_ptr().cast(),
                    1,
                );
            }
            Ok((pcm, t0.elapsed().as_secs_f64()))
        }
    }
}

/// Sightline's decoder over every frame; the PCM and the seconds it took.
fn sightline_decode_all(frames: &[Vec<u8>], frame_bytes: usize) -> (Vec<i16>, f64) {
    let mut dec = Lc3FrameDecoder::new(frame_bytes);
    let mut pcm = vec![0i16; frames.len() * SAMPLES_PER_FRAME];
    let mut out = [0i16; SAMPLES_PER_FRAME];
    let t0 = Instant::now();
    for (f, dst) in frames.iter().zip(pcm.chunks_exact_mut(SAMPLES_PER_FRAME)) {
        dec.decode(f, &mut out);
        dst.copy_from_slice(&out);
    }
    (pcm, t0.elapsed().as_secs_f64())
}

/// A voice-like test signal: a gliding fundamental with harmonics, syllable
/// rhythm and a little noise, 16 kHz.
fn test_signal(secs: usize) -> Vec<i16> {
    let n = secs * 16_000;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            let f0 = 140.0 + 60.0 * (2.0 * std::f64::consts::PI * 0.3 * t).sin();
            phase += 2.0 * std::f64::consts::PI * f0 / 16_000.0;
            let voiced: f64 = (1..=12)
                .map(|h| {
                    let h = f64::from(h);
                    let formant = (-((h * f0 - 700.0) / 500.0).powi(2)).exp()
                        + 0.5 * (-((h * f0 - 1800.0) / 700.0).powi(2)).exp();
                    formant * (phase * h).sin() / h.sqrt()
                })
                .sum();
            let syllable = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            ((voiced * syllable * 0.6 + noise * 0.02) * 12_000.0).clamp(-32_000.0, 32_000.0) as i16
        })
        .collect()
}

/// Signal-to-noise ratio of `b` against `a`, in dB.
fn snr_db(a: &[i16], b: &[i16]) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        s += f64::from(*x).powi(2);
        n += (f64::from(*x) - f64::from(*y)).powi(2);
    }
    if n == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (s / n).log10()
    }
}

/// Decode times at one frame size.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lc3Result {
    pub frame_bytes: usize,
    pub frames: usize,
    pub passes: usize,
    /// Best pass, nanoseconds per 10 ms frame.
    pub sightline_ns_per_frame: f64,
    pub liblc3_ns_per_frame: f64,
    /// `sightline / liblc3` (target: at most 1.5).
    pub ratio: f64,
    /// How close Sightline's output is to liblc3's, dB.
    pub sightline_vs_liblc3_snr_db: f64,
}

/// Runs the comparison at each frame size.
pub fn compare(secs: usize, passes: usize, sizes: &[usize]) -> Result<Vec<Lc3Result>> {
    let lib = LibLc3::load()?;
    let signal = test_signal(secs);
    let mut results = Vec::new();
    println!(
        "lc3 decode: {secs} s of 16 kHz voice-like signal, 10 ms frames, best of {passes} passes, frame sizes {sizes:?}"
    );
    println!("| bytes/frame | Sightline ns/frame | liblc3 ns/frame | ratio | Sightline vs liblc3 SNR dB |\n|---:|---:|---:|---:|---:|");
    for &bytes in sizes {
        let frames = lib.encode_all(&signal, bytes)?;
        let (mut best_s, mut best_l) = (f64::MAX, f64::MAX);
        let (mut pcm_s, mut pcm_l) = (Vec::new(), Vec::new());
        for _ in 0..passes {
            let (p, t) = sightline_decode_all(&frames, bytes);
            best_s = best_s.min(t);
            pcm_s = p;
            let (p, t) = lib.decode_all(&frames)?;
            best_l = best_l.min(t);
            pcm_l = p;
        }
        let n = frames.len() as f64;
        let r = Lc3Result {
            frame_bytes: bytes,
            frames: frames.len(),
            passes,
            sightline_ns_per_frame: best_s / n * 1e9,
            liblc3_ns_per_frame: best_l / n * 1e9,
            ratio: best_s / best_l,
            sightline_vs_liblc3_snr_db: snr_db(&pcm_l, &pcm_s),
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.1} |",
            r.frame_bytes,
            r.sightline_ns_per_frame,
            r.liblc3_ns_per_frame,
            r.ratio,
            r.sightline_vs_liblc3_snr_db
        );
        results.push(r);
    }
    Ok(results)
}
