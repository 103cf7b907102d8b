//! Contract tests of the Soniox client: a [`TranscriptionStream`] on the
//! Soniox provider talks to a local WebSocket server that follows Soniox's
//! documented real-time API (the real service cannot be reached from
//! Sightline's test machines, so nothing here talks to it).
//!
//! The server checks what the client sends — the `Authorization: Bearer`
//! key, a first JSON message with `api_key`, `model`, `audio_format`
//! `pcm_s16le`, `sample_rate`, `num_channels`, `language_hints`, then the
//! audio as binary frames byte for byte, then an empty frame to end — and
//! answers with scripted `tokens` replies (`text`, `start_ms`, `end_ms`,
//! `is_final`, the `<end>` marker), `finished`, and `error_code` /
//! `error_message` errors. The tests assert the interim and final results
//! and their stream times, that a refused key fails the stream without a
//! retry, and that a dropped connection is retried with the audio not yet
//! transcribed sent again.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sightline_transcription::{ProviderKind, StreamSpec};

const KEY: &str = "soniox-test-key";
const PATH: &str = "/transcribe-websocket";

/// Checks the handshake and the configuration message of a connection.
async fn expect_configured(side: &mut ProviderSide, language: &str) -> serde_json::Value {
    assert_eq!(side.handshake.path, PATH);
    assert_eq!(
        side.handshake
            .headers
            .get("authorization")
            .map(String::as_str),
        Some(format!("Bearer {KEY}").as_str())
    );
    let config = side.next_json().await;
    assert_eq!(config["api_key"], KEY, "{config}");
    assert!(
        config["model"].as_str().is_some_and(|m| !m.is_empty()),
        "{config}"
    );
    assert_eq!(config["audio_format"], "pcm_s16le", "{config}");
    assert_eq!(config["sample_rate"], 16000, "{config}");
    assert_eq!(config["num_channels"], 1, "{config}");
    assert_eq!(config["language_hints"], json!([language]), "{config}");
    config
}

fn token(text: &str, start: u64, end: u64, is_final: bool) -> serde_json::Value {
    json!({"text": text, "start_ms": start, "end_ms": end, "confidence": 0.9, "is_final": is_final})
}

#[actix_rt::test]
async fn tokens_become_timed_interim_and_final_results() {
    let mut fake = FakeProvider::start(PATH, |_| Answer::Accept).await;
    let mut h = Harness::start(
        ProviderKind::Soniox,
        &fake.url,
        KEY,
        StreamSpec::transcription("en-US"),
    );
    let speech = pcm(1000, 1);
    h.speak(&speech);
    let mut side = fake.next_connection().await;
    let config = expect_configured(&mut side, "en").await;
    assert!(config.get("translation").is_none(), "{config}");
    assert_eq!(
        side.audio(32_000).await,
        joined(&speech),
        "the audio, byte for byte"
    );

    side.send(json!({"tokens": [token("Hel", 120, 300, false)], "final_audio_proc_ms": 0, "total_audio_proc_ms": 400}))
        .await;
    let interim = h.transcript().await;
    assert_eq!(
        (
            interim.transcript.text.as_str(),
            interim.transcript.is_final,
            interim.start_ms,
            interim.end_ms
        ),
        ("Hel", false, 120, 300)
    );
    assert_eq!(interim.provider, "soniox");

    side.send(json!({"tokens": [token("Hello", 120, 420, true), token(" wor", 500, 640, false)]}))
        .await;
    let interim = h.transcript().await;
    assert_eq!(
        (
            interim.transcript.text.as_str(),
            interim.transcript.is_final
        ),
        ("Hello wor", false),
        "finals so far plus the current non-final tokens"
    );

    side.send(
        json!({"tokens": [token(" world", 500, 900, true), {"text": "<end>", "is_final": true}]}),
    )
    .await;
    let fin = h.transcript().await;
    assert_eq!(
        (
            fin.transcript.text.as_str(),
            fin.transcript.is_final,
            fin.start_ms,
            fin.end_ms
        ),
        ("Hello world", true, 120, 900)
    );
    assert_eq!(fin.transcript.confidence, Some(0.9));

    // The glasses report silence: an empty frame ends the audio, Soniox
    // sends its last reply with `finished` and closes.
    h.vad(false);
    assert_eq!(side.next().await, Inbound::Binary(Vec::new()));
    side.send(json!({"tokens": [], "finished": true})).await;
    side.close(1000).await;
    let idle = h.wait_state("idle").await;
    assert_eq!(idle.attempts, 1, "{idle:?}");
    h.quiet_for(Duration::from_millis(200)).await;
    assert_eq!(fake.handshakes().len(), 1);
}

#[actix_rt::test]
async fn translation_streams_ask_for_a_translation_and_show_it() {
    let mut fake = FakeProvider::start(PATH, |_| Answer::Accept).await;
    let mut h = Harness::start(
        ProviderKind::Soniox,
        &fake.url,
        KEY,
        StreamSpec::translation("en-US", "es-ES"),
    );
    h.speak(&pcm(200, 2));
    let mut side = fake.next_connection().await;
    let config = expect_configured(&mut side, "en").await;
    assert_eq!(
        config["translation"],
        json!({"type": "one_way", "target_language": "es"})
    );
    side.audio(6_400).await;
    side.send(json!({"tokens": [
        {"text": "Hello", "start_ms": 10, "end_ms": 190, "is_final": true, "translation_status": "original"},
        {"text": "Hola", "is_final": true, "translation_status": "translation"},
        {"text": "<end>", "is_final": true}
    ]}))
    .await;
    let fin = h.transcript().await;
    assert_eq!(fin.transcript.text, "Hola");
    assert_eq!(fin.transcript.original_text.as_deref(), Some("Hello"));
    assert_eq!((fin.start_ms, fin.end_ms), (10, 190));
}

#[actix_rt::test]
async fn a_key_refused_at_the_handshake_fails_the_stream_without_retrying() {
    let fake = FakeProvider::start(PATH, |_| {
        Answer::Refuse(
            401,
            r#"{"error_code":401,"error_message":"Invalid API key."}"#.into(),
        )
    })
    .await;
    let mut h = Harness::start(
        ProviderKind::Soniox,
        &fake.url,
        KEY,
        StreamSpec::transcription("en-US"),
    );
    h.speak(&pcm(500, 3));
    let reason = h.failure().await;
    assert!(reason.contains("401"), "{reason}");
    // More speech does not bring the stream back.
    h.speak(&pcm(500, 4));
    h.quiet_for(Duration::from_millis(600)).await;
    let status = h.status().await;
    assert_eq!((status.state, status.attempts), ("failed", 1));
    assert_eq!(fake.handshakes().len(), 1, "no retry after a refused key");
}

#[actix_rt::test]
async fn an_error_reply_for_the_key_fails_the_stream_without_retrying() {
    let mut fake = FakeProvider::start(PATH, |_| Answer::Accept).await;
    let mut h = Harness::start(
        ProviderKind::Soniox,
        &fake.url,
        KEY,
        StreamSpec::transcription("en-US"),
    );
    h.speak(&pcm(300, 5));
    let mut side = fake.next_connection().await;
    expect_configured(&mut side, "en").await;
    side.send(json!({"tokens": [], "error_code": 401, "error_message": "Invalid API key."}))
        .await;
    side.close(1000).await;
    let reason = h.failure().await;
    assert!(reason.contains("Invalid API key"), "{reason}");
    h.speak(&pcm(300, 6));
    h.quiet_for(Duration::from_millis(600)).await;
    assert_eq!(h.status().await.attempts, 1);
    assert_eq!(fake.handshakes().len(), 1);
}

#[actix_rt::test]
async fn dropped_connections_and_busy_errors_are_retried_with_the_untranscribed_audio() {
    let mut fake = FakeProvider::start(PATH, |_| Answer::Accept).await;
    let mut h = Harness::start(
        ProviderKind::Soniox,
        &fake.url,
        KEY,
        StreamSpec::transcription("en-US"),
    );
    let first = pcm(1000, 7);
    h.speak(&first);

    // Connection 1 takes the first second, then the service goes away.
    let mut side = fake.next_connection().await;
    expect_configured(&mut side, "en").await;
    assert_eq!(side.audio(32_000).await, joined(&first));
    side.send(json!({"tokens": [token("remind", 100, 400, false)]}))
        .await;
    assert!(!h.transcript().await.transcript.is_final);
    side.drop_connection();

    // Connection 2: configured again, the whole second replayed; a final
    // result covers all of it.
    let mut side = fake.next_connection().await;
    expect_configured(&mut side, "en").await;
    assert_eq!(
        side.audio(32_000).await,
        joined(&first),
        "the untranscribed audio is sent again"
    );
    side.send(json!({"tokens": [token("remind me", 100, 1000, true), {"text": "<end>", "is_final": true}]}))
        .await;
    let fin = h.transcript().await;
    assert_eq!(
        (fin.transcript.text.as_str(), fin.start_ms, fin.end_ms),
        ("remind me", 100, 1000)
    );

    // More speech, then the service reports it is overloaded (transient).
    let second = pcm(600, 8);
    h.speak(&second);
    assert_eq!(side.audio(19_200).await, joined(&second));
    side.send(json!({"error_code": 503, "error_message": "Service is temporarily overloaded."}))
        .await;

    // Connection 3 gets only what no final covered: the second part. Its
    // times start at 0 again and are mapped back to stream time.
    let mut side = fake.next_connection().await;
    expect_configured(&mut side, "en").await;
    assert_eq!(
        side.audio(19_200).await,
        joined(&second),
        "audio a final covered is not sent again"
    );
    side.send(
        json!({"tokens": [token("call", 100, 500, true), {"text": "<end>", "is_final": true}]}),
    )
    .await;
    let fin = h.transcript().await;
    assert_eq!(
        (fin.transcript.text.as_str(), fin.start_ms, fin.end_ms),
        ("call", 1100, 1500),
        "provider times mapped to the stream's clock"
    );
    let status = h.status().await;
    assert_eq!((status.state, status.attempts), ("open", 3));
    assert_eq!(fake.handshakes().len(), 3);
}
