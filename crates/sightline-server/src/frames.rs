//! What both WebSocket connections share: the handshake (with its
//! [`FrameGuard`]), reassembly of fragmented messages, the heartbeat,
//! writing [`Outbound`] commands to the socket, and pausing reads while the
//! session has too much of the connection's input to handle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut, Actor, ActorContext, AsyncContext, Recipient};
use actix_http::ws::Item;
use actix_web_actors::ws::{self, CloseCode, CloseReason, WebsocketContext};
use bytes::{Bytes, BytesMut};
use prometheus::Histogram;
use sightline_protocol::outbound;
use sightline_runtime::inbound::InboundBudget;
use sightline_runtime::link::Activity;
use sightline_runtime::metrics::{LabelledCounters, Metrics};
use sightline_runtime::{ConnectionId, Outbound};

use crate::frame_guard::FrameGuard;
use crate::frame_header::{MessageRules, FRAMING_MARK, TOO_BIG_MARK};
use crate::limits::{CountedBody, Gate, SendBacklog, Verdict, CLOSE_TOO_BIG};

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
    /// Bytes queued for the client and not taken yet.
    fn send_backlog(&self) -> &SendBacklog;
}

/// The connection's own checks, when [`crate::self_checks::SelfChecks`]
/// asks (every heartbeat interval). Pings and silence are the session's
/// health monitor's business; here a connection only makes sure it is not
/// left behind:
/// - its session died: close 1011 so the client reconnects into a fresh one;
/// - nothing arrived for twice `timeout` (a socket no monitor watches any
///   more, such as a superseded app socket): close 1001.
pub fn self_check<A: Heartbeat>(act: &A, ctx: &mut WebsocketContext<A>, timeout: Duration) {
    if !act.session_alive() {
        tracing::warn!(connection = %act.describe(), "session is gone; closing so the client reconnects");
        close_with(ctx, 1011, "Session restarting, please reconnect");
        return;
    }
    if Instant::now().duration_since(act.last_seen()) > timeout.saturating_mul(2) {
        tracing::info!(connection = %act.describe(), "unwatched connection silent too long; closing");
        close_with(ctx, 1001, "Connection timeout detected");
    }
}

/// Answers the health monitor's ping request: a protocol ping to the
/// client, and when the client was last heard from.
pub fn answer_ping<A: Heartbeat>(
    act: &A,
    reply: &Recipient<Activity>,
    ctx: &mut WebsocketContext<A>,
) {
    ctx.ping(b"");
    act.send_backlog().queued_by_connection(2);
    reply.do_send(Activity {
        id: act.connection_id(),
        last_seen: act.last_seen(),
    });
}

/// Answers a client's ping (already let through the connection's rate),
/// counting the pong as queued for the client.
pub fn pong<A>(backlog: &SendBacklog, payload: &[u8], ctx: &mut WebsocketContext<A>)
where
    A: Actor<Context = WebsocketContext<A>>,
{
    ctx.pong(payload);
    backlog.queued_by_connection(payload.len() + 2);
}

/// Stops the connection reading its socket while its session has more of
/// its input to handle than `budget` allows: actix polls no stream of an
/// actor while a `wait` future runs, so the socket is left unread and TCP
/// slows the client.
pub fn pause_while_over<A>(budget: &Arc<InboundBudget>, ctx: &mut WebsocketContext<A>)
where
    A: Actor<Context = WebsocketContext<A>>,
{
    if budget.over() {
        ctx.wait(fut::wrap_future(budget.clone().below_bound()));
    }
}

/// Writes what a connection sends, counting each message by type and
/// timing relayed events from their arrival from the glasses.
pub struct Writer {
    sent: LabelledCounters,
    fanout_latency: Histogram,
}

impl Writer {
    /// A writer for a connection to `target` ("glasses" or "app").
    pub fn new(metrics: &Metrics, target: &'static str) -> Writer {
        Writer {
            sent: metrics.messages_out(target),
            fanout_latency: metrics.fanout_latency.clone(),
        }
    }

    /// Writes one JSON message built by the protocol crate, handing the
    /// text over without a copy.
    pub fn text<A>(&mut self, text: String, ctx: &mut WebsocketContext<A>)
    where
        A: Actor<Context = WebsocketContext<A>>,
    {
        self.sent.inc(outbound::message_type(&text));
        ctx.text(text);
    }

    /// Writes an outbound command to the socket. Returns the commands the
    /// caller must handle itself (init results, superseding, pings).
    pub fn write<A>(&mut self, msg: Outbound, ctx: &mut WebsocketContext<A>) -> Option<Outbound>
    where
        A: Actor<Context = WebsocketContext<A>>,
    {
        match msg {
            Outbound::Text(t) => self.text(t, ctx),
            Outbound::Event { text, received } => {
                self.text(text, ctx);
                self.fanout_latency
                    .observe(received.elapsed().as_secs_f64());
            }
            Outbound::Binary(b) => {
                self.sent.inc("audio");
                ctx.binary(b);
            }
            Outbound::Close { code, reason } => close_with(ctx, code, &reason),
            other => return Some(other),
        }
        None
    }
}

/// A send backlog bounded as the limits say, counting into the metrics.
pub fn backlog(metrics: &Metrics, bound: usize) -> Arc<SendBacklog> {
    Arc::new(SendBacklog::new(
        bound,
        metrics.audio_dropped.clone(),
        metrics.slow_consumer_closes.clone(),
    ))
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

/// Starts the connection actor on an upgrade whose handshake
/// (`ws::handshake`) the caller has validated into `response`.
///
/// The socket's bytes pass through a [`FrameGuard`]: a frame or a
/// fragmented message declaring more than `max_frame` bytes, or a message
/// in more than `max_fragments` frames, is refused at its header, and the
/// codec gets about one frame at a time. The response body counts what the
/// socket takes into `backlog`.
pub fn start<A>(
    actor: A,
    mut response: actix_web::HttpResponseBuilder,
    stream: actix_web::web::Payload,
    (max_frame, max_fragments): (usize, usize),
    backlog: Arc<SendBacklog>,
) -> actix_web::HttpResponse
where
    A: Actor<Context = WebsocketContext<A>>
        + actix::StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    let guarded = FrameGuard::new(stream, MessageRules::new(max_frame, max_fragments));
    let codec = actix_http::ws::Codec::new().max_size(max_frame);
    let body = WebsocketContext::with_codec(actor, guarded, codec);
    response.streaming(CountedBody::new(Box::pin(body), backlog))
}

/// Lets a whole message through the connection's [`Gate`], or acts on the
/// refusal: a `RATE_LIMITED` error built by `error` (at most one a second)
/// for a message over the rate, a close for one over the size limit or a
/// client that keeps flooding. Returns whether to handle the message.
pub fn admit<A>(
    gate: &mut Gate,
    writer: &mut Writer,
    metrics: &Metrics,
    (text, len): (bool, usize),
    error: fn(&str, &str, &str) -> String,
    ctx: &mut WebsocketContext<A>,
) -> bool
where
    A: Actor<Context = WebsocketContext<A>>,
{
    match gate.check(text, len) {
        Verdict::Pass => true,
        Verdict::Drop { warn } => {
            metrics.refused("rate");
            if warn {
                let message = "Too many messages: this one and others were dropped; slow down";
                writer.text(error("RATE_LIMITED", message, &crate::now_iso()), ctx);
            }
            false
        }
        Verdict::Close { code, reason } => {
            metrics.refused(if code == CLOSE_TOO_BIG {
                "size"
            } else {
                "rate_close"
            });
            tracing::info!(code, reason, "closing a connection over its limits");
            close_with(ctx, code, reason);
            false
        }
    }
}

/// The close code for a socket error: 1009 for a frame or message over the
/// limit (counted as a size refusal), 1008 (policy) for anything else the
/// client got wrong (a framing refusal of the [`FrameGuard`] counted as
/// `framing`). The guard's refusals reach here as I/O errors carrying its
/// marks, the only way through actix's WebSocket stream.
pub fn protocol_error_code(e: &ws::ProtocolError, metrics: &Metrics) -> u16 {
    match e {
        ws::ProtocolError::Overflow => {
            metrics.refused("size");
            CLOSE_TOO_BIG
        }
        ws::ProtocolError::Io(io) if io.to_string().contains(TOO_BIG_MARK) => {
            metrics.refused("size");
            CLOSE_TOO_BIG
        }
        ws::ProtocolError::Io(io) if io.to_string().contains(FRAMING_MARK) => {
            metrics.refused("framing");
            1008
        }
        _ => 1008,
    }
}

/// HTTP 503 for an upgrade past the connection limit.
pub fn server_full() -> actix_web::HttpResponse {
    actix_web::HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "type": "connection_error",
        "code": "SERVER_FULL",
        "message": "The server holds as many connections as it may; try again later",
        "timestamp": crate::now_iso(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item() -> impl Strategy<Value = Item> {
        let bytes = prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from);
        prop_oneof![
            bytes.clone().prop_map(Item::FirstText),
            bytes.clone().prop_map(Item::FirstBinary),
            bytes.clone().prop_map(Item::Continue),
            bytes.prop_map(Item::Last),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Fragments in any order and of any size are a message, a refusal
        /// or nothing yet; a message never exceeds the limit.
        #[test]
        fn any_fragment_sequence_is_handled(items in prop::collection::vec(item(), 0..20), max in 0usize..200) {
            let mut r = Reassembler::new(max);
            for i in items {
                match r.push(i) {
                    Ok(Some(Frame::Text(t))) => prop_assert!(t.len() <= max),
                    Ok(Some(Frame::Binary(b))) => prop_assert!(b.len() <= max),
                    Ok(None) | Err(_) => {}
                }
            }
        }

        /// A well-formed fragmented message comes out as its concatenation.
        #[test]
        fn fragments_round_trip(parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 2..6)) {
            let whole: Vec<u8> = parts.concat();
            let mut r = Reassembler::new(whole.len());
            let last = parts.len() - 1;
            let mut out = None;
            for (n, p) in parts.into_iter().enumerate() {
                let b = Bytes::from(p);
                let item = match n {
                    0 => Item::FirstBinary(b),
                    n if n == last => Item::Last(b),
                    _ => Item::Continue(b),
                };
                out = r.push(item).map_err(TestCaseError::fail)?;
            }
            match out {
                Some(Frame::Binary(b)) => prop_assert_eq!(&b[..], &whole[..]),
                _ => prop_assert!(false, "no message"),
            }
        }
    }
}
