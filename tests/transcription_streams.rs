//! Transcription streams inside a session: sharing per language, stopping
//! with the last subscriber, and a provider that refuses the key.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sightline::runtime::session::TranscriptionStatus;
use sightline::runtime::supervisor::FindSession;
use sightline::store::AppType;
use sightline_transcription::{AsrConfig, ProviderKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

async fn streams_of(
    server: &TestServer,
    email: &str,
) -> Vec<(
    String,
    actix::Addr<sightline_transcription::TranscriptionStream>,
)> {
    let session = server
        .supervisor()
        .send(FindSession {
            user_id: email.into(),
        })
        .await
        .unwrap()
        .expect("session");
    session.send(TranscriptionStatus).await.unwrap()
}

/// Replaces an app's subscriptions and waits until the session has handled
/// the change (new streams start at once).
async fn subscribe(app: &mut Client, package: &str, subs: &[&str]) {
    app.send(json!({"type": "subscription_update", "packageName": package, "subscriptions": subs}))
        .await;
    settled(app).await;
}

/// Waits until the session runs no transcription stream (streams nobody
/// wants stop once a subscription change has settled).
async fn wait_no_streams(server: &TestServer, email: &str) {
    eventually_async("every stream stopped", || async {
        streams_of(server, email).await.is_empty()
    })
    .await;
}

/// An address nothing listens on: these tests never send speech.
fn idle_vosk() -> impl FnOnce(&mut sightline::ServerConfig) {
    |c| {
        c.runtime.asr = AsrConfig::new(ProviderKind::Vosk, Some("ws://127.0.0.1:9".into()), None);
        c.runtime.empty_subscription_guard = Duration::ZERO;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_shared_per_language_and_stop_with_the_last_subscriber() {
    let email = "share@example.com";
    let (server, mut fake1, mut glasses) = setup_with(idle_vosk(), email).await;
    const PKG2: &str = "com.example.second";
    let mut fake2 = FakeApp::start(PKG2, KEY, AppBehaviour::Connect).await;
    // A background app: starting it leaves the standard app running.
    server
        .register(PKG2, &fake2.url, KEY, AppType::Background)
        .await;
    let mut a = start_app(&mut glasses, &mut fake1, PKG).await;
    let mut b = start_app(&mut glasses, &mut fake2, PKG2).await;

    subscribe(&mut a, PKG, &["transcription:en-US"]).await;
    subscribe(&mut b, PKG2, &["transcription:en-US?hints=ja"]).await;
    let shared = streams_of(&server, email).await;
    assert_eq!(
        shared.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        vec!["transcription:en-US"],
        "two apps on one language share one stream"
    );

    subscribe(&mut b, PKG2, &["transcription:fr-FR"]).await;
    let two = streams_of(&server, email).await;
    assert_eq!(
        two.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        vec!["transcription:en-US", "transcription:fr-FR"]
    );

    subscribe(&mut a, PKG, &[]).await;
    subscribe(&mut b, PKG2, &[]).await;
    wait_no_streams(&server, email).await;
    for (spec, addr) in two {
        let mut stopped = false;
        for _ in 0..50 {
            if !addr.connected() {
                stopped = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(stopped, "the {spec} actor stopped");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glasses_leaving_stops_the_streams() {
    let email = "leave@example.com";
    let (server, mut fake, mut glasses) = setup_with(idle_vosk(), email).await;
    let mut a = start_app(&mut glasses, &mut fake, PKG).await;
    subscribe(&mut a, PKG, &["transcription:en-US"]).await;
    let running = streams_of(&server, email).await;
    assert_eq!(running.len(), 1);
    glasses.close(1000).await;
    wait_no_streams(&server, email).await;
    let stream = running[0].1.clone();
    eventually("the stream actor stopped", || !stream.connected()).await;
    server.stop().await;
}

/// A provider endpoint that answers every WebSocket upgrade with HTTP 401,
/// counting the attempts.
async fn refusing_provider() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "ws://{}/transcribe-websocket",
        listener.local_addr().unwrap()
    );
    let attempts = Arc::new(AtomicUsize::new(0));
    let count = attempts.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"error_code":401,"error_message":"Invalid API key."}"#;
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (url, attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_fails_the_stream_once_and_tells_the_app() {
    let (url, attempts) = refusing_provider().await;
    let email = "badkey@example.com";
    let (server, mut fake, mut glasses) = setup_with(
        move |c| {
            c.runtime.asr = AsrConfig::new(ProviderKind::Soniox, Some(url), Some("wrong".into()));
            c.runtime.asr.initial_backoff = Duration::from_millis(20);
        },
        email,
    )
    .await;
    let mut app = start_app(&mut glasses, &mut fake, PKG).await;
    subscribe(&mut app, PKG, &["transcription:en-US"]).await;
    // Two seconds of audio keep arriving while the provider refuses.
    for _ in 0..40 {
        glasses.send_raw(Message::binary(vec![1u8; 1600])).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let told = app
        .expect("the app is told", |v| {
            v["type"] == "tpa_connection_error" && v["code"] == "TRANSCRIPTION_FAILED"
        })
        .await;
    assert!(told["message"].as_str().unwrap().contains("401"), "{told}");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "no retry after a refused key"
    );
    server.stop().await;
}
