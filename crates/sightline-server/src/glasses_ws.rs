//! `/glasses-ws`: the connection from a user's glasses (through the phone).
//!
//! The upgrade is authenticated with the core token in the `Authorization`
//! header; a missing or bad token gets HTTP 401 with a JSON
//! `connection_error` and no WebSocket. Once open, the connection parses
//! each frame and hands it to the user's session; it holds no session state
//! of its own.
//!
//! Binary frames are audio in the codec the glasses chose (the `audioCodec`
//! and `lc3FrameBytes` query parameters of the upgrade, or the same fields
//! of `connection_init`; PCM by default). The connection decodes them with
//! its own [`AudioDecoder`], so the session only ever sees 16 kHz PCM and a
//! damaged frame costs only this connection a concealed 10 ms.

use std::sync::Arc;
use std::time::Instant;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, ContextFutureSpawner, Handler,
    StreamHandler, WrapFuture,
};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, WebsocketContext};
use serde_json::json;
use sightline_audio::{AudioCodec, AudioDecoder};
use sightline_probe::{ActorKind, ProbeGuard};
use sightline_protocol::glasses::{parse_glasses_message, GlassesMessage};
use sightline_protocol::outbound;
use sightline_runtime::inbound::InboundBudget;
use sightline_runtime::link::close;
use sightline_runtime::metrics::LabelledCounters;
use sightline_runtime::session::{
    AdoptHandoff, Dispose, FromGlasses, GlassesAudio, GlassesConnected, GlassesDisconnected,
};
use sightline_runtime::supervisor::OpenSession;
use sightline_runtime::{ConnectionId, ConnectionLink, Outbound, SessionHandle};

use crate::auth::{bearer, verify_core_token_with};
use crate::frames::{self, Frame, Heartbeat, Reassembler, Writer};
use crate::limits::{Gate, SendBacklog, Slot};
use crate::self_checks::{CheckConnection, ForgetConnection, SelfCheck};
use crate::SharedState;

/// One glasses WebSocket.
pub struct GlassesConnection {
    id: ConnectionId,
    user_id: String,
    session: SessionHandle,
    state: web::Data<SharedState>,
    last_seen: Instant,
    reassembler: Reassembler,
    /// Turns this connection's audio frames into PCM.
    audio: AudioDecoder,
    /// This connection's entry in the actor registry.
    probe: ProbeGuard,
    /// Messages received, by type.
    received: LabelledCounters,
    writer: Writer,
    /// Span of everything this connection does (`user`, `connection`).
    span: tracing::Span,
    /// Size and rate limits of what the glasses send.
    gate: Gate,
    /// This connection's place under the connection limit.
    _slot: Slot,
    /// Bytes queued for the client and not taken yet.
    backlog: Arc<SendBacklog>,
    /// Bytes handed to the session and not handled yet.
    inbound: Arc<InboundBudget>,
}

impl Actor for GlassesConnection {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state.self_checks.do_send(CheckConnection {
            id: self.id,
            inbox: ctx.address().recipient(),
        });
        let link = ConnectionLink {
            id: self.id,
            out: ctx.address().recipient(),
            probe: self.probe.probe(),
            backlog: self.backlog.clone(),
        };
        self.session
            .addr()
            .send(GlassesConnected { link })
            .into_actor(self)
            .map(|res, act, ctx| {
                if res.is_err() {
                    tracing::warn!(user = %act.user_id, "session ended while the glasses connected; asking them to reconnect");
                    frames::close_with(ctx, close::INTERNAL, "Session unavailable, reconnect");
                }
            })
            .wait(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.state
            .self_checks
            .do_send(ForgetConnection { id: self.id });
        self.session.do_send(GlassesDisconnected { id: self.id });
    }
}

impl Handler<SelfCheck> for GlassesConnection {
    type Result = ();
    fn handle(&mut self, _: SelfCheck, ctx: &mut Self::Context) {
        let timeout = self.state.config.runtime.connection_timeout;
        frames::self_check(self, ctx, timeout);
    }
}

impl Heartbeat for GlassesConnection {
    fn connection_id(&self) -> ConnectionId {
        self.id
    }
    fn last_seen(&self) -> Instant {
        self.last_seen
    }
    fn describe(&self) -> String {
        format!("glasses {} of {}", self.id, self.user_id)
    }
    fn session_alive(&self) -> bool {
        self.session.connected()
    }
    fn send_backlog(&self) -> &SendBacklog {
        &self.backlog
    }
}

impl Handler<Outbound> for GlassesConnection {
    type Result = ();

    fn handle(&mut self, msg: Outbound, ctx: &mut Self::Context) {
        let span = self.span.clone();
        let _in_connection = span.enter();
        self.probe.received();
        if let Some(Outbound::Ping { reply }) = self.writer.write(msg, ctx) {
            frames::answer_ping(self, &reply, ctx);
        }
    }
}

impl GlassesConnection {
    /// Switches codec on the glasses' request in `connection_init`; an
    /// unusable choice is answered with an error and the codec stays.
    fn choose_codec(
        &mut self,
        name: &str,
        frame_bytes: Option<u32>,
        ctx: &mut WebsocketContext<Self>,
    ) {
        match AudioCodec::from_wire(name, frame_bytes) {
            Ok(codec) if codec == self.audio.codec() => {}
            Ok(codec) => {
                tracing::info!(user = %self.user_id, codec = codec.name(), "glasses chose their audio codec");
                self.audio = AudioDecoder::new(codec, self.describe());
            }
            Err(e) => {
                self.probe.failed();
                let error = outbound::connection_error(
                    "INVALID_AUDIO_CODEC",
                    &e.to_string(),
                    &crate::now_iso(),
                );
                self.writer.text(error, ctx);
            }
        }
    }

    /// Decodes an audio frame and hands the PCM to the session.
    fn audio(&mut self, frame: &[u8], ctx: &mut WebsocketContext<Self>) {
        if !self.admit(false, frame.len(), ctx) {
            return;
        }
        self.received.inc("audio");
        let before = self.audio.stats();
        let pcm = self.audio.decode(frame);
        if matches!(self.audio.codec(), AudioCodec::Lc3 { .. }) {
            let after = self.audio.stats();
            let metrics = &self.state.runtime.shared.metrics;
            metrics
                .lc3_frames_decoded
                .inc_by(after.frames_decoded - before.frames_decoded);
            metrics
                .lc3_frames_concealed
                .inc_by(after.frames_concealed - before.frames_concealed);
        }
        if !pcm.is_empty() {
            let ticket = self.inbound.ticket(pcm.len());
            self.session.do_send(GlassesAudio {
                id: self.id,
                data: pcm,
                ticket,
            });
            frames::pause_while_over(&self.inbound, ctx);
        }
    }

    /// Lets a whole message through the connection's limits.
    fn admit(&mut self, text: bool, len: usize, ctx: &mut WebsocketContext<Self>) -> bool {
        let metrics = &self.state.runtime.shared.metrics;
        let error = outbound::connection_error;
        let pass = frames::admit(
            &mut self.gate,
            &mut self.writer,
            metrics,
            (text, len),
            error,
            ctx,
        );
        if !pass {
            self.probe.failed();
        }
        pass
    }

    fn text(&mut self, text: &str, ctx: &mut WebsocketContext<Self>) {
        if !self.admit(true, text.len(), ctx) {
            return;
        }
        match parse_glasses_message(text) {
            Ok(msg) => {
                self.received.inc(msg.type_name());
                if let GlassesMessage::ConnectionInit {
                    audio_codec: Some(name),
                    lc3_frame_bytes,
                } = &msg
                {
                    self.choose_codec(name, *lc3_frame_bytes, ctx);
                }
                self.session.do_send(FromGlasses {
                    id: self.id,
                    msg,
                    received: Instant::now(),
                    ticket: self.inbound.ticket(text.len()),
                });
                frames::pause_while_over(&self.inbound, ctx);
            }
            Err(e) => {
                tracing::debug!(user = %self.user_id, error = %e, "unusable frame from glasses");
                self.received.inc("unusable");
                self.probe.failed();
                let error = outbound::connection_error(e.code(), &e.to_string(), &crate::now_iso());
                self.writer.text(error, ctx);
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for GlassesConnection {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let span = self.span.clone();
        let _in_connection = span.enter();
        self.last_seen = Instant::now();
        self.probe.handled();
        let msg = match item {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(user = %self.user_id, error = %e, "glasses socket protocol error; closing");
                self.probe.failed();
                let code = frames::protocol_error_code(&e, &self.state.runtime.shared.metrics);
                frames::close_with(ctx, code, &e.to_string());
                return;
            }
        };
        match msg {
            ws::Message::Text(t) => self.text(&t, ctx),
            ws::Message::Binary(b) => self.audio(&b, ctx),
            ws::Message::Continuation(item) => match self.reassembler.push(item) {
                Ok(Some(Frame::Text(t))) => self.text(&t, ctx),
                Ok(Some(Frame::Binary(b))) => self.audio(&b, ctx),
                Ok(None) => {}
                Err(reason) => {
                    self.probe.failed();
                    let error =
                        outbound::connection_error("MALFORMED_MESSAGE", reason, &crate::now_iso());
                    self.writer.text(error, ctx);
                }
            },
            ws::Message::Ping(p) => {
                // Pings count against the message rate like any message.
                if self.admit(false, p.len(), ctx) {
                    frames::pong(&self.backlog, &p, ctx);
                }
            }
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                tracing::info!(user = %self.user_id, code = frames::peer_close_code(&reason), "glasses closed the connection");
                ctx.close(reason);
                ctx.stop();
            }
        }
    }
}

/// `GET /glasses-ws`: checks the upgrade, authenticates, opens (or finds)
/// the user's session and upgrades. Nothing is opened for a request that is
/// not a valid WebSocket upgrade.
pub async fn glasses_ws(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<SharedState>,
) -> HttpResponse {
    let response = match ws::handshake(&req) {
        Ok(r) => r,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let config = &state.config;
    let token = bearer(req.headers());
    let user_id = match verify_core_token_with(token, &config.jwt_secret, &config.core_token_rules)
    {
        Ok(u) => u,
        Err(e) => {
            tracing::info!(peer = ?req.peer_addr(), error = %e, "glasses connection refused");
            return HttpResponse::Unauthorized().json(json!({
                "type": "connection_error",
                "code": "INVALID_TOKEN",
                "message": e.to_string(),
                "timestamp": crate::now_iso(),
            }));
        }
    };
    let limits = &state.config.limits;
    let Some(slot) = state.slots.try_take(limits.max_connections) else {
        state.runtime.shared.metrics.refused("connections");
        tracing::warn!(
            limit = limits.max_connections,
            "connection limit reached; glasses refused"
        );
        return frames::server_full();
    };
    let codec = match codec_from_query(req.query_string()) {
        Ok(c) => c,
        Err(e) => {
            return HttpResponse::BadRequest().json(json!({
                "type": "connection_error",
                "code": "INVALID_AUDIO_CODEC",
                "message": e.to_string(),
                "timestamp": crate::now_iso(),
            }));
        }
    };
    // A user whose session is alive reconnects to it without the store, so
    // glasses that drop during a store outage get back into their session.
    let existing = state.runtime.live_session(&user_id).await;
    // In a cluster, a new session opens only on the instance that owns
    // the user: claimed here, or handed over by its owner.
    let mut handoff = None;
    let claimed = existing.is_none() && state.cluster.is_some();
    if let (None, Some(cluster)) = (&existing, &state.cluster) {
        match admit(cluster, &user_id).await {
            Ok(Some(h)) => handoff = Some(h),
            Ok(None) => {}
            Err(refusal) => return refusal,
        }
    }
    let opened = match existing {
        Some(session) => Ok(session),
        None => {
            let user = match state.runtime.store.ensure_user(&user_id).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!(user = %user_id, error = %e, "user record unavailable; glasses connection refused");
                    return HttpResponse::ServiceUnavailable().json(json!({
                        "type": "connection_error",
                        "code": "STORE_UNAVAILABLE",
                        "message": format!("Session could not be opened: {e}"),
                        "timestamp": crate::now_iso(),
                    }));
                }
            };
            state.runtime.supervisor.send(OpenSession { user }).await
        }
    };
    let session = match opened {
        Ok(s) if claimed && !still_owner(&state, &user_id).await => {
            // Handed to another instance between the claim and the open.
            s.addr().do_send(Dispose);
            return HttpResponse::Conflict()
                .insert_header(("Retry-After", "1"))
                .json(json!({
                    "type": "connection_error",
                    "code": "SESSION_ELSEWHERE",
                    "message": "This user's session just moved to another instance; connect again",
                    "timestamp": crate::now_iso(),
                }));
        }
        Ok(s) => {
            // Taken in before the glasses are attached (same mailbox, in
            // order).
            if let Some(h) = handoff {
                s.addr().do_send(AdoptHandoff(*h));
            }
            s
        }
        Err(e) => {
            tracing::error!(error = %e, "session supervisor unavailable");
            return HttpResponse::ServiceUnavailable().json(json!({
                "type": "connection_error",
                "code": "INTERNAL_ERROR",
                "message": "Session supervisor unavailable",
                "timestamp": crate::now_iso(),
            }));
        }
    };
    let id = ConnectionId::next();
    let audio = AudioDecoder::new(codec, format!("glasses {id} of {user_id}"));
    let health = &state.runtime.shared;
    let probe = health.actors.register(
        ActorKind::GlassesConnection,
        Some(session.actor_id()),
        "open",
    );
    probe.set_user(&user_id);
    probe.set_label(&id.to_string());
    let backlog = frames::backlog(&state.runtime.shared.metrics, limits.send_backlog_bytes);
    let conn = GlassesConnection {
        id,
        probe,
        span: tracing::info_span!("glasses", user = %user_id, connection = %id),
        gate: Gate::new(
            limits.glasses_rate,
            limits.glasses_text_bytes,
            limits.glasses_binary_bytes,
        ),
        _slot: slot,
        backlog: backlog.clone(),
        inbound: InboundBudget::new(limits.glasses_inbound_backlog_bytes),
        received: health.metrics.messages_in("glasses"),
        writer: Writer::new(&health.metrics, "glasses"),
        audio,
        user_id,
        session,
        state: state.clone(),
        last_seen: Instant::now(),
        reassembler: Reassembler::new(limits.glasses_frame_bytes()),
    };
    let frame_limits = (limits.glasses_frame_bytes(), limits.max_fragments);
    frames::start(conn, response, stream, frame_limits, backlog)
}

/// The codec named by the upgrade's `audioCodec` / `lc3FrameBytes` query
/// parameters (PCM when absent).
pub(crate) fn codec_from_query(query: &str) -> Result<AudioCodec, sightline_audio::AudioError> {
    let (mut name, mut bytes) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("audioCodec", v)) => name = Some(v.to_string()),
            Some(("lc3FrameBytes", v)) => {
                bytes = Some(
                    v.parse::<u32>()
                        .map_err(|_| sightline_audio::AudioError::BadFrameBytes(0))?,
                )
            }
            _ => {}
        }
    }
    match name {
        Some(n) => AudioCodec::from_wire(&n, bytes),
        None => Ok(AudioCodec::Pcm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_query_parameters() {
        assert_eq!(codec_from_query(""), Ok(AudioCodec::Pcm));
        assert_eq!(
            codec_from_query("audioCodec=lc3"),
            Ok(AudioCodec::Lc3 { frame_bytes: 20 })
        );
        assert_eq!(
            codec_from_query("x=1&audioCodec=lc3&lc3FrameBytes=40"),
            Ok(AudioCodec::Lc3 { frame_bytes: 40 })
        );
        assert!(codec_from_query("audioCodec=mp3").is_err());
    }
}

/// Whether glasses of `user_id` may open the user's session on this
/// instance of a cluster: `Ok(Some(handoff))` when the previous owner
/// handed the session over, `Ok(None)` when the user was claimed here,
/// else the answer for the phone (it retries, through the load balancer).
async fn admit(
    cluster: &crate::cluster::Cluster,
    user_id: &str,
) -> Result<Option<Box<sightline_runtime::handoff::Handoff>>, HttpResponse> {
    use crate::cluster::member::{Admission, ClaimUser};
    let refuse = |status: actix_web::http::StatusCode, code: &str, message: String| {
        HttpResponse::build(status)
            .insert_header(("Retry-After", "1"))
            .json(json!({
                "type": "connection_error",
                "code": code,
                "message": message,
                "timestamp": crate::now_iso(),
            }))
    };
    use actix_web::http::StatusCode;
    if cluster.is_draining() {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "INSTANCE_DRAINING",
            "This instance is restarting; connect again".into(),
        ));
    }
    let claim = cluster
        .member
        .send(ClaimUser {
            user: user_id.to_string(),
        })
        .await;
    match claim {
        Ok(Ok(Admission::Here)) => Ok(None),
        Ok(Ok(Admission::Adopt(h))) => Ok(Some(h)),
        Ok(Ok(Admission::Draining)) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "INSTANCE_DRAINING",
            "This instance is restarting; connect again".into(),
        )),
        Ok(Ok(Admission::Elsewhere(owner))) => Err(refuse(
            StatusCode::CONFLICT,
            "SESSION_ELSEWHERE",
            format!("This user's session lives on instance {}", owner.instance),
        )),
        Ok(Ok(Admission::Unreachable(owner))) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "SESSION_MOVING",
            format!(
                "Instance {} holds this user's session and does not answer; connect again in a moment",
                owner.instance
            ),
        )),
        Ok(Err(e)) => {
            tracing::error!(user = %user_id, error = %e, "cluster ownership unavailable; glasses connection refused");
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "CLUSTER_UNAVAILABLE",
                format!("Session ownership could not be checked: {e}"),
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "cluster member unavailable");
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "CLUSTER_UNAVAILABLE",
                "Session ownership could not be checked".into(),
            ))
        }
    }
}

/// Whether this instance still holds `user`'s lease.
async fn still_owner(state: &SharedState, user_id: &str) -> bool {
    let Some(cluster) = &state.cluster else {
        return true;
    };
    let asked = crate::cluster::member::HoldsLease {
        user: user_id.to_string(),
    };
    cluster.member.send(asked).await.unwrap_or(false)
}
