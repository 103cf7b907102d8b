//! What both WebSocket connections share: reassembly of fragmented
//! messages, the heartbeat, and writing [`Outbound`] commands to the socket.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Recipient};
use actix_http::ws::Item;
use actix_web_actors::ws::{self, CloseCode, CloseReason, WebsocketContext};
use bytes::{Bytes, BytesMut};
use sightline_runtime::health::Activity;
use sightline_runtime::{ConnectionId, Outbound};

/// A complete message after reassembly.
pub enum Frame {
    Text(String),
    Binary(Bytes),
}

/// Reassembles continuation frames into whole messages, refusing any that
/// grows past the frame limit.
pub struct Reassembler {
    buf: Option<(bool, BytesMut)>,
    max: usize,
}

impl Reassembler {
    pub fn new(max: usize) -> Self {
        Reassembler { buf: None, max }
    }

    /// Feeds one continuation item. `Ok(Some(frame))` when a message is
    /// complete, `Err` with a reason when the sender broke the rules.
    pub fn push(&mut self, item: Item) -> Result<Option<Frame>, &'static str> {
        match item {
            Item::FirstText(_) | Item::FirstBinary(_) if self.buf.is_some() => {
                Err("a new fragmented message started before the previous one ended")
            }
            Item::FirstText(b) => self.start(true, b),
            Item::FirstBinary(b) => self.start(false, b),
            Item::Continue(b) => self.append(b).map(|_| None),
            Item::Last(b) => {
                self.append(b)?;
                let Some((text, data)) = self.buf.take() else {
                    return Err("continuation without a first fragment");
                };
                if text {
                    String::from_utf8(data.to_vec())
                        .map(|s| Some(Frame::Text(s)))
                        .map_err(|_| "fragmented text message is not valid UTF-8")
                } else {
                    Ok(Some(Frame::Binary(data.freeze())))
                }
            }
        }
    }

    fn start(&mut self, text: bool, b: Bytes) -> Result<Option<Frame>, &'static str> {
        self.buf = Some((text, BytesMut::new()));
        self.append(b).map(|_| None)
    }

    fn append(&mut self, b: Bytes) -> Result<(), &'static str> {
        let Some((_, buf)) = self.buf.as_mut() else {
            return Err("continuation without a first fragment");
        };
        if buf.len() + b.len() > self.max {
            self.buf = None;
            return Err("fragmented message exceeds the maximum message size");
        }
        buf.extend_from_slice(&b);
        Ok(())
    }
}

/// A connection that keeps a last-seen time for the heartbeat.
pub trait Heartbeat: Actor<Context = WebsocketContext<Self>> {
    fn connection_id(&self) -> ConnectionId;
    fn last_seen(&self) -> Instant;
    fn describe(&self) -> String;
    /// Whether the session this connection serves is still alive. A
    /// connection whose session died is closed 1011 so that its client
    /// reconnects into a fresh session instead of lingering as a ghost.
    fn session_alive(&self) -> bool;
}

/// The connection's own checks, every `interval`. Pings and silence are
/// the session's health monitor's business; here a connection only makes
/// sure it is not left behind:
/// - its session died: close 1011 so the client reconnects into a fresh one;
/// - nothing arrived for twice `timeout` (a socket no monitor watches any
///   more, such as a superseded app socket): close 1001.
pub fn start_self_checks<A: Heartbeat>(
    ctx: &mut WebsocketContext<A>,
    interval: Duration,
    timeout: Duration,
) {
    ctx.run_interval(interval, move |act, ctx| {
        if !act.session_alive() {
            tracing::warn!(connection = %act.describe(), "session is gone; closing so the client reconnects");
            close_with(ctx, 1011, "Session restarting, please reconnect");
            return;
        }
        if Instant::now().duration_since(act.last_seen()) > timeout.saturating_mul(2) {
            tracing::info!(connection = %act.describe(), "unwatched connection silent too long; closing");
            close_with(ctx, 1001, "Connection timeout detected");
        }
    });
}

/// Answers the health monitor's ping request: a protocol ping to the
/// client, and when the client was last heard from.
pub fn answer_ping<A: Heartbeat>(
    act: &A,
    reply: &Recipient<Activity>,
    ctx: &mut WebsocketContext<A>,
) {
    ctx.ping(b"");
    reply.do_send(Activity {
        id: act.connection_id(),
        last_seen: act.last_seen(),
    });
}

/// Writes an outbound command to the socket, handing the text over without
/// a copy. Returns the commands the caller must handle itself (init
/// results, superseding, pings).
pub fn write<A>(msg: Outbound, ctx: &mut WebsocketContext<A>) -> Option<Outbound>
where
    A: Actor<Context = WebsocketContext<A>>,
{
    match msg {
        Outbound::Text(t) => ctx.text(t),
        Outbound::Binary(b) => ctx.binary(b),
        Outbound::Close { code, reason } => close_with(ctx, code, &reason),
        other => return Some(other),
    }
    None
}

/// Sends a close frame with `code` and `reason`, then stops the actor.
pub fn close_with<A>(ctx: &mut WebsocketContext<A>, code: u16, reason: &str)
where
    A: Actor<Context = WebsocketContext<A>>,
{
    ctx.close(Some(CloseReason {
        code: CloseCode::from(code),
        description: Some(reason.to_string()),
    }));
    ctx.stop();
}

/// The code of a close frame the peer sent (1005 when it had none).
pub fn peer_close_code(reason: &Option<CloseReason>) -> u16 {
    reason.as_ref().map(|r| u16::from(r.code)).unwrap_or(1005)
}

/// Handshake builder with Sightline's frame limit.
pub fn handshake<A>(
    actor: A,
    req: &actix_web::HttpRequest,
    stream: actix_web::web::Payload,
    max_frame: usize,
) -> Result<actix_web::HttpResponse, actix_web::Error>
where
    A: Actor<Context = WebsocketContext<A>>
        + actix::StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    ws::WsResponseBuilder::new(actor, req, stream)
        .frame_size(max_frame)
        .start()
}
