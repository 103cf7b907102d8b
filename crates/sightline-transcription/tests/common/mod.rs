//! Test harness of the provider contract tests: a scripted speech-provider
//! WebSocket server on a free loopback port, and a collector of what a
//! [`TranscriptionStream`] reports.
//!
//! The server ([`FakeProvider`]) records each handshake (path, query,
//! headers) and either refuses it with an HTTP status or hands the open
//! connection to the test ([`ProviderSide`]), which reads what the client
//! sent and answers with the provider's own message formats.

#![allow(dead_code)]

pub mod translation_api;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, Recipient};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use sightline_transcription::stream::{GetStreamStatus, StreamAudio, StreamStatus, StreamVad};
use sightline_transcription::{
    AsrConfig, ProviderKind, StreamEvent, StreamSpec, StreamUpdate, Transcript, TranscriptionStream,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// How the fake answers the n-th handshake (counting from 1).
#[derive(Debug, Clone)]
pub enum Answer {
    Accept,
    /// Refuse with this HTTP status and JSON body, as the service does.
    Refuse(u16, String),
}

/// What the client sent in a handshake.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
}

/// A scripted provider server.
pub struct FakeProvider {
    /// The URL to give the client (`ws://127.0.0.1:<port><path>`).
    pub url: String,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
    accepted: mpsc::UnboundedReceiver<ProviderSide>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    pub async fn start(
        path: &str,
        answer: impl Fn(usize) -> Answer + Send + Sync + 'static,
    ) -> FakeProvider {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}{path}", listener.local_addr().expect("addr"));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let (tx, accepted) = mpsc::unbounded_channel();
        let (seen, answer) = (handshakes.clone(), Arc::new(answer));
        let count = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (seen, answer, tx, count) =
                    (seen.clone(), answer.clone(), tx.clone(), count.clone());
                tokio::spawn(async move {
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut recorded = None;
                    // The callback's result type is tungstenite's own.
                    #[allow(clippy::result_large_err)]
                    let callback = |req: &Request, resp: Response| {
                        let hs = handshake_of(req);
                        recorded = Some(hs.clone());
                        seen.lock().expect("lock").push(hs);
                        match answer(n) {
                            Answer::Accept => Ok(resp),
                            Answer::Refuse(status, body) => Err(refusal(status, body)),
                        }
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                        let handshake = recorded.expect("handshake recorded");
                        let _ = tx.send(ProviderSide { handshake, ws });
                    }
                });
            }
        });
        FakeProvider {
            url,
            handshakes,
            accepted,
            task,
        }
    }

    /// Every handshake so far, accepted or refused.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().expect("lock").clone()
    }

    /// The next accepted connection.
    pub async fn next_connection(&mut self) -> ProviderSide {
        tokio::time::timeout(WAIT, self.accepted.recv())
            .await
            .expect("the client connected in time")
            .expect("fake provider alive")
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn handshake_of(req: &Request) -> Handshake {
    let query = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Handshake {
        path: req.uri().path().to_string(),
        query,
        headers,
    }
}

fn refusal(status: u16, body: String) -> ErrorResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Some(body))
        .expect("refusal response")
}

/// What the client sent on an open connection.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame or the end of the socket.
    Closed,
}

/// The provider's end of one open connection.
pub struct ProviderSide {
    pub handshake: Handshake,
    ws: WebSocketStream<TcpStream>,
}

impl ProviderSide {
    pub async fn next(&mut self) -> Inbound {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => panic!("the client sent nothing within {WAIT:?}"),
                Ok(Some(Ok(Message::Text(t)))) => return Inbound::Text(t),
                Ok(Some(Ok(Message::Binary(b)))) => return Inbound::Binary(b),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    return Inbound::Closed
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next message, which must be text holding JSON.
    pub async fn next_json(&mut self) -> Value {
        match self.next().await {
            Inbound::Text(t) => serde_json::from_str(&t).expect("the client sent JSON"),
            other => panic!("expected a JSON text message, got {other:?}"),
        }
    }

    /// Reads binary audio frames until `bytes` have arrived; fails on an
    /// empty frame or any text before that.
    pub async fn audio(&mut self, bytes: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < bytes {
            match self.next().await {
                Inbound::Binary(b) if !b.is_empty() => out.extend(b),
                other => panic!(
                    "expected audio ({} of {bytes} bytes so far), got {other:?}",
                    out.len()
                ),
            }
        }
        assert_eq!(out.len(), bytes, "audio arrives in the frames it was sent");
        out
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string()))
            .await
            .expect("send to client");
    }

    /// Ends the connection with a close frame.
    pub async fn close(mut self, code: u16) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            }))
            .await;
    }

    /// Drops the TCP connection without a close frame, as a crashed or
    /// unreachable service would.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// Collects a stream's updates.
struct Collector(mpsc::UnboundedSender<StreamUpdate>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<StreamUpdate> for Collector {
    type Result = ();
    fn handle(&mut self, msg: StreamUpdate, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

/// A transcript as the stream reported it, in stream time.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub transcript: Transcript,
    pub start_ms: u64,
    pub end_ms: u64,
    pub provider: &'static str,
}

/// A running stream and what it reports.
pub struct Harness {
    pub stream: Addr<TranscriptionStream>,
    updates: mpsc::UnboundedReceiver<StreamUpdate>,
    _collector: Addr<Collector>,
}

impl Harness {
    /// A stream of `spec` on `kind` at `url` with `key`; reconnects start
    /// after 50 ms so tests stay short.
    pub fn start(kind: ProviderKind, url: &str, key: &str, spec: StreamSpec) -> Harness {
        let mut config = AsrConfig::new(kind, Some(url.to_string()), Some(key.to_string()));
        config.initial_backoff = Duration::from_millis(50);
        config.max_backoff = Duration::from_millis(400);
        let provider = config.build_provider().expect("a provider");
        let (tx, updates) = mpsc::unbounded_channel();
        let collector = Collector(tx).start();
        let out: Recipient<StreamUpdate> = collector.clone().recipient();
        let stream = TranscriptionStream::new(spec, provider, config, false, out).start();
        Harness {
            stream,
            updates,
            _collector: collector,
        }
    }

    /// Sends `chunks` of PCM to the stream.
    pub fn speak(&self, chunks: &[Bytes]) {
        for c in chunks {
            self.stream.do_send(StreamAudio(c.clone()));
        }
    }

    pub fn vad(&self, speaking: bool) {
        self.stream.do_send(StreamVad { speaking });
    }

    pub async fn status(&self) -> StreamStatus {
        self.stream
            .send(GetStreamStatus)
            .await
            .expect("stream alive")
    }

    pub async fn next(&mut self) -> StreamEvent {
        tokio::time::timeout(WAIT, self.updates.recv())
            .await
            .expect("the stream reported something in time")
            .expect("collector alive")
            .event
    }

    /// The next update, which must be a transcript.
    pub async fn transcript(&mut self) -> Heard {
        match self.next().await {
            StreamEvent::Transcript {
                transcript,
                start_ms,
                end_ms,
                provider,
            } => Heard {
                transcript,
                start_ms,
                end_ms,
                provider,
            },
            other => panic!("expected a transcript, got {other:?}"),
        }
    }

    /// The next update, which must be the stream failing.
    pub async fn failure(&mut self) -> String {
        match self.next().await {
            StreamEvent::Failed { reason } => reason,
            other => panic!("expected the stream to fail, got {other:?}"),
        }
    }

    /// Asserts nothing is reported for `d`.
    pub async fn quiet_for(&mut self, d: Duration) {
        if let Ok(Some(u)) = tokio::time::timeout(d, self.updates.recv()).await {
            panic!("unexpected update {:?}", u.event);
        }
    }

    /// Waits until the stream's state is `state`.
    pub async fn wait_state(&self, state: &str) -> StreamStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let s = self.status().await;
            if s.state == state {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the stream never became {state}: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `ms` of distinctive PCM in 50 ms chunks: sample i of the whole is
/// `seed * 1000 + i` (wrapping), so any replayed or reordered byte shows.
pub fn pcm(ms: usize, seed: i16) -> Vec<Bytes> {
    let samples = ms * 16;
    let all: Vec<u8> = (0..samples)
        .flat_map(|i| (seed.wrapping_mul(1000).wrapping_add(i as i16)).to_le_bytes())
        .collect();
    all.chunks(1600).map(Bytes::copy_from_slice).collect()
}

/// The chunks joined.
pub fn joined(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}
