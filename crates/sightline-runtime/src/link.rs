//! How a session talks to a connection: through a mailbox, never a socket.
//!
//! A connection actor hands its session a [`ConnectionLink`]: its id and a
//! recipient for [`Outbound`] messages. Once the connection actor stops, the
//! recipient's mailbox is closed and sends to it are dropped, so a session can
//! hold a stale link for a moment but can never write to a stale socket.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::{Message, Recipient};

use bytes::Bytes;
use prometheus::IntCounter;
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

/// A connection's answer to a ping request ([`Outbound::Ping`]): when it
/// last heard from its client. Sent to the session's health monitor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Activity {
    pub id: ConnectionId,
    pub last_seen: Instant,
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

impl Outbound {
    /// Bytes this puts on the wire (payload and frame header).
    fn wire_len(&self) -> u64 {
        let payload = match self {
            Outbound::Text(t) | Outbound::Event { text: t, .. } => t.len(),
            Outbound::Binary(b) => b.len(),
            Outbound::Close { reason, .. } => reason.len() + 2,
            _ => return 0,
        };
        let header = match payload {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        };
        (payload + header) as u64
    }
}

/// What one connection owes its client: bytes queued for it (in its
/// mailbox or its socket's buffer) that the client has not taken yet, and
/// what to do past the bound.
///
/// The connection's actor runs only while its socket accepts bytes, so a
/// client that stops reading leaves everything sent to it waiting in the
/// actor's mailbox. The bound is therefore enforced by senders, in
/// [`ConnectionLink::send`]: past a quarter of it audio is dropped; past it
/// a text message is not queued, the connection is told to close 1013, and
/// the sender learns the connection is [`Delivery::Overflow`].
#[derive(Debug)]
pub struct SendBacklog {
    queued: AtomicU64,
    taken: AtomicU64,
    overflowed: AtomicBool,
    bound: u64,
    audio_dropped: IntCounter,
    slow_closes: IntCounter,
}

impl SendBacklog {
    /// A backlog bounded at `bound` bytes, counting into these metrics.
    pub fn new(bound: usize, audio_dropped: IntCounter, slow_closes: IntCounter) -> Self {
        SendBacklog {
            queued: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            overflowed: AtomicBool::new(false),
            bound: bound as u64,
            audio_dropped,
            slow_closes,
        }
    }

    /// The socket took `n` bytes.
    pub fn taken(&self, n: usize) {
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The connection itself wrote `n` bytes (a pong, ping or close frame
    /// of its own): the socket takes them like anything sent to it, so they
    /// count as queued too, or they would enlarge the client's allowance.
    pub fn queued_by_connection(&self, n: usize) {
        self.queued.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes queued and not yet taken.
    pub fn pending(&self) -> u64 {
        let taken = self.taken.load(Ordering::Relaxed);
        self.queued.load(Ordering::Relaxed).saturating_sub(taken)
    }

    /// Whether the connection went past its bound (and is closing).
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

/// What became of a message given to [`ConnectionLink::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// Audio not queued for a client that is falling behind.
    AudioDropped,
    /// The client stopped taking what it is sent: nothing more is queued
    /// and the connection is closing 1013. The sender treats it as gone.
    Overflow,
    /// The connection has stopped.
    Gone,
}

/// A session's handle on one connection.
#[derive(Debug, Clone)]
pub struct ConnectionLink {
    pub id: ConnectionId,
    pub out: Recipient<Outbound>,
    /// The connection's probe: every message sent counts into its mailbox
    /// depth, and the connection counts it out when it writes it.
    pub probe: Arc<ActorProbe>,
    /// Bytes queued for the client and not taken yet.
    pub backlog: Arc<SendBacklog>,
}

impl ConnectionLink {
    /// Queues a message for the connection, within its send backlog. A
    /// connection that has stopped drops it: it is gone, and the session
    /// learns so from its `*Disconnected` message.
    pub fn send(&self, msg: Outbound) -> Delivery {
        self.queue(msg).unwrap_or(Delivery::Overflow)
    }

    /// [`ConnectionLink::send`], giving the message back on overflow.
    fn queue(&self, msg: Outbound) -> Result<Delivery, Outbound> {
        if !self.out.connected() {
            return Ok(Delivery::Gone);
        }
        let backlog = &self.backlog;
        if backlog.overflowed() {
            return Err(msg);
        }
        let size = msg.wire_len();
        let pending = backlog.pending();
        match &msg {
            Outbound::Binary(_) if pending + size > backlog.bound / 4 => {
                backlog.audio_dropped.inc();
                return Ok(Delivery::AudioDropped);
            }
            Outbound::Text(_) | Outbound::Event { .. } if pending + size > backlog.bound => {
                self.overflow(pending);
                return Err(msg);
            }
            _ => {}
        }
        backlog.queued.fetch_add(size, Ordering::Relaxed);
        self.probe.sent();
        self.out.do_send(msg);
        Ok(Delivery::Queued)
    }

    /// Queues a relayed glasses event; gives the text back, with why, when
    /// the connection is past its bound ([`Delivery::Overflow`]) or has
    /// stopped ([`Delivery::Gone`]), for the sender to keep.
    pub fn send_event(&self, text: String, received: Instant) -> Result<(), (String, Delivery)> {
        if !self.out.connected() {
            return Err((text, Delivery::Gone));
        }
        match self.queue(Outbound::Event { text, received }) {
            Err(Outbound::Event { text, .. }) => Err((text, Delivery::Overflow)),
            _ => Ok(()),
        }
    }

    /// Marks the connection past its bound and queues its close: the
    /// client, if it ever reads again, gets what was queued and then 1013.
    fn overflow(&self, pending: u64) {
        let backlog = &self.backlog;
        backlog.overflowed.store(true, Ordering::Relaxed);
        backlog.slow_closes.inc();
        tracing::warn!(connection = %self.id, backlog_bytes = pending, "client is not taking what it is sent; closing it");
        self.probe.sent();
        self.out.do_send(Outbound::Close {
            code: close::SLOW_CONSUMER,
            reason: "Client is not reading fast enough; reconnect".into(),
        });
    }

    pub fn text(&self, text: String) -> Delivery {
        self.send(Outbound::Text(text))
    }

    pub fn close(&self, code: u16, reason: &str) {
        self.send(Outbound::Close {
            code,
            reason: reason.to_string(),
        });
    }

    /// Whether the connection's client stopped reading and it is closing.
    pub fn overflowed(&self) -> bool {
        self.backlog.overflowed()
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
    /// Service restart: this instance is being drained; reconnect (to
    /// another instance of the cluster).
    pub const RESTARTING: u16 = 1012;
    /// Message too big: a message over the endpoint's size limit.
    pub const TOO_BIG: u16 = 1009;
    /// Try again later: the client stopped reading what it is sent (the SDK
    /// reconnects, and gets the events kept meanwhile).
    pub const SLOW_CONSUMER: u16 = 1013;
    /// This glasses connection was replaced by a newer one of the same user.
    pub const REPLACED: u16 = 4001;
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Actor, ActorContext, Context, Handler};
    use sightline_probe::{ActorKind, ActorRegistry};

    /// A connection actor that stops as soon as it is told anything.
    struct Stopping;

    impl Actor for Stopping {
        type Context = Context<Self>;
    }

    impl Handler<Outbound> for Stopping {
        type Result = ();
        fn handle(&mut self, _: Outbound, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    fn counter(name: &str) -> IntCounter {
        IntCounter::new(name, "test").unwrap()
    }

    /// An event for a connection that has just stopped comes back to the
    /// sender, named gone, so that it can be kept for the app's reconnect.
    #[actix_rt::test]
    async fn an_event_for_a_stopped_connection_is_given_back() {
        let registry = ActorRegistry::new();
        let guard = registry.register(ActorKind::AppConnection, None, "bound");
        let addr = Stopping.start();
        let link = ConnectionLink {
            id: ConnectionId::next(),
            out: addr.clone().recipient(),
            probe: guard.probe(),
            backlog: Arc::new(SendBacklog::new(1 << 20, counter("a"), counter("b"))),
        };
        assert_eq!(link.send_event("first".into(), Instant::now()), Ok(()));
        while addr.connected() {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            link.send_event("second".into(), Instant::now()),
            Err(("second".to_string(), Delivery::Gone))
        );
    }

    #[test]
    fn frames_the_connection_writes_itself_count_as_queued() {
        let backlog = SendBacklog::new(100, counter("c1"), counter("c2"));
        // A pong the socket took: without counting it as queued, it would
        // cancel out 20 bytes of what the sessions queue later.
        backlog.queued_by_connection(20);
        backlog.taken(20);
        backlog.queued.fetch_add(50, Ordering::Relaxed);
        assert_eq!(backlog.pending(), 50);
    }
}
