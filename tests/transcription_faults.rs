//! The speech provider dies in the middle of an utterance and comes back:
//! the user's session, its app connection and its transcription stream all
//! carry on, the stream reconnects with backoff (a bounded number of
//! attempts, not one per audio frame), the audio spoken while the provider
//! was gone is replayed to the new connection, and the app's
//! `onTranscription` gets final transcripts both of the utterance that was
//! cut off and of the speech that follows.
//!
//! Real parts throughout: the local recogniser (tools/whisper-vosk, killed
//! with SIGKILL and started again on the same port), espeak-ng speech
//! streamed at real-time pace over /glasses-ws, and an unmodified
//! @mentra/sdk@2.1.29 app.

mod common;

use std::time::{Duration, Instant};

use common::speech::{Recogniser, Speech};
use common::*;
use serde_json::{json, Value};
use sightline::runtime::session::TranscriptionStatus;
use sightline::runtime::supervisor::FindSession;
use sightline::store::AppType;
use sightline_transcription::stream::{GetStreamStatus, StreamStatus};
use sightline_transcription::{AsrConfig, ProviderKind, TranscriptionStream};
use tokio_tungstenite::tungstenite::Message;

/// Spoken after the provider is back.
const SECOND: &str = "turn on the kitchen lights at seven";

fn text_of(v: &Value) -> String {
    v["data"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
}

fn is_final_with(v: &Value, words: &[&str]) -> bool {
    v["event"] == "transcription"
        && v["data"]["isFinal"] == true
        && words.iter().all(|w| text_of(v).contains(w))
}

/// The most reconnect attempts the stream's backoff allows within
/// `window` after a failure: delays start at `initial`, double up to `max`,
/// and are jittered by at most ±50%, so the k-th delay is at least half its
/// nominal value.
fn most_attempts_within(window: Duration, initial: Duration, max: Duration) -> u64 {
    let (mut elapsed, mut nominal, mut n) = (Duration::ZERO, initial, 0);
    loop {
        elapsed += nominal / 2;
        if elapsed > window {
            return n;
        }
        n += 1;
        nominal = (nominal * 2).min(max);
    }
}

async fn status(stream: &actix::Addr<TranscriptionStream>) -> StreamStatus {
    stream.send(GetStreamStatus).await.expect("stream alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_dying_mid_utterance_does_not_restart_the_session() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let first = Speech::make(dir_a.path());
    let second = Speech::say(dir_b.path(), SECOND);
    let recogniser = Recogniser::start().await;
    let port = recogniser.port;
    let asr = AsrConfig::new(ProviderKind::Vosk, Some(recogniser.url()), None);
    let (initial_backoff, max_backoff, cooldown) =
        (asr.initial_backoff, asr.max_backoff, asr.breaker_cooldown);
    let server = TestServer::start_with(
        move |c| c.runtime.asr = asr,
        std::sync::Arc::new(sightline::store::MemoryStore::new()),
    );
    let package = "com.sightline.captions.faults";
    let mut app = SdkApp::conformance(package, "early").await;
    server
        .register(package, &app.url, SDK_KEY, AppType::Standard)
        .await;
    let email = "outage@example.com";
    let mut glasses = Client::glasses(&server, email).await;
    glasses
        .send(json!({"type": "start_app", "packageName": package}))
        .await;
    app.wait_event("session").await;
    glasses
        .expect("microphone on", |v| {
            v["type"] == "microphone_state_change" && v["isMicrophoneEnabled"] == true
        })
        .await;

    let find = || async {
        server
            .supervisor()
            .send(FindSession {
                user_id: email.into(),
            })
            .await
            .expect("supervisor alive")
            .expect("the user's session")
    };
    let session = find().await;
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams = session.send(TranscriptionStatus).await.expect("session");
        if !streams.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(streams.len(), 1, "one transcription stream: {streams:?}");
    let stream = streams[0].1.clone();

    // The first sentence, at real-time pace; the recogniser is killed 40%
    // of the way through it and the rest is spoken while it is gone.
    glasses
        .send(json!({"type": "VAD", "status": true, "timestamp": 0}))
        .await;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let a = first.pcm_messages();
    let cut = a.len() * 2 / 5;
    for m in &a[..cut] {
        tick.tick().await;
        glasses.send_raw(Message::binary(m.clone())).await;
    }
    let before = status(&stream).await;
    assert_eq!(before.state, "open", "{before:?}");
    recogniser.stop().await;
    let killed = Instant::now();
    for m in &a[cut..] {
        tick.tick().await;
        glasses.send_raw(Message::binary(m.clone())).await;
    }
    let recogniser = Recogniser::start_on(port).await;
    let back = Instant::now();
    let outage = back - killed;

    // The second sentence, once the recogniser is back; note when the
    // stream's new connection opens.
    let mut resumed: Option<Instant> = None;
    let b = second.pcm_messages();
    for m in &b {
        tick.tick().await;
        glasses.send_raw(Message::binary(m.clone())).await;
        if resumed.is_none() {
            let s = status(&stream).await;
            if s.state == "open" && s.attempts > before.attempts {
                resumed = Some(Instant::now());
            }
        }
    }
    glasses
        .send(json!({"type": "VAD", "status": false, "timestamp": 0}))
        .await;

    let first_words = ["remind", "call", "mother"];
    let second_words = ["turn", "kitchen"];
    let cut_off = app
        .wait_for("transcription", cooldown + Duration::from_secs(20), |v| {
            is_final_with(v, &first_words)
        })
        .await;
    let transcribed_again = Instant::now();
    let after = if app.seen.iter().any(|v| is_final_with(v, &second_words)) {
        app.seen
            .iter()
            .find(|v| is_final_with(v, &second_words))
            .cloned()
            .unwrap()
    } else {
        app.wait_for("transcription", Duration::from_secs(20), |v| {
            is_final_with(v, &second_words)
        })
        .await
    };
    let resumed = resumed.unwrap_or(transcribed_again);
    let end = status(&stream).await;
    let reconnects = end.attempts - before.attempts;
    println!(
        "outage {} ms; {reconnects} reconnect attempts; stream open again {} ms after the \
         recogniser was back; cut-off sentence {:?} final {} ms after it was back; then {:?}",
        outage.as_millis(),
        resumed.saturating_duration_since(back).as_millis(),
        cut_off["data"]["text"],
        transcribed_again
            .saturating_duration_since(back)
            .as_millis(),
        after["data"]["text"],
    );

    // The same session, app connection and stream throughout.
    assert_eq!(find().await, session, "the session was not replaced");
    let streams_now = session.send(TranscriptionStatus).await.expect("session");
    assert_eq!(streams_now.len(), 1);
    assert_eq!(streams_now[0].1, stream, "the stream actor carried on");
    app.count_within("", Duration::from_millis(300)).await;
    let count = |name: &str| app.seen.iter().filter(|v| v["event"] == name).count();
    assert_eq!(count("init_sent"), 1, "the app never re-initialised");
    assert_eq!(count("session"), 1, "no second session for the app");
    assert_eq!(count("disconnected"), 0, "the app stayed connected");
    assert_eq!(count("stop"), 0, "the app was not stopped");
    let to_glasses = glasses.drain(Duration::from_millis(300)).await;
    assert!(
        !to_glasses.iter().any(|v| v["type"] == "connection_ack"),
        "the glasses kept their connection: {to_glasses:?}"
    );

    // Reconnects are paced by the backoff, not by the audio (one frame
    // every 50 ms would make ~20 attempts a second).
    assert!(
        reconnects >= 2,
        "at least one failed attempt and the one that worked: {end:?}"
    );
    let window = resumed.saturating_duration_since(killed);
    let bound = most_attempts_within(window, initial_backoff, max_backoff);
    assert!(
        reconnects <= bound,
        "{reconnects} reconnect attempts in {} ms; the backoff allows at most {bound}",
        window.as_millis()
    );
    // Back within the longest wait the backoff or the provider's circuit
    // breaker can impose.
    assert!(
        resumed.saturating_duration_since(back)
            <= cooldown.max(max_backoff) + Duration::from_secs(2),
        "the stream took {:?} to reconnect after the recogniser was back",
        resumed.saturating_duration_since(back)
    );

    // Times are stream time: the replayed sentence keeps its place at the
    // start, the second one follows it.
    let a_ms = (a.len() * 50) as u64;
    let (a_start, a_end) = (
        cut_off["data"]["startTime"].as_u64().unwrap(),
        cut_off["data"]["endTime"].as_u64().unwrap(),
    );
    assert!(
        a_start < a_end && a_end <= a_ms + 500,
        "first sentence at {a_start}..{a_end} ms of {a_ms}"
    );
    let b_start = after["data"]["startTime"].as_u64().unwrap();
    assert!(
        b_start + 500 >= a_ms,
        "the second sentence starts after the first: {b_start} ms, first ended at {a_ms} ms"
    );
    for v in app.seen.iter().filter(|v| {
        v["event"] == "transcription"
            && v["data"]["isFinal"] == false
            && text_of(v).contains("kitchen")
    }) {
        assert!(
            v["data"]["startTime"].as_u64().unwrap() >= a_end,
            "an interim result of the second sentence starts after the first one's final: {v}"
        );
    }
    assert!(
        !text_of(&after).contains("mother"),
        "the replayed audio is not transcribed twice into the second result: {after}"
    );

    app.stop().await;
    recogniser.stop().await;
    server.stop().await;
}
