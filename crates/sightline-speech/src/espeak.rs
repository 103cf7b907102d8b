//! The offline provider: espeak-ng (the Debian package), run as a child
//! process for each text. Sightline uses it when no ElevenLabs key is
//! configured, so `speak()` works on a laptop, in tests and on servers
//! without an account.
//!
//! The text goes to espeak-ng on its standard input (never through a shell
//! or as an argument); its WAV comes back on standard output, read up to a
//! size limit, under a time limit, after which the process is killed.
//! espeak-ng writes a streaming WAV header whose sizes are placeholders;
//! they are set to the real sizes, so players show the right duration.
//!
//! The voice is espeak-ng's own (ElevenLabs voice and model ids mean
//! nothing to it); `voice_settings.speed` sets the speaking rate: 1.0 is
//! espeak-ng's natural 175 words a minute.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::provider::{Audio, SpeechSynthesizer, SynthesisError};
use crate::request::SpeechRequest;

const NAME: &str = "espeak";
/// espeak-ng's natural rate, in words a minute.
const NATURAL_WPM: f64 = 175.0;
/// The rates espeak-ng accepts.
const WPM_RANGE: (u32, u32) = (80, 450);

/// How espeak-ng is run.
#[derive(Debug, Clone, PartialEq)]
pub struct EspeakConfig {
    /// The program (`espeak-ng`, found on `PATH`, or a full path).
    pub program: PathBuf,
    /// espeak-ng voice, e.g. `en-us`.
    pub voice: String,
    /// Longest a synthesis may run before it is killed.
    pub timeout: Duration,
    /// Largest WAV accepted (about 90 s of speech per 4 MiB).
    pub max_audio_bytes: usize,
}

impl Default for EspeakConfig {
    fn default() -> Self {
        EspeakConfig {
            program: PathBuf::from("espeak-ng"),
            voice: "en-us".into(),
            timeout: Duration::from_secs(10),
            max_audio_bytes: 8 << 20,
        }
    }
}

/// Speaks with espeak-ng.
#[derive(Debug, Clone)]
pub struct Espeak {
    config: EspeakConfig,
}

impl Espeak {
    pub fn new(config: EspeakConfig) -> Espeak {
        Espeak { config }
    }

    /// espeak-ng's rate for a `voice_settings.speed` (1.0 when not given).
    pub fn words_per_minute(speed: Option<f64>) -> u32 {
        let wpm = (NATURAL_WPM * speed.unwrap_or(1.0)).round();
        (wpm as u32).clamp(WPM_RANGE.0, WPM_RANGE.1)
    }

    async fn run(&self, request: &SpeechRequest) -> Result<Vec<u8>, SynthesisError> {
        let failed = |reason: String| SynthesisError::Failed {
            provider: NAME,
            reason,
        };
        let wpm = Espeak::words_per_minute(request.settings.speed).to_string();
        let mut child = Command::new(&self.config.program)
            .args(["--stdin", "--stdout", "-b", "1", "-s", &wpm, "-v"])
            .arg(&self.config.voice)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SynthesisError::Unavailable {
                provider: NAME,
                reason: format!("{}: {e}", self.config.program.display()),
            })?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(failed("its pipes were not opened".into()));
        };
        let text = request.text.as_bytes();
        let write = async move {
            let written = stdin.write_all(text).await;
            // Dropping stdin closes it: espeak-ng speaks what it read.
            drop(stdin);
            written
        };
        let limit = self.config.max_audio_bytes;
        let read = async move {
            let mut wav = Vec::new();
            stdout
                .take(limit as u64 + 1)
                .read_to_end(&mut wav)
                .await
                .map(|_| wav)
        };
        let (written, wav) = tokio::join!(write, read);
        let wav = wav.map_err(|e| failed(format!("reading its audio: {e}")))?;
        if wav.len() > limit {
            // The child is killed when dropped.
            return Err(SynthesisError::TooLarge {
                provider: NAME,
                limit,
            });
        }
        written.map_err(|e| failed(format!("writing the text: {e}")))?;
        let status = child
            .wait()
            .await
            .map_err(|e| failed(format!("waiting for it: {e}")))?;
        if !status.success() {
            return Err(failed(format!("exited with {status}")));
        }
        Ok(wav)
    }
}

#[async_trait(?Send)]
impl SpeechSynthesizer for Espeak {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn synthesize(&self, request: &SpeechRequest) -> Result<Audio, SynthesisError> {
        let after = self.config.timeout;
        let wav = tokio::time::timeout(after, self.run(request))
            .await
            .map_err(|_| SynthesisError::Timeout {
                provider: NAME,
                after,
            })??;
        let wav = fix_wav_sizes(wav).map_err(|reason| SynthesisError::Failed {
            provider: NAME,
            reason: reason.into(),
        })?;
        Ok(Audio {
            bytes: Bytes::from(wav),
            content_type: "audio/wav".into(),
        })
    }
}

/// Sets the RIFF and `data` chunk sizes of a WAV written as a stream to the
/// sizes of the bytes actually there.
pub fn fix_wav_sizes(mut wav: Vec<u8>) -> Result<Vec<u8>, &'static str> {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err("its output is not a WAV file");
    }
    let total = u32::try_from(wav.len() - 8).map_err(|_| "its WAV is too large")?;
    wav[4..8].copy_from_slice(&total.to_le_bytes());
    let mut at = 12;
    while at + 8 <= wav.len() {
        let id = [wav[at], wav[at + 1], wav[at + 2], wav[at + 3]];
        if &id == b"data" {
            let size = u32::try_from(wav.len() - (at + 8)).map_err(|_| "its WAV is too large")?;
            wav[at + 4..at + 8].copy_from_slice(&size.to_le_bytes());
            return Ok(wav);
        }
        let size = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]);
        // Chunks are padded to an even length.
        let size = (size as usize).saturating_add(size as usize & 1);
        at = at.saturating_add(8).saturating_add(size);
    }
    Err("its WAV has no data chunk")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_maps_to_words_per_minute() {
        assert_eq!(Espeak::words_per_minute(None), 175);
        assert_eq!(Espeak::words_per_minute(Some(1.0)), 175);
        assert_eq!(Espeak::words_per_minute(Some(0.7)), 122);
        assert_eq!(Espeak::words_per_minute(Some(1.2)), 210);
        assert_eq!(Espeak::words_per_minute(Some(0.01)), 80);
        assert_eq!(Espeak::words_per_minute(Some(100.0)), 450);
    }

    #[test]
    fn streaming_wav_sizes_are_fixed() {
        let mut wav = b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\0\0\0".to_vec();
        wav.extend_from_slice(&[0; 16]);
        wav.extend_from_slice(b"data\xff\xff\xff\x7f");
        wav.extend_from_slice(&[1, 2, 3, 4]);
        let fixed = fix_wav_sizes(wav).unwrap();
        assert_eq!(&fixed[4..8], &(fixed.len() as u32 - 8).to_le_bytes());
        assert_eq!(&fixed[40..44], &4u32.to_le_bytes());
    }

    #[test]
    fn what_is_not_a_wav_is_refused() {
        assert!(fix_wav_sizes(b"hello".to_vec()).is_err());
        assert!(fix_wav_sizes(b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\xff".to_vec()).is_err());
    }

    #[tokio::test]
    async fn espeak_speaks_a_wav() {
        let espeak = Espeak::new(EspeakConfig::default());
        let audio = espeak
            .synthesize(&SpeechRequest::new("Hello from the glasses"))
            .await
            .unwrap();
        assert_eq!(audio.content_type, "audio/wav");
        let b = &audio.bytes;
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(&b[40..44], &(b.len() as u32 - 44).to_le_bytes());
        // 22 050 Hz, 16-bit mono: over half a second of speech.
        assert!(b.len() > 22_050, "{} bytes", b.len());
    }

    #[tokio::test]
    async fn a_slower_speed_speaks_longer() {
        let espeak = Espeak::new(EspeakConfig::default());
        let mut slow = SpeechRequest::new("one two three four five six seven eight");
        slow.settings.speed = Some(0.7);
        let mut fast = slow.clone();
        fast.settings.speed = Some(1.2);
        let slow = espeak.synthesize(&slow).await.unwrap().bytes.len();
        let fast = espeak.synthesize(&fast).await.unwrap().bytes.len();
        assert!(slow > fast * 5 / 4, "slow {slow} bytes, fast {fast} bytes");
    }

    #[tokio::test]
    async fn limits_and_a_missing_program_are_typed_errors() {
        let small = Espeak::new(EspeakConfig {
            max_audio_bytes: 1000,
            ..EspeakConfig::default()
        });
        let e = small
            .synthesize(&SpeechRequest::new(
                "a sentence longer than a thousand bytes of audio",
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(e, SynthesisError::TooLarge { limit: 1000, .. }),
            "{e:?}"
        );

        let hurried = Espeak::new(EspeakConfig {
            timeout: Duration::from_millis(1),
            ..EspeakConfig::default()
        });
        let long = "many words to speak ".repeat(40);
        let e = hurried
            .synthesize(&SpeechRequest::new(long))
            .await
            .unwrap_err();
        assert!(matches!(e, SynthesisError::Timeout { .. }), "{e:?}");

        let missing = Espeak::new(EspeakConfig {
            program: "/nonexistent/espeak-ng".into(),
            ..EspeakConfig::default()
        });
        let e = missing
            .synthesize(&SpeechRequest::new("hi"))
            .await
            .unwrap_err();
        assert!(matches!(e, SynthesisError::Unavailable { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn text_that_looks_like_options_is_spoken_not_obeyed() {
        let espeak = Espeak::new(EspeakConfig::default());
        let audio = espeak
            .synthesize(&SpeechRequest::new("-w /tmp/owned.wav --version"))
            .await
            .unwrap();
        assert_eq!(&audio.bytes[0..4], b"RIFF");
        assert!(audio.bytes.len() > 22_050);
    }
}
