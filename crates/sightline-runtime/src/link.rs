//! How a session talks to a connection: through a mailbox, never a socket.
//!
//! A connection actor hands its session a [`ConnectionLink`]: its id and a
//! recipient for [`Outbound`] messages. Once the connection actor stops, the
//! recipient's mailbox is closed and sends to it are dropped, so a session can
//! hold a stale link for a moment but can never write to a stale socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::{Message, Recipient};

use crate::health::Activity;
use bytes::Bytes;
use sightline_probe::ActorProbe;

/// Unique id of one WebSocket connection for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl ConnectionId {
    /// A fresh id.
    pub fn next() -> ConnectionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnectionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Something for a connection to write, or to do with its socket.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum Outbound {
    /// A JSON message, sent as a text frame.
    Text(String),
    /// A glasses event relayed to an app, with when it arrived from the
    /// glasses (for the fan-out latency).
    Event { text: String, received: Instant },
    /// Audio, sent as a binary frame.
    Binary(Bytes),
    /// Close the socket with this code and reason, then stop.
    Close { code: u16, reason: String },
    /// The app connection's `tpa_connection_init` was accepted; the ack
    /// follows as the next `Text`.
    InitAccepted,
    /// The app connection's init was refused: send `tpa_connection_error`
    /// and close 1008.
    InitRejected { code: &'static str, message: String },
    /// Another socket took over this app session; this one no longer
    /// speaks for it.
    Superseded,
    /// Ping the client, and tell the health monitor when anything last
    /// arrived from it.
    Ping { reply: Recipient<Activity> },
}

/// A session's handle on one connection.
#[derive(Debug, Clone)]
pub struct ConnectionLink {
    pub id: ConnectionId,
    pub out: Recipient<Outbound>,
    /// The connection's probe: every message sent counts into its mailbox
    /// depth, and the connection counts it out when it writes it.
    pub probe: Arc<ActorProbe>,
}

impl ConnectionLink {
    /// Queues a message for the connection. A connection that has stopped
    /// drops it: it is gone, and the session learns so from its
    /// `*Disconnected` message.
    pub fn send(&self, msg: Outbound) {
        if self.out.connected() {
            self.probe.sent();
            self.out.do_send(msg);
        }
    }

    pub fn text(&self, text: String) {
        self.send(Outbound::Text(text));
    }

    pub fn close(&self, code: u16, reason: &str) {
        self.send(Outbound::Close {
            code,
            reason: reason.to_string(),
        });
    }
}

/// WebSocket close codes Sightline uses.
pub mod close {
    /// Normal closure: "App stopped", "User session ended".
    pub const NORMAL: u16 = 1000;
    /// Going away: a connection that timed out.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation: authentication or state errors.
    pub const POLICY: u16 = 1008;
    /// Internal error; the SDK reconnects after it.
    pub const INTERNAL: u16 = 1011;
    /// This glasses connection was replaced by a newer one of the same user.
    pub const REPLACED: u16 = 4001;
}
