//! Contract tests of the Deepgram client: a [`TranscriptionStream`] on the
//! Deepgram provider talks to a local WebSocket server that follows
//! Deepgram's documented live streaming API (the real service cannot be
//! reached from Sightline's test machines, so nothing here talks to it).
//!
//! The server checks what the client sends — the `/v1/listen` path with
//! `encoding=linear16`, `sample_rate=16000`, `channels=1`, the language and
//! `interim_results=true` in the query, the `Authorization: Token` key, no
//! text before the audio, the audio as binary frames byte for byte, and
//! `{"type":"CloseStream"}` to end — and answers with scripted `Results`
//! messages (`channel.alternatives[0].transcript`, `is_final`,
//! `speech_final`, `start` and `duration` in seconds) and the closing
//! `Metadata`, or refuses a bad key with HTTP 401. The tests assert the
//! interim and final results and their stream times, that a refused key
//! fails the stream without a retry, and that a dropped connection is
//! retried with the audio not yet transcribed sent again.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sightline_transcription::{ProviderKind, StreamSpec};

const KEY: &str = "deepgram-test-key";
const PATH: &str = "/v1/listen";

fn expect_handshake(side: &ProviderSide, language: &str) {
    let hs = &side.handshake;
    assert_eq!(hs.path, PATH);
    assert_eq!(
        hs.headers.get("authorization").map(String::as_str),
        Some(format!("Token {KEY}").as_str())
    );
    let q = |k: &str| hs.query.get(k).map(String::as_str);
    assert_eq!(q("encoding"), Some("linear16"), "{:?}", hs.query);
    assert_eq!(q("sample_rate"), Some("16000"), "{:?}", hs.query);
    assert_eq!(q("channels"), Some("1"), "{:?}", hs.query);
    assert_eq!(q("language"), Some(language), "{:?}", hs.query);
    assert_eq!(q("interim_results"), Some("true"), "{:?}", hs.query);
}

fn results(
    transcript: &str,
    start: f64,
    duration: f64,
    is_final: bool,
    speech_final: bool,
) -> serde_json::Value {
    json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": duration,
        "start": start,
        "is_final": is_final,
        "speech_final": speech_final,
        "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.98, "words": []}]},
        "metadata": {"request_id": "00000000-0000-0000-0000-000000000000", "model_info": {"name": "general"}},
        "from_finalize": false
    })
}

#[actix_rt::test]
async fn results_become_timed_interim_and_final_results() {
    let mut fake = FakeProvider::start(PATH, |_| Answer::Accept).await;
    let mut h = Harness::start(
        ProviderKind::Deepgram,
        &fake.url,
        KEY,
        StreamSpec::transcription("en-US"),
    );
    let speech = pcm(1000, 11);
    h.speak(&speech);
    let mut side = fake.next_connection().await;
    expect_handshake(&side, "en-US");
    assert_eq!(
        side.audio(32_000).await,
        joined(&speech),
        "audio first (options are in the URL), byte for byte"
    );

    side.send(results("call my", 0.12, 0.4, false, false)).await;
    let interim = h.transcript().await;
    assert_eq!(
        (
            interim.transcript.text.as_str(),
            interim.transcript.is_final,
            interim.start_ms,
            interim.end_ms
        ),
        ("call my", false, 120, 520)
    );
    assert_eq!(interim.provider, "deepgram");

    // An empty interim (silence) is not reported.
    side.send(results("", 0.52, 0.1, false, false)).await;
    side.send(results("call my mother", 0.12, 0.84, true, true))
        .await;
    let fin = h.transcript().await;
    assert_eq!(
        (
            fin.transcript.text.as_str(),
            fin.transcript.is_final,
            fin.start_ms,
            fin.end_ms
        ),
        ("call my mother", true, 120, 960)
    );
    assert_eq!(fin.transcript.confidence, Some(0.98));

    // The glasses report silence: CloseStream, Deepgram sends its metadata
    // and closes.
    h.vad(false);
    match side.next().await {
        Inbound::Text(t) => assert_eq!(
            serde_json::from_str::<serde_json::Value>(&t).expect("JSON"),
            json!({"type": "CloseStream"})
        ),
        other => panic!("expected CloseStream, got {other:?}"),
    }
    side.send(json!({"type": "Metadata", "request_id": "00000000-0000-0000-0000-000000000000", "duration": 1.0, "channels": 1}))
        .await;
    side.close(1000).await;
    let idle = h.wait_state("idle").await;
    assert_eq!(idle.attempts, 1, "{idle:?}");
    h.quiet_for(Duration::from_millis(200)).await;
    assert_eq!(fake.handshakes().len(), 1);
}

#[actix_rt::test]
async fn a_bad_key_is_refused_with_401_and_not_retried() {
    let fake = FakeProvider::start(PATH, |_| {
        Answer::Refuse(
            401,
            r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}"#.into(),
        )
    })
    .await;
    let mut h = Harness::start(
        ProviderKind::Deepgram,
        &fake.url,
        KEY,
        StreamSpec::transcription("en-US"),
    );
    h.speak(&pcm(500, 12));
    let reason = h.failure().await;
    assert!(reason.contains("401"), "{reason}");
    h.speak(&pcm(500, 13));
    h.quiet_for(Duration::from_millis(600)).await;
    let status = h.status().await;
    assert_eq!((status.state, status.attempts), ("failed", 1));
    assert_eq!(fake.handshakes().len(), 1, "no retry after a refused key");
}

#[actix_rt::test]
async fn unavailable_or_dropped_connections_are_retried_with_the_untranscribed_audio() {
    // The first handshake meets an unavailable service (HTTP 503).
    let mut fake = FakeProvider::start(PATH, |n| {
        if n == 1 {
            Answer::Refuse(503, r#"{"err_msg":"Service Unavailable"}"#.into())
        } else {
            Answer::Accept
        }
    })
    .await;
    let mut h = Harness::start(
        ProviderKind::Deepgram,
        &fake.url,
        KEY,
        StreamSpec::transcription("en-US"),
    );
    let first = pcm(800, 14);
    h.speak(&first);

    // Connection 2 gets the audio, then drops without a close frame.
    let mut side = fake.next_connection().await;
    expect_handshake(&side, "en-US");
    assert_eq!(side.audio(25_600).await, joined(&first));
    side.drop_connection();

    // Connection 3 gets the same audio again; a final covers it.
    let mut side = fake.next_connection().await;
    expect_handshake(&side, "en-US");
    assert_eq!(
        side.audio(25_600).await,
        joined(&first),
        "the untranscribed audio is sent again"
    );
    side.send(results("remind me", 0.05, 0.75, true, true))
        .await;
    let fin = h.transcript().await;
    assert_eq!(
        (fin.transcript.text.as_str(), fin.start_ms, fin.end_ms),
        ("remind me", 50, 800)
    );

    // More speech; Deepgram closes with 1011 (an internal error: transient).
    let second = pcm(400, 15);
    h.speak(&second);
    assert_eq!(side.audio(12_800).await, joined(&second));
    side.close(1011).await;

    // Connection 4 gets only what no final covered, and its times are
    // mapped back to the stream's clock.
    let mut side = fake.next_connection().await;
    assert_eq!(
        side.audio(12_800).await,
        joined(&second),
        "audio a final covered is not sent again"
    );
    side.send(results("tomorrow", 0.1, 0.25, true, true)).await;
    let fin = h.transcript().await;
    assert_eq!(
        (fin.transcript.text.as_str(), fin.start_ms, fin.end_ms),
        ("tomorrow", 900, 1150)
    );
    let status = h.status().await;
    assert_eq!((status.state, status.attempts), ("open", 4));
    assert_eq!(fake.handshakes().len(), 4);
}
