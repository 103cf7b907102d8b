//! Simulated glasses: a `/glasses-ws` client with a core token (Sightline)
//! or a `/glasses?user=` client (relays), and the stamped frames they send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Ws};
use crate::target::glasses_token;

/// What the glasses send in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// A `button_press` event (JSON text), stamped with `"bt"`.
    Event,
    /// 20 ms of 16 kHz PCM (640 bytes), stamped in its first 8 bytes.
    Pcm,
}

/// Bytes of one 20 ms PCM frame.
pub const PCM_FRAME_BYTES: usize = 640;

impl Payload {
    /// A frame stamped with the current time.
    pub fn frame(self) -> Message {
        let bt = net::now_us();
        match self {
            Payload::Event => Message::text(format!(
                r#"{{"type":"button_press","buttonId":"bench","pressType":"short","timestamp":"2025-01-01T00:00:00.000Z","bt":{bt}}}"#
            )),
            Payload::Pcm => {
                let mut b = vec![0u8; PCM_FRAME_BYTES];
                b[..8].copy_from_slice(&bt.to_le_bytes());
                Message::binary(b)
            }
        }
    }
}

/// Connects `email`'s glasses to Sightline and waits for `connection_ack`;
/// returns the socket and how long that took.
pub async fn connect_sightline(addr: SocketAddr, email: &str) -> Result<(Ws, Duration)> {
    let token = glasses_token(email)?;
    let started = Instant::now();
    let mut ws = net::ws_connect(addr, "/glasses-ws", Some(&token)).await?;
    wait_for(&mut ws, "connection_ack", Duration::from_secs(20)).await?;
    Ok((ws, started.elapsed()))
}

/// Connects glasses to a relay.
pub async fn connect_relay(addr: SocketAddr, user: &str) -> Result<Ws> {
    net::ws_connect(addr, &format!("/glasses?user={user}"), None).await
}

/// Reads until a text message of type `kind` arrives; returns it.
pub async fn wait_for(ws: &mut Ws, kind: &str, within: Duration) -> Result<String> {
    let needle = format!("\"type\":\"{kind}\"");
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains(&needle) => return Ok(t.to_string()),
            Ok(Some(Ok(Message::Close(f)))) => bail!("socket closed waiting for {kind}: {f:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("socket failed waiting for {kind}: {e}"),
            Ok(None) => bail!("socket ended waiting for {kind}"),
            Err(_) => bail!("no {kind} within {within:?}"),
        }
    }
}

/// Reads and drops everything (keeps pings answered) until the socket ends.
pub async fn drain(mut stream: SplitStream<Ws>) {
    while let Some(Ok(m)) = stream.next().await {
        if m.is_close() {
            break;
        }
    }
}

/// Reads and drops everything on a whole socket until it ends.
pub async fn drain_ws(mut ws: Ws) {
    while let Some(Ok(m)) = ws.next().await {
        if m.is_close() {
            break;
        }
    }
}
