//! Speech for the transcription tests: a spoken sentence made with espeak-ng
//! and sox (PCM, 16 kHz) and encoded with liblc3's elc3 (20-byte frames),
//! and the local recogniser (tools/whisper-vosk) on a free port or a given
//! one. The SDK apps that receive the transcripts are [`super::sdk::SdkApp`].
//! Everything missing makes the test fail with a message naming it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SENTENCE: &str = "please remind me to call my mother tomorrow";

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
}

fn cache() -> PathBuf {
    std::env::var_os("SIGHTLINE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/sightline")
        })
}

fn run(tool: &str, args: &[&str]) {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is required ({e}); run scripts/setup-test-deps.sh"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The sentence as PCM (s16le, 16 kHz, mono) and as LC3 frames.
pub struct Speech {
    pub pcm: Vec<u8>,
    pub lc3_frames: Vec<Vec<u8>>,
}

impl Speech {
    /// [`SENTENCE`], spoken.
    pub fn make(dir: &Path) -> Speech {
        Speech::say(dir, SENTENCE)
    }

    /// `text` spoken by espeak-ng, with 300 ms of silence before and after
    /// as a microphone would hear. Files go into `dir`.
    pub fn say(dir: &Path, text: &str) -> Speech {
        Speech::say_with(dir, &[], text)
    }

    /// `text` spoken by espeak-ng's `voice` (`de`, `es`, `fr`) at 130 words
    /// a minute, as [`Speech::say`] does.
    pub fn say_in(dir: &Path, voice: &str, text: &str) -> Speech {
        Speech::say_with(dir, &["-v", voice, "-s", "130"], text)
    }

    fn say_with(dir: &Path, espeak: &[&str], text: &str) -> Speech {
        let p = |n: &str| dir.join(n).to_str().expect("utf-8 path").to_string();
        let out = p("raw.wav");
        let mut args = espeak.to_vec();
        args.extend(["-w", &out, text]);
        run("espeak-ng", &args);
        run(
            "sox",
            &[
                &p("raw.wav"),
                "-r",
                "16000",
                "-c",
                "1",
                "-b",
                "16",
                &p("s16.wav"),
                "pad",
                "0.3",
                "0.3",
            ],
        );
        run("sox", &[&p("s16.wav"), "-t", "raw", &p("s16.raw")]);
        run(
            "elc3",
            &["-b", "16000", "-m", "10", &p("s16.wav"), &p("s.lc3")],
        );
        let pcm = std::fs::read(p("s16.raw")).expect("read pcm");
        let bytes = std::fs::read(p("s.lc3")).expect("read lc3");
        let header = u16::from_le_bytes([bytes[2], bytes[3]]) as usize;
        let mut at = header;
        let mut lc3_frames = Vec::new();
        while at + 2 <= bytes.len() {
            let len = u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
            lc3_frames.push(bytes[at + 2..at + 2 + len].to_vec());
            at += 2 + len;
        }
        Speech { pcm, lc3_frames }
    }

    /// PCM in 50 ms messages, as the phone sends it.
    pub fn pcm_messages(&self) -> Vec<Vec<u8>> {
        self.pcm.chunks(1600).map(|c| c.to_vec()).collect()
    }

    /// LC3 in messages of five 10 ms frames.
    pub fn lc3_messages(&self) -> Vec<Vec<u8>> {
        self.lc3_frames.chunks(5).map(|c| c.concat()).collect()
    }
}

/// The local Vosk-protocol recogniser, stopped on drop.
pub struct Recogniser {
    child: Child,
    pub port: u16,
}

impl Recogniser {
    pub async fn start() -> Recogniser {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Recogniser {
        Self::start_with(port, &[]).await
    }

    /// Started with extra arguments (e.g. `--multilingual-model none`).
    pub async fn start_with(port: u16, extra: &[&str]) -> Recogniser {
        let python = cache().join("asr-venv/current/bin/python");
        assert!(
            python.exists(),
            "the local recogniser's environment is missing ({}); run scripts/setup-test-deps.sh",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root().join("tools/whisper-vosk/server.py"))
            .args(["--port", &port.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the local recogniser");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the recogniser did not start within 60 s")
            .expect("read recogniser output")
            .expect("the recogniser exited before listening");
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected recogniser output {line:?}"));
        Recogniser { child, port }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
