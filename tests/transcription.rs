//! Live captions end to end, with the real local recogniser
//! (tools/whisper-vosk: faster-whisper, Whisper tiny.en): a sentence
//! spoken by espeak-ng streams at real-time pace over /glasses-ws, as LC3
//! from liblc3's reference encoder or as PCM, and an unmodified
//! @mentra/sdk@2.1.29 app's `onTranscription` handler receives a final
//! transcript with the sentence's words. Each test prints the time from the
//! last audio frame to that final transcript.

mod common;

use std::time::{Duration, Instant};

use common::speech::{Recogniser, Speech};
use common::*;
use serde_json::{json, Value};
use sightline::store::AppType;
use sightline_transcription::{AsrConfig, ProviderKind};
use tokio_tungstenite::tungstenite::Message;

fn has_words(v: &Value) -> bool {
    let text = v["data"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    // The small local model sometimes writes the last word as "mum"
    // (most often after LC3's compression); either is the spoken word.
    ["remind", "call"].iter().all(|w| text.contains(w))
        && (text.contains("mother") || text.contains("mum"))
}

/// Streams `messages` (50 ms each) at real-time pace, between VAD events,
/// and returns when the last one was sent.
async fn speak(glasses: &mut Client, messages: &[Vec<u8>]) -> Instant {
    glasses
        .send(json!({"type": "VAD", "status": true, "timestamp": 0}))
        .await;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for m in messages {
        tick.tick().await;
        glasses.send_raw(Message::binary(m.clone())).await;
    }
    let last = Instant::now();
    glasses
        .send(json!({"type": "VAD", "status": false, "timestamp": 0}))
        .await;
    last
}

async fn captions_over(codec_query: &str, lc3: bool) {
    let dir = tempfile::tempdir().unwrap();
    let speech = Speech::make(dir.path());
    let recogniser = Recogniser::start().await;
    let url = recogniser.url();
    let server = TestServer::start_with(
        move |c| c.runtime.asr = AsrConfig::new(ProviderKind::Vosk, Some(url), None),
        std::sync::Arc::new(sightline::store::MemoryStore::new()),
    );
    let package = if lc3 {
        "com.sightline.captions.lc3"
    } else {
        "com.sightline.captions.pcm"
    };
    let mut app = SdkApp::conformance(package, "early").await;
    server
        .register(package, &app.url, SDK_KEY, AppType::Standard)
        .await;
    let email = format!("speaker-{}@example.com", if lc3 { "lc3" } else { "pcm" });
    let mut glasses = Client::connect(
        &format!("{}{codec_query}", server.ws_url("/glasses-ws")),
        Some(&token(&email)),
    )
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

    let messages = if lc3 {
        speech.lc3_messages()
    } else {
        speech.pcm_messages()
    };
    let last = speak(&mut glasses, &messages).await;
    let fin = app
        .wait_for("transcription", Duration::from_secs(30), |v| {
            v["data"]["isFinal"] == true && has_words(v)
        })
        .await;
    let latency = last.elapsed();
    println!(
        "{}: final transcript {:?} {} ms after the last audio frame",
        if lc3 { "LC3" } else { "PCM" },
        fin["data"]["text"],
        latency.as_millis()
    );
    let data = &fin["data"];
    assert_eq!(data["type"], "transcription");
    assert_eq!(data["transcribeLanguage"], "en-US");
    let (start, end) = (
        data["startTime"].as_u64().unwrap(),
        data["endTime"].as_u64().unwrap(),
    );
    let spoken_ms = (messages.len() * 50) as u64;
    assert!(
        start < end && end <= spoken_ms + 1000,
        "times in ms from stream start: {start}..{end} of {spoken_ms}"
    );
    assert!(
        latency < Duration::from_secs(10),
        "final transcript too slow: {latency:?}"
    );
    app.stop().await;
    recogniser.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lc3_speech_reaches_an_sdk_app_as_a_final_transcript() {
    captions_over("?audioCodec=lc3", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcm_speech_reaches_an_sdk_app_as_a_final_transcript() {
    captions_over("", false).await;
}
