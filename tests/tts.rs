//! Text-to-speech for `session.audio.speak()` end to end: the phone fetches
//! `GET /api/tts?…` as the SDK builds it (the query is made by Node's
//! `URLSearchParams`, as in @mentra/sdk@2.1.29) and plays the answer.
//! With the default provider the answer is a WAV spoken by espeak-ng, and
//! the local recogniser (tools/whisper-vosk) hears the text in it; with
//! ElevenLabs configured, a local ElevenLabs-shaped server receives the
//! app's voice, model and settings.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::speech::Recogniser;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sightline::store::MemoryStore;
use sightline_speech::ProviderChoice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// One answer: status, head (lower-cased) and body bytes.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// `GET path` as the phone's player sends it; the body is kept as bytes.
async fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .expect("an answer within 30 s")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "answers carry a length"
    );
    Answer {
        status,
        head,
        body: buf[split + 4..].to_vec(),
    }
}

/// The query string the SDK's `speak(text, options)` builds, made by Node's
/// `URLSearchParams` exactly as the SDK does.
fn sdk_query(text: &str, options: Value) -> String {
    let script = r#"
        const [text, options] = [process.argv[1], JSON.parse(process.argv[2])];
        const q = new URLSearchParams();
        q.append("text", text);
        if (options.voice_id) q.append("voice_id", options.voice_id);
        if (options.model_id) q.append("model_id", options.model_id);
        if (options.voice_settings) q.append("voice_settings", JSON.stringify(options.voice_settings));
        process.stdout.write(q.toString());
    "#;
    let out = std::process::Command::new("node")
        .args(["-e", script, text, &options.to_string()])
        .output()
        .expect("node is required (scripts/setup-test-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The format and PCM of a WAV, checking its header on the way.
struct Wav {
    channels: u16,
    rate: u32,
    bits: u16,
    pcm: Vec<u8>,
}

impl Wav {
    fn parse(b: &[u8]) -> Wav {
        assert!(b.len() > 44, "{} bytes", b.len());
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(&b[8..12], b"WAVE");
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        assert_eq!(u32_at(4) as usize, b.len() - 8, "RIFF size");
        let (mut at, mut fmt, mut pcm) = (12, None, None);
        while at + 8 <= b.len() {
            let size = u32_at(at + 4) as usize;
            match &b[at..at + 4] {
                b"fmt " => {
                    assert_eq!(u16_at(at + 8), 1, "PCM");
                    fmt = Some((u16_at(at + 10), u32_at(at + 12), u16_at(at + 22)));
                }
                b"data" => {
                    assert_eq!(at + 8 + size, b.len(), "data size");
                    pcm = Some(b[at + 8..].to_vec());
                }
                _ => {}
            }
            at += 8 + size + (size & 1);
        }
        let (channels, rate, bits) = fmt.expect("a fmt chunk");
        Wav {
            channels,
            rate,
            bits,
            pcm: pcm.expect("a data chunk"),
        }
    }

    fn seconds(&self) -> f64 {
        self.pcm.len() as f64 / (self.rate as f64 * self.channels as f64 * self.bits as f64 / 8.0)
    }
}

/// What the local recogniser hears in `wav` (resampled to 16 kHz by sox,
/// with the silence a microphone would hear around it).
async fn transcribe(wav: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("tts.wav"), dir.path().join("tts.raw"));
    std::fs::write(&input, wav).expect("write wav");
    let status = std::process::Command::new("sox")
        .arg(&input)
        .args([
            "-r",
            "16000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
        ])
        .arg(&output)
        .args(["pad", "0.3", "0.6"])
        .status()
        .expect("sox is required (scripts/setup-test-deps.sh)");
    assert!(status.success(), "sox failed");
    let pcm = std::fs::read(&output).expect("read pcm");
    let recogniser = Recogniser::start().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(recogniser.url())
        .await
        .expect("connect to the recogniser");
    ws.send(Message::text(
        json!({"config": {"sample_rate": 16000}}).to_string(),
    ))
    .await
    .expect("config");
    // One message: the recogniser then keeps the whole recording, the
    // silence before the first word included (it trims quiet audio only
    // between messages), as Whisper hears a file.
    ws.send(Message::binary(pcm)).await.expect("audio");
    ws.send(Message::text(json!({"eof": 1}).to_string()))
        .await
        .expect("eof");
    let mut heard = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
            if let Some(text) = v["text"].as_str() {
                heard.push(text.to_string());
            }
        }
    }
    recogniser.stop().await;
    heard.join(" ").to_lowercase()
}

fn start(tweak: impl FnOnce(&mut sightline::server::ServerConfig)) -> TestServer {
    TestServer::start_with(tweak, Arc::new(MemoryStore::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speak_plays_real_speech_of_the_text_and_repeats_come_from_the_cache() {
    let server = start(|_| {});
    let path = format!(
        "/api/tts?{}",
        sdk_query("Hello from the glasses", json!({}))
    );
    assert_eq!(path, "/api/tts?text=Hello+from+the+glasses");
    let first = get(server.addr, &path).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.header("content-type"), Some("audio/wav"));
    assert!(
        first
            .header("cache-control")
            .is_some_and(|c| c.contains("max-age")),
        "{}",
        first.head
    );
    let wav = Wav::parse(&first.body);
    assert_eq!((wav.channels, wav.bits), (1, 16));
    let seconds = wav.seconds();
    assert!(
        (0.8..5.0).contains(&seconds),
        "four words last about 1.5 s, not {seconds:.2} s"
    );

    let heard = transcribe(&first.body).await;
    for word in ["hello", "glasses"] {
        assert!(heard.contains(word), "{word:?} not heard in {heard:?}");
    }

    let before = scrape(&server).await;
    let second = get(server.addr, &path).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, first.body, "the same audio");
    let after = scrape(&server).await;
    let hits = "sightline_tts_cache_hits_total";
    assert_eq!(
        metric_sample(&after, hits) - metric_sample(&before, hits),
        1.0,
        "the second request was served from the cache"
    );
    let ok = "sightline_tts_requests_total{outcome=\"ok\",provider=\"espeak\"}";
    assert_eq!(metric_sample(&after, ok), 2.0, "{after}");
    server.stop().await;
}

/// A real SDK app's `speak()`: the glasses are asked to play a URL of this
/// server (written by the SDK as https, given to the glasses as it really
/// is), fetching it gives speech of the text, and the glasses' answer
/// settles the app's promise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speak_from_a_real_app_hands_the_glasses_a_url_of_that_speech() {
    let server = start(|_| {});
    let package = "com.sightline.speaks";
    let mut sdk = SdkApp::start("device_calls_app.mjs", package, &[]).await;
    server
        .register(
            package,
            &sdk.url,
            SDK_KEY,
            sightline::store::AppType::Background,
        )
        .await;
    let mut g = Client::glasses(&server, "talker@example.com").await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    sdk.call("speak", json!({"text": "Hello from the glasses"}), "speak")
        .await;
    let play = g.expect_type("audio_play_request").await;
    assert_eq!(play["trackId"], 2, "{play}");
    let url = play["audioUrl"].as_str().expect("audioUrl");
    let own = format!("http://{}", server.addr);
    let path = url
        .strip_prefix(&own)
        .unwrap_or_else(|| panic!("{url} is not on {own}"));
    assert!(path.starts_with("/api/tts?text=Hello"), "{path}");
    let audio = get(server.addr, path).await;
    assert_eq!(audio.status, 200);
    let heard = transcribe(&audio.body).await;
    for word in ["hello", "glasses"] {
        assert!(heard.contains(word), "{word:?} not heard in {heard:?}");
    }
    g.send(
        json!({"type": "audio_play_response", "requestId": play["requestId"],
        "success": true, "duration": 1500}),
    )
    .await;
    let done = sdk.wait_event("speak").await;
    assert_eq!(
        done["value"],
        json!({"success": true, "duration": 1500}),
        "{done}"
    );
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors() {
    let server = start(|c| c.speech.limits.max_text_chars = 100);
    let refused = |a: &Answer| {
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(
            a.json()["success"],
            false,
            "{}",
            String::from_utf8_lossy(&a.body)
        );
        a.json()["message"].as_str().unwrap_or_default().to_string()
    };

    for path in ["/api/tts", "/api/tts?text=", "/api/tts?voice_id=abc"] {
        let a = get(server.addr, path).await;
        assert_eq!(a.status, 400, "{path}");
        assert_eq!(
            refused(&a),
            "Text parameter is required and must be a string"
        );
    }

    let long = sdk_query(&"word ".repeat(21), json!({}));
    let a = get(server.addr, &format!("/api/tts?{long}")).await;
    assert_eq!(a.status, 413);
    assert!(refused(&a).contains("at most 100"), "{}", a.json());

    let bad_json = "/api/tts?text=hi&voice_settings=%7Bspeed";
    let a = get(server.addr, bad_json).await;
    assert_eq!(a.status, 400);
    assert_eq!(refused(&a), "Invalid voice_settings JSON format");

    let q = sdk_query("hi", json!({"voice_settings": {"speed": 9}}));
    let a = get(server.addr, &format!("/api/tts?{q}")).await;
    assert_eq!(a.status, 400);
    assert!(refused(&a).contains("speed"), "{}", a.json());

    let a = get(server.addr, "/api/tts?text=hi&voice_id=..%2Fadmin").await;
    assert_eq!(a.status, 400);
    assert!(refused(&a).contains("voice_id"), "{}", a.json());

    let page = scrape(&server).await;
    let bad = "sightline_tts_requests_total{outcome=\"bad_request\",provider=\"espeak\"}";
    let long = "sightline_tts_requests_total{outcome=\"too_long\",provider=\"espeak\"}";
    assert_eq!(metric_sample(&page, bad), 6.0, "{page}");
    assert_eq!(metric_sample(&page, long), 1.0, "{page}");
    server.stop().await;
}

/// What the fake ElevenLabs server was sent.
#[derive(Debug)]
struct Posted {
    request_line: String,
    head: String,
    body: Value,
}

/// An ElevenLabs-shaped server on a free port: it answers every request
/// with `status` and a few bytes of "MP3", and hands what it was sent to
/// the test.
async fn fake_elevenlabs(status: u16) -> (String, mpsc::UnboundedReceiver<Posted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 || buf.len() > 1 << 20 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break (head, buf[end + 4..end + 4 + length].to_vec());
                    }
                };
                let (request_line, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
                let _ = tx.send(Posted {
                    request_line: request_line.to_string(),
                    head: rest.to_lowercase(),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let audio = b"ID3\x04fake-mp3-frames";
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: audio/mpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    audio.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.write_all(audio).await;
            });
        }
    });
    (format!("http://{addr}"), rx)
}

fn elevenlabs(url: &str, key: &str) -> impl FnOnce(&mut sightline::server::ServerConfig) {
    let (url, key) = (url.to_string(), key.to_string());
    move |c| {
        c.speech.provider = ProviderChoice::ElevenLabs;
        c.speech.elevenlabs.base_url = url;
        c.speech.elevenlabs.api_key = key;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_receives_the_voice_model_and_settings_the_app_gave() {
    let (url, mut posted) = fake_elevenlabs(200).await;
    let server = start(elevenlabs(&url, "xi-test-key"));
    let query = sdk_query(
        "Hello from the glasses",
        json!({
            "voice_id": "21m00Tcm4TlvDq8ikWAM",
            "model_id": "eleven_multilingual_v2",
            "voice_settings": {"stability": 0.5, "similarity_boost": 0.8, "style": 0.1,
                               "use_speaker_boost": true, "speed": 1.1}
        }),
    );
    let a = get(server.addr, &format!("/api/tts?{query}")).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.header("content-type"), Some("audio/mpeg"));
    assert_eq!(a.body, b"ID3\x04fake-mp3-frames");

    let p = tokio::time::timeout(WAIT, posted.recv())
        .await
        .expect("ElevenLabs was called")
        .expect("a request");
    assert_eq!(
        p.request_line,
        "POST /v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream HTTP/1.1"
    );
    assert!(p.head.contains("xi-api-key: xi-test-key"), "{}", p.head);
    assert!(
        p.head.contains("content-type: application/json"),
        "{}",
        p.head
    );
    assert_eq!(
        p.body,
        json!({
            "text": "Hello from the glasses",
            "model_id": "eleven_multilingual_v2",
            "voice_settings": {"stability": 0.5, "similarity_boost": 0.8, "style": 0.1,
                               "use_speaker_boost": true, "speed": 1.1}
        })
    );

    // Without options, MentraOS's defaults go to ElevenLabs.
    let a = get(server.addr, "/api/tts?text=Hi+there").await;
    assert_eq!(a.status, 200);
    let p = tokio::time::timeout(WAIT, posted.recv())
        .await
        .expect("called")
        .expect("a request");
    assert!(p
        .request_line
        .contains("/v1/text-to-speech/8IRrZoKuYTPnpLc6lM6a/stream"));
    assert_eq!(
        p.body,
        json!({
            "text": "Hi there",
            "model_id": "eleven_turbo_v2_5",
            "voice_settings": {"stability": 0.68, "similarity_boost": 0.75, "style": 0.0, "speed": 1.13}
        })
    );
    let page = scrape(&server).await;
    let ok = "sightline_tts_requests_total{outcome=\"ok\",provider=\"elevenlabs\"}";
    assert_eq!(metric_sample(&page, ok), 2.0, "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_missing_provider_is_a_json_error() {
    let (url, _posted) = fake_elevenlabs(500).await;
    let server = start(elevenlabs(&url, "xi-test-key"));
    let a = get(server.addr, "/api/tts?text=Hello").await;
    assert_eq!(a.status, 502);
    assert_eq!(
        a.json(),
        json!({"success": false, "message": "Speech synthesis failed"})
    );
    let page = scrape(&server).await;
    let failed = "sightline_tts_requests_total{outcome=\"failed\",provider=\"elevenlabs\"}";
    assert_eq!(metric_sample(&page, failed), 1.0, "{page}");
    server.stop().await;

    // ElevenLabs chosen without a key, or text-to-speech turned off.
    for tweak in [
        Box::new(elevenlabs(&url, "")) as Box<dyn FnOnce(&mut _)>,
        Box::new(|c: &mut sightline::server::ServerConfig| c.speech.provider = ProviderChoice::Off),
    ] {
        let server = start(tweak);
        let a = get(server.addr, "/api/tts?text=Hello").await;
        assert_eq!(a.status, 503);
        assert_eq!(
            a.json(),
            json!({"success": false, "message": "TTS service not configured"})
        );
        server.stop().await;
    }
}
