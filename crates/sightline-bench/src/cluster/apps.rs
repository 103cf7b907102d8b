//! The cluster scenario's app servers. Each answers `session_request` as
//! `@mentra/sdk`'s `AppServer` does: it opens `/app-ws` at the URL the
//! webhook names, sends `tpa_connection_init`, waits for the ack and
//! subscribes. When a session it already holds is requested again (the
//! user's session moved to another Sightline instance, or was restored on
//! one after its instance died) it "switches clouds": `ownership_release`
//! on the old socket, which it closes, then the new socket (without the
//! SDK's 100 ms pause between the two, so a move is timed by Sightline
//! alone).
//!
//! Every attach is recorded per app session (which instance, when), so a
//! worker can time a hand-over or a recovery up to the app's new socket
//! being accepted; app sockets also send app-to-app direct messages and
//! time the ones they receive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Ws};

/// Microseconds since the Unix epoch: the clock every process of a run
/// shares, so a worker times from the instant the scenario killed an
/// instance.
pub fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Where and when an app session's socket was last accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attach {
    pub addr: SocketAddr,
    pub epoch_us: u64,
}

/// What an app socket is told to do.
enum Out {
    Text(String),
    /// Switching clouds: `ownership_release`, then close.
    Release,
}

struct Slot {
    attach: watch::Sender<Option<Attach>>,
    out: Option<mpsc::UnboundedSender<Out>>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            attach: watch::Sender::new(None),
            out: None,
        }
    }
}

/// Latencies of app-to-app messages received, by kind, in microseconds.
#[derive(Default)]
pub struct Received {
    pub local: Mutex<Vec<u64>>,
    pub cross: Mutex<Vec<u64>>,
    /// `app_direct_message_response` with `success: false`.
    pub refused: AtomicU64,
}

impl Received {
    fn read(&self, text: &str) {
        if text.contains("\"app_message_received\"") {
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                return;
            };
            let Some(bt) = v["payload"]["bt"].as_u64() else {
                return;
            };
            let us = net::now_us().saturating_sub(bt);
            let into = if v["payload"]["k"] == "cross" {
                &self.cross
            } else {
                &self.local
            };
            if let Ok(mut l) = into.lock() {
                l.push(us);
            }
        } else if text.contains("\"app_direct_message_response\"")
            && text.contains("\"success\":false")
        {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes the latencies of `kind` ("local" or "cross") received so far.
    pub fn take(&self, kind: &str) -> Vec<u64> {
        let from = if kind == "cross" {
            &self.cross
        } else {
            &self.local
        };
        from.lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// The app sessions of one worker, by session id (`<user>-<package>`).
#[derive(Default)]
pub struct Sessions {
    slots: Mutex<HashMap<String, Slot>>,
    /// Sockets accepted (acks), every attach counted.
    pub acked: AtomicU64,
    /// Webhooks that could not be served.
    pub failures: AtomicU64,
    pub received: Received,
}

impl Sessions {
    fn watch(&self, sid: &str) -> Option<watch::Receiver<Option<Attach>>> {
        let mut slots = self.slots.lock().ok()?;
        Some(
            slots
                .entry(sid.to_string())
                .or_insert_with(Slot::new)
                .attach
                .subscribe(),
        )
    }

    /// Waits until `sid`'s socket is accepted at `addr` at or after
    /// `after_us`; returns when it was.
    pub async fn wait_attached(
        &self,
        sid: &str,
        addr: SocketAddr,
        after_us: u64,
        within: Duration,
    ) -> Result<u64> {
        let mut rx = self.watch(sid).context("app session table poisoned")?;
        let seen = tokio::time::timeout(
            within,
            rx.wait_for(|a| a.is_some_and(|a| a.addr == addr && a.epoch_us >= after_us)),
        )
        .await
        .with_context(|| format!("{sid} not re-attached at {addr} within {within:?}"))?
        .context("app session table dropped")?;
        Ok(seen.map_or(after_us, |a| a.epoch_us))
    }

    /// Sends `text` on `sid`'s current socket; false when it has none.
    pub fn send(&self, sid: &str, text: String) -> bool {
        let Ok(slots) = self.slots.lock() else {
            return false;
        };
        slots
            .get(sid)
            .and_then(|s| s.out.as_ref())
            .is_some_and(|tx| tx.send(Out::Text(text)).is_ok())
    }

    /// The old socket of `sid`, released and closed (switching clouds).
    fn release(&self, sid: &str) {
        if let Ok(mut slots) = self.slots.lock() {
            if let Some(tx) = slots.get_mut(sid).and_then(|s| s.out.take()) {
                let _ = tx.send(Out::Release);
            }
        }
    }

    fn attached(&self, sid: &str, attach: Attach, out: mpsc::UnboundedSender<Out>) {
        if let Ok(mut slots) = self.slots.lock() {
            let slot = slots.entry(sid.to_string()).or_insert_with(Slot::new);
            slot.attach.send_replace(Some(attach));
            // A socket this one replaces closes when its sender drops.
            slot.out = Some(out);
        }
        self.acked.fetch_add(1, Ordering::Relaxed);
    }
}

/// One app server; stops serving when dropped.
pub struct FollowingApp {
    pub package: String,
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for FollowingApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Identity {
    package: String,
    api_key: String,
    sessions: Arc<Sessions>,
}

/// Starts an app server for `package`.
pub async fn spawn(package: &str, api_key: &str, sessions: Arc<Sessions>) -> Result<FollowingApp> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = Arc::new(Identity {
        package: package.to_string(),
        api_key: api_key.to_string(),
        sessions,
    });
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let app = app.clone();
            tokio::spawn(async move { app.serve_webhook(stream).await });
        }
    });
    Ok(FollowingApp {
        package: package.to_string(),
        url,
        task,
    })
}

impl Identity {
    async fn serve_webhook(&self, mut stream: TcpStream) {
        let status = match net::read_json_request(&mut stream).await {
            Ok(body) if body["type"] == "session_request" => match self.open(&body).await {
                Ok(()) => 200,
                Err(e) => {
                    self.sessions.failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("app {}: session failed: {e:#}", self.package);
                    500
                }
            },
            Ok(_) => 200,
            Err(_) => 400,
        };
        let reply = format!(
            "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{{\"status\":\"success\"}}"
        );
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    async fn open(&self, body: &Value) -> Result<()> {
        let sid = body["sessionId"]
            .as_str()
            .context("session_request without a sessionId")?
            .to_string();
        let url = body["mentraOSWebsocketUrl"]
            .as_str()
            .or_else(|| body["augmentOSWebsocketUrl"].as_str())
            .context("session_request without a WebSocket URL")?;
        let (addr, path) = net::parse_ws_url(url)?;
        // Switching clouds, as the SDK does: the old socket goes first.
        self.sessions.release(&sid);
        let mut ws =
            crate::apps::connect_app(addr, &path, &sid, &self.package, &self.api_key).await?;
        let attach = Attach {
            addr,
            epoch_us: epoch_us(),
        };
        ws.send(Message::text(
            json!({
                "type": "subscription_update",
                "packageName": self.package,
                "subscriptions": ["button_press"],
                "sessionId": sid,
                "timestamp": "2025-01-01T00:00:00.000Z",
            })
            .to_string(),
        ))
        .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.sessions.attached(&sid, attach, tx);
        let sessions = self.sessions.clone();
        let release = json!({
            "type": "ownership_release",
            "packageName": self.package,
            "sessionId": sid,
            "reason": "switching_clouds",
            "timestamp": "2025-01-01T00:00:00.000Z",
        })
        .to_string();
        tokio::spawn(run_socket(ws, rx, release, sessions));
        Ok(())
    }
}

/// Reads an app socket (recording the messages it receives) and writes
/// what it is told to, until either side ends it.
async fn run_socket(
    ws: Ws,
    mut rx: mpsc::UnboundedReceiver<Out>,
    release: String,
    sessions: Arc<Sessions>,
) {
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if sink.send(Message::text(t)).await.is_err() {
                        break;
                    }
                }
                Some(Out::Release) => {
                    let _ = sink.send(Message::text(release)).await;
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
                None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => sessions.received.read(&t),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
