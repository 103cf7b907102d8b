//! Simulated SDK apps. Each app is a real HTTP server answering the
//! `session_request` webhook the way `@mentra/sdk`'s `AppServer` does: it
//! opens `/app-ws` at the URL the webhook names, sends
//! `tpa_connection_init`, waits for `tpa_connection_ack`, sends its
//! `subscription_update`, and only then answers 200. The app socket then
//! reads everything Sightline sends and records the latency of each stamped
//! event (see [`stamp`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::hist::Histogram;
use crate::net::{self, Ws};

/// What every app socket of a run adds up.
#[derive(Default)]
pub struct Metrics {
    /// Glasses send → app receive, microseconds.
    pub latency: Histogram,
    /// Stamped frames received.
    pub delivered: AtomicU64,
    /// Payload bytes received in stamped frames.
    pub bytes: AtomicU64,
    /// Transcripts (`transcription:*` data streams) received by caption
    /// apps.
    pub transcripts: AtomicU64,
    /// `display_event`s caption apps sent in answer.
    pub displays_sent: AtomicU64,
}

impl Metrics {
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

/// What happened to one app session, for scenarios that time steps.
#[derive(Debug, Clone, Copy)]
pub enum AppEvent {
    /// `tpa_connection_ack` received.
    Acked(Instant),
    /// `app_stopped` received, or the socket closed.
    Stopped(Instant),
}

/// Who waits for which app session (`<user>-<package>`).
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<String, mpsc::UnboundedSender<AppEvent>>>,
}

impl Waiters {
    pub fn register(&self, session_id: &str) -> mpsc::UnboundedReceiver<AppEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut m) = self.map.lock() {
            m.insert(session_id.to_string(), tx);
        }
        rx
    }

    pub fn unregister(&self, session_id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(session_id);
        }
    }

    fn notify(&self, session_id: &str, ev: AppEvent) {
        if let Ok(m) = self.map.lock() {
            if let Some(tx) = m.get(session_id) {
                let _ = tx.send(ev);
            }
        }
    }
}

/// The send time stamped into a frame by the glasses side: `"bt":<µs>` in
/// JSON, or the first 8 bytes (little-endian) of a binary frame.
pub fn stamp(text: &str) -> Option<u64> {
    let i = text.find("\"bt\":")? + 5;
    let digits = text[i..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(digits)
}

/// Connects an app socket to `path` at `addr` and waits for its init to
/// be acknowledged, as the SDK does after a `session_request`.
pub async fn connect_app(
    addr: std::net::SocketAddr,
    path: &str,
    session_id: &str,
    package: &str,
    api_key: &str,
) -> Result<Ws> {
    let mut ws = net::ws_connect(addr, path, None).await?;
    ws.send(Message::text(
        json!({
            "type": "tpa_connection_init",
            "sessionId": session_id,
            "packageName": package,
            "apiKey": api_key,
            "timestamp": "2025-01-01T00:00:00.000Z",
        })
        .to_string(),
    ))
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"tpa_connection_ack\"") => {
                return Ok(ws)
            }
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"tpa_connection_error\"") => {
                bail!("init refused: {t}")
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("app socket failed before the ack: {e}"),
            Ok(None) => bail!("app socket closed before the ack"),
            Err(_) => bail!("no tpa_connection_ack within 20 s"),
        }
    }
}

/// Reads an app socket until it ends, recording stamped frames.
pub async fn read_app_socket(
    mut ws: Ws,
    metrics: Arc<Metrics>,
    stopped: Option<(Arc<Waiters>, String)>,
) {
    // Told once per socket: `app_stopped`, or else the close.
    let mut told = false;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(t)) => {
                if let Some(bt) = stamp(&t) {
                    metrics.latency.record(net::now_us().saturating_sub(bt));
                    metrics.delivered.fetch_add(1, Ordering::Relaxed);
                    metrics.bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                } else if t.contains("\"app_stopped\"") && !told {
                    told = true;
                    if let Some((w, sid)) = &stopped {
                        w.notify(sid, AppEvent::Stopped(Instant::now()));
                    }
                }
            }
            Ok(Message::Binary(b)) if b.len() >= 8 => {
                let mut bt = [0u8; 8];
                bt.copy_from_slice(&b[..8]);
                metrics
                    .latency
                    .record(net::now_us().saturating_sub(u64::from_le_bytes(bt)));
                metrics.delivered.fetch_add(1, Ordering::Relaxed);
                metrics.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if let (false, Some((w, sid))) = (told, &stopped) {
        w.notify(sid, AppEvent::Stopped(Instant::now()));
    }
}

/// One simulated app server.
pub struct AppServer {
    pub package: String,
    /// Its public URL (the webhook is `<url>/webhook`).
    pub url: String,
    /// App sessions acknowledged so far.
    pub acked: Arc<AtomicU64>,
    /// Webhooks that could not be served.
    pub failures: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What an app does with what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Reads and records stamped frames.
    Listen,
    /// A live-captions app: shows every transcript it receives on the
    /// glasses as a `text_wall` (`display_event`).
    Captions,
}

/// Starts an app server for `package` subscribing to `subscriptions`.
pub async fn spawn_app_server(
    package: &str,
    api_key: &str,
    subscriptions: Vec<String>,
    metrics: Arc<Metrics>,
    waiters: Arc<Waiters>,
) -> Result<AppServer> {
    spawn_app_server_as(
        package,
        api_key,
        subscriptions,
        metrics,
        waiters,
        Behaviour::Listen,
    )
    .await
}

/// [`spawn_app_server`] with a behaviour.
pub async fn spawn_app_server_as(
    package: &str,
    api_key: &str,
    subscriptions: Vec<String>,
    metrics: Arc<Metrics>,
    waiters: Arc<Waiters>,
    behaviour: Behaviour,
) -> Result<AppServer> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let acked = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let app = Arc::new(AppIdentity {
        package: package.to_string(),
        api_key: api_key.to_string(),
        subscriptions,
        metrics,
        waiters,
        acked: acked.clone(),
        failures: failures.clone(),
        behaviour,
    });
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let app = app.clone();
            tokio::spawn(async move { app.serve_webhook(stream).await });
        }
    });
    Ok(AppServer {
        package: package.to_string(),
        url,
        acked,
        failures,
        task,
    })
}

struct AppIdentity {
    package: String,
    api_key: String,
    subscriptions: Vec<String>,
    metrics: Arc<Metrics>,
    waiters: Arc<Waiters>,
    acked: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    behaviour: Behaviour,
}

impl AppIdentity {
    async fn serve_webhook(&self, mut stream: TcpStream) {
        let status = match net::read_json_request(&mut stream).await {
            Ok(body) if body["type"] == "session_request" => match self.open_session(&body).await {
                Ok(()) => 200,
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
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

    async fn open_session(&self, body: &Value) -> Result<()> {
        let session_id = body["sessionId"].as_str().unwrap_or_default().to_string();
        let url = body["mentraOSWebsocketUrl"]
            .as_str()
            .or_else(|| body["augmentOSWebsocketUrl"].as_str())
            .context("session_request without a WebSocket URL")?;
        let (addr, path) = net::parse_ws_url(url)?;
        let mut ws = connect_app(addr, &path, &session_id, &self.package, &self.api_key).await?;
        self.waiters
            .notify(&session_id, AppEvent::Acked(Instant::now()));
        self.acked.fetch_add(1, Ordering::Relaxed);
        ws.send(Message::text(
            json!({
                "type": "subscription_update",
                "packageName": self.package,
                "subscriptions": self.subscriptions,
                "sessionId": session_id,
                "timestamp": "2025-01-01T00:00:00.000Z",
            })
            .to_string(),
        ))
        .await?;
        let metrics = self.metrics.clone();
        match self.behaviour {
            Behaviour::Listen => {
                let waiters = self.waiters.clone();
                tokio::spawn(read_app_socket(ws, metrics, Some((waiters, session_id))));
            }
            Behaviour::Captions => {
                tokio::spawn(show_captions(ws, metrics, self.package.clone(), session_id));
            }
        }
        Ok(())
    }
}

/// A caption app's socket: every transcript is shown as a `text_wall`.
async fn show_captions(mut ws: Ws, metrics: Arc<Metrics>, package: String, session_id: String) {
    while let Some(msg) = ws.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        if !text.contains("\"streamType\":\"transcription:") {
            continue;
        }
        metrics.transcripts.fetch_add(1, Ordering::Relaxed);
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let caption = frame["data"]["text"].as_str().unwrap_or_default();
        let display = json!({
            "type": "display_event",
            "packageName": package,
            "sessionId": session_id,
            "view": "main",
            "layout": {"layoutType": "text_wall", "text": caption},
            "durationMs": 5000,
            "timestamp": "2025-01-01T00:00:00.000Z",
        });
        if ws.send(Message::text(display.to_string())).await.is_err() {
            break;
        }
        metrics.displays_sent.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_inside_data_streams() {
        let t = r#"{"type":"data_stream","sessionId":"u-p","streamType":"button_press","data":{"type":"button_press","bt":12345},"timestamp":"T"}"#;
        assert_eq!(stamp(t), Some(12345));
        assert_eq!(stamp(r#"{"type":"app_stopped"}"#), None);
    }
}
