//! `/app-ws`: the connection from an app server (an SDK `AppSession`).
//!
//! The socket opens unauthenticated; its first message must be
//! `tpa_connection_init`. The connection checks the API key against the
//! stored hash, finds the user's session and asks it to bind the socket.
//! From then on the (user, package) identity belongs to the socket: fields
//! in later messages never change it.
//!
//! Until its key is verified the socket holds a place in the pre-auth
//! budget ([`crate::preauth`]), not under the connection limit; with a
//! verified key it moves under the connection limit (or, when that is full,
//! is refused `SERVER_FULL` and closed 1013).

use std::sync::Arc;
use std::time::Instant;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, SpawnHandle, StreamHandler,
    WrapFuture,
};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, WebsocketContext};
use sightline_probe::{ActorKind, ProbeGuard};
use sightline_protocol::app::claims_display_event;
use sightline_protocol::app::{parse_app_message, AppMessage, ConnectionInit};
use sightline_protocol::outbound;
use sightline_protocol::session_id::user_from_app_session_id;
use sightline_protocol::ProtocolError;
use sightline_runtime::inbound::InboundBudget;
use sightline_runtime::link::close;
use sightline_runtime::metrics::{DisplayOutcome, LabelledCounters};
use sightline_runtime::session::{AppDisconnected, AttachApp, FromApp};
use sightline_runtime::supervisor::FindSession;
use sightline_runtime::{ConnectionId, ConnectionLink, Outbound, SessionHandle};
use sightline_store::verify_api_key;

use crate::frames::{self, Frame, Heartbeat, Reassembler, Writer};
use crate::limits::{Gate, SendBacklog, Slot};
use crate::preauth::{too_many_unauthenticated, PreAuthSlot};
use crate::self_checks::{CheckConnection, ForgetConnection, SelfCheck};
use crate::SharedState;

/// Messages kept while the session decides on an init; the SDK sends none
/// before the ack, so this only guards against misbehaving clients.
const MAX_PENDING: usize = 64;

/// Where the connection is in its handshake.
enum Binding {
    /// Waiting for `tpa_connection_init`.
    AwaitingInit,
    /// Init received; key check and session lookup under way.
    Checking,
    /// The session is deciding; frames are held until it answers.
    Attaching(Identity),
    /// Bound to (user, package).
    Bound(Identity),
    /// Another socket took over this app session.
    Superseded,
}

/// Which budget the connection counts against.
enum Place {
    /// Not authenticated yet: the pre-auth budget.
    Unauthenticated(#[allow(dead_code)] PreAuthSlot),
    /// Key verified: the connection limit.
    Authenticated(#[allow(dead_code)] Slot),
}

#[derive(Clone)]
struct Identity {
    user_id: String,
    package: String,
    session: SessionHandle,
}

/// One app WebSocket.
pub struct AppConnection {
    id: ConnectionId,
    state: web::Data<SharedState>,
    binding: Binding,
    pending: Vec<String>,
    last_seen: Instant,
    peer_close: Option<u16>,
    reassembler: Reassembler,
    /// This connection's entry in the actor registry: under the supervisor
    /// until bound, then under its user's session.
    probe: ProbeGuard,
    /// Messages received, by type.
    received: LabelledCounters,
    writer: Writer,
    /// Span of everything this connection does (`connection`, and `user`
    /// and `package` once the init names them).
    span: tracing::Span,
    /// Size and rate limits of what the app sends.
    gate: Gate,
    /// This connection's place: in the pre-auth budget until its key is
    /// verified, then under the connection limit.
    place: Place,
    /// Bytes queued for the client and not taken yet.
    backlog: Arc<SendBacklog>,
    /// Bytes handed to the session and not handled yet.
    inbound: Arc<InboundBudget>,
    /// The deadline for `tpa_connection_init`, until the init is accepted
    /// (a pending timer is polled on every message the connection handles).
    init_deadline: Option<SpawnHandle>,
}

impl Actor for AppConnection {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let cfg = &self.state.config;
        self.state.self_checks.do_send(CheckConnection {
            id: self.id,
            inbox: ctx.address().recipient(),
        });
        self.init_deadline = Some(ctx.run_later(cfg.app_init_timeout, |act, ctx| {
            if matches!(act.binding, Binding::AwaitingInit) {
                tracing::info!(connection = %act.id, "app socket sent no tpa_connection_init; closing");
                frames::close_with(ctx, close::POLICY, "No tpa_connection_init received");
            }
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.state
            .self_checks
            .do_send(ForgetConnection { id: self.id });
        if let Binding::Bound(who) | Binding::Attaching(who) = &self.binding {
            who.session.do_send(AppDisconnected {
                package_name: who.package.clone(),
                id: self.id,
                code: self.peer_close,
            });
        }
    }
}

impl Handler<SelfCheck> for AppConnection {
    type Result = ();
    fn handle(&mut self, _: SelfCheck, ctx: &mut Self::Context) {
        let timeout = self.state.config.runtime.connection_timeout;
        frames::self_check(self, ctx, timeout);
    }
}

impl Heartbeat for AppConnection {
    fn connection_id(&self) -> ConnectionId {
        self.id
    }
    fn last_seen(&self) -> Instant {
        self.last_seen
    }
    fn describe(&self) -> String {
        match &self.binding {
            Binding::Bound(w) | Binding::Attaching(w) => {
                format!("app {} {} of {}", self.id, w.package, w.user_id)
            }
            _ => format!("app {} (not bound)", self.id),
        }
    }
    fn session_alive(&self) -> bool {
        match &self.binding {
            Binding::Bound(w) | Binding::Attaching(w) => w.session.connected(),
            _ => true,
        }
    }
    fn send_backlog(&self) -> &SendBacklog {
        &self.backlog
    }
}

impl Handler<Outbound> for AppConnection {
    type Result = ();

    fn handle(&mut self, msg: Outbound, ctx: &mut Self::Context) {
        let span = self.span.clone();
        let _in_connection = span.enter();
        self.probe.received();
        let Some(msg) = self.writer.write(msg, ctx) else {
            return;
        };
        match msg {
            Outbound::InitAccepted => {
                if let Binding::Attaching(who) = &self.binding {
                    self.binding = Binding::Bound(who.clone());
                    self.probe.set_state("bound");
                    if let Some(deadline) = self.init_deadline.take() {
                        ctx.cancel_future(deadline);
                    }
                    for text in std::mem::take(&mut self.pending) {
                        self.text(&text, ctx);
                    }
                }
            }
            Outbound::InitRejected { code, message } => {
                self.binding = Binding::AwaitingInit;
                self.probe.set_state("refused");
                self.reject(code, &message, close::POLICY, ctx);
            }
            Outbound::Superseded => {
                tracing::info!(connection = %self.id, "app socket superseded by a newer connection; closing it");
                self.binding = Binding::Superseded;
                self.probe.set_state("superseded");
                // 1008 is a closure the SDK does not reconnect from: the
                // newer socket speaks for the app now.
                frames::close_with(
                    ctx,
                    close::POLICY,
                    "Superseded by a newer connection for this app session",
                );
            }
            Outbound::Ping { reply } => frames::answer_ping(self, &reply, ctx),
            _ => {}
        }
    }
}

/// Messages larger than this are parsed off the connection's worker thread.
const PARSE_OFF_THREAD_BYTES: usize = 64 * 1024;

impl AppConnection {
    fn error(&mut self, code: &str, message: &str, ctx: &mut WebsocketContext<Self>) {
        self.probe.failed();
        let error = outbound::tpa_connection_error(code, message, &crate::now_iso());
        self.writer.text(error, ctx);
    }

    fn reject(
        &mut self,
        code: &str,
        message: &str,
        close_code: u16,
        ctx: &mut WebsocketContext<Self>,
    ) {
        tracing::info!(connection = %self.id, code, message, "app connection refused");
        self.error(code, message, ctx);
        frames::close_with(ctx, close_code, message);
    }

    /// Lets a whole message (or a ping) through the connection's limits.
    fn admit(&mut self, text: bool, len: usize, ctx: &mut WebsocketContext<Self>) -> bool {
        let metrics = &self.state.runtime.shared.metrics;
        let error = outbound::tpa_connection_error;
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
        match &self.binding {
            Binding::Checking | Binding::Attaching(_) => {
                if self.pending.len() < MAX_PENDING {
                    self.pending.push(text.to_string());
                } else {
                    self.error("MALFORMED_MESSAGE", "too many messages before the ack", ctx);
                }
                return;
            }
            Binding::Superseded => return,
            _ => {}
        }
        if text.len() > PARSE_OFF_THREAD_BYTES {
            // A large message is parsed on the blocking pool, so that other
            // clients served by this worker thread are not kept waiting;
            // this connection reads nothing more until it is done, so the
            // order of its messages is kept.
            let owned = text.to_string();
            let job = actix_web::rt::task::spawn_blocking(move || {
                let parsed = parse_app_message(&owned);
                (owned, parsed)
            });
            ctx.wait(job.into_actor(self).map(|done, act, ctx| match done {
                Ok((text, parsed)) => act.dispatch(&text, parsed, ctx),
                Err(e) => {
                    tracing::error!(connection = %act.id, error = %e, "parsing an app message failed");
                    act.error("INTERNAL_ERROR", "the message could not be read", ctx);
                }
            }));
            return;
        }
        self.dispatch(text, parse_app_message(text), ctx);
    }

    /// Handles a parsed text frame.
    fn dispatch(
        &mut self,
        text: &str,
        parsed: Result<AppMessage, ProtocolError>,
        ctx: &mut WebsocketContext<Self>,
    ) {
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(connection = %self.id, error = %e, "unusable frame from app");
                self.received.inc("unusable");
                if claims_display_event(text) {
                    let metrics = &self.state.runtime.shared.metrics;
                    metrics.display(DisplayOutcome::Rejected);
                }
                return self.error(e.code(), &e.to_string(), ctx);
            }
        };
        self.received.inc(msg.type_name());
        match (&self.binding, msg) {
            (Binding::AwaitingInit, AppMessage::ConnectionInit(init)) => self.init(init, ctx),
            (Binding::AwaitingInit, _) => self.error(
                "NOT_INITIALISED",
                "send tpa_connection_init before anything else",
                ctx,
            ),
            (Binding::Bound(who), msg) => {
                who.session.do_send(FromApp {
                    package_name: who.package.clone(),
                    id: self.id,
                    msg,
                    ticket: self.inbound.ticket(text.len()),
                });
                frames::pause_while_over(&self.inbound, ctx);
            }
            _ => {}
        }
    }

    fn init(&mut self, init: ConnectionInit, ctx: &mut WebsocketContext<Self>) {
        let Some(user_id) =
            user_from_app_session_id(&init.session_id, &init.package_name).map(str::to_string)
        else {
            tracing::info!(connection = %self.id, "app init with a malformed session id");
            frames::close_with(ctx, close::POLICY, "Invalid session ID format");
            return;
        };
        self.binding = Binding::Checking;
        self.probe.set_state("checking");
        let runtime = self.state.runtime.clone();
        let cluster = self.state.cluster.clone();
        let package = init.package_name.clone();
        let check = async move {
            let app = match runtime.store.get_app(&init.package_name).await {
                Ok(Some(app)) => app,
                Ok(None) => return Err(("INVALID_API_KEY", "Invalid API key".to_string())),
                Err(e) => {
                    tracing::error!(error = %e, "app lookup failed during init");
                    return Err(("INTERNAL_ERROR", "Internal server error".to_string()));
                }
            };
            if !verify_api_key(&init.api_key, &app.hashed_api_key) {
                return Err(("INVALID_API_KEY", "Invalid API key".to_string()));
            }
            match runtime
                .supervisor
                .send(FindSession {
                    user_id: user_id.clone(),
                })
                .await
            {
                Ok(Some(session)) => Ok((
                    Identity {
                        user_id,
                        package: init.package_name,
                        session,
                    },
                    app,
                )),
                Ok(None) => match cluster {
                    Some(c) => Err(elsewhere(&c, &user_id, &init.package_name).await),
                    None => Err(("SESSION_NOT_FOUND", "Session not found".to_string())),
                },
                Err(_) => Err(("INTERNAL_ERROR", "Internal server error".to_string())),
            }
        };
        ctx.spawn(check.into_actor(self).map(move |res, act, ctx| match res {
            Ok((who, app)) => {
                let max = act.state.config.limits.max_connections;
                let Some(slot) = act.state.slots.try_take(max) else {
                    act.state.runtime.shared.metrics.refused("connections");
                    tracing::warn!(
                        limit = max,
                        "connection limit reached; authenticated app refused"
                    );
                    act.binding = Binding::AwaitingInit;
                    act.probe.set_state("refused");
                    let message = "The server holds as many connections as it may; try again later";
                    act.reject("SERVER_FULL", message, close::SLOW_CONSUMER, ctx);
                    return;
                };
                // Authenticated: from the pre-auth budget to the connection
                // limit.
                act.place = Place::Authenticated(slot);
                let link = ConnectionLink {
                    id: act.id,
                    out: ctx.address().recipient(),
                    probe: act.probe.probe(),
                    backlog: act.backlog.clone(),
                };
                act.span.record("user", who.user_id.as_str());
                act.span.record("package", who.package.as_str());
                act.probe.set_parent(who.session.actor_id());
                act.probe.set_user(&who.user_id);
                act.probe.set_package(&who.package);
                act.probe.set_state("attaching");
                who.session.do_send(AttachApp { app, link });
                act.binding = Binding::Attaching(who);
            }
            Err((code, message)) => {
                act.binding = Binding::AwaitingInit;
                act.probe.set_state("refused");
                let close_code = if code == "INTERNAL_ERROR" {
                    close::INTERNAL
                } else {
                    close::POLICY
                };
                tracing::info!(package = %package, "app init refused: {code}");
                act.reject(code, &message, close_code, ctx);
            }
        }));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for AppConnection {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let span = self.span.clone();
        let _in_connection = span.enter();
        self.last_seen = Instant::now();
        self.probe.handled();
        let msg = match item {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(connection = %self.id, error = %e, "app socket protocol error; closing");
                self.probe.failed();
                let code = frames::protocol_error_code(&e, &self.state.runtime.shared.metrics);
                frames::close_with(ctx, code, &e.to_string());
                return;
            }
        };
        match msg {
            ws::Message::Text(t) => self.text(&t, ctx),
            ws::Message::Binary(b) => {
                if self.admit(false, b.len(), ctx) {
                    self.error(
                        "MALFORMED_MESSAGE",
                        "apps send JSON in text frames; binary frames are not accepted",
                        ctx,
                    )
                }
            }
            ws::Message::Continuation(item) => match self.reassembler.push(item) {
                Ok(Some(Frame::Text(t))) => self.text(&t, ctx),
                Ok(Some(Frame::Binary(_))) => {
                    self.error("MALFORMED_MESSAGE", "binary frames are not accepted", ctx)
                }
                Ok(None) => {}
                Err(reason) => self.error("MALFORMED_MESSAGE", reason, ctx),
            },
            ws::Message::Ping(p) => {
                // Pings count against the message rate like any message.
                if self.admit(false, p.len(), ctx) {
                    frames::pong(&self.backlog, &p, ctx);
                }
            }
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                let code = frames::peer_close_code(&reason);
                tracing::info!(connection = %self.id, code, "app closed the connection");
                self.peer_close = Some(code);
                ctx.close(reason);
                ctx.stop();
            }
        }
    }
}

/// `GET /app-ws`: upgrades; authentication happens in the first message.
pub async fn app_ws(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<SharedState>,
) -> HttpResponse {
    let response = match ws::handshake(&req) {
        Ok(r) => r,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let limits = &state.config.limits;
    let address = req.peer_addr().map(|a| a.ip());
    let pre_auth = match state.pre_auth.try_take(
        address,
        limits.max_unauthenticated,
        limits.max_unauthenticated_per_address,
    ) {
        Ok(p) => p,
        Err(refusal) => {
            state.runtime.shared.metrics.refused("unauthenticated");
            tracing::warn!(peer = ?address, %refusal, "unauthenticated app socket refused");
            return too_many_unauthenticated(refusal);
        }
    };
    let id = ConnectionId::next();
    let runtime = &state.runtime;
    let backlog = frames::backlog(&state.runtime.shared.metrics, limits.send_backlog_bytes);
    let probe = runtime.shared.actors.register(
        ActorKind::AppConnection,
        Some(runtime.supervisor_actor),
        "awaiting-init",
    );
    probe.set_label(&id.to_string());
    let conn = AppConnection {
        id,
        probe,
        span: tracing::info_span!(
            "app",
            connection = %id,
            user = tracing::field::Empty,
            package = tracing::field::Empty
        ),
        received: runtime.shared.metrics.messages_in("app"),
        writer: Writer::new(&runtime.shared.metrics, "app"),
        // Apps send no binary frames (each gets an error); they count
        // against the rate like any message.
        gate: Gate::new(
            limits.app_rate,
            limits.app_text_bytes,
            limits.app_text_bytes,
        ),
        place: Place::Unauthenticated(pre_auth),
        backlog: backlog.clone(),
        inbound: InboundBudget::new(limits.app_inbound_backlog_bytes),
        init_deadline: None,
        state: state.clone(),
        binding: Binding::AwaitingInit,
        pending: Vec::new(),
        last_seen: Instant::now(),
        peer_close: None,
        reassembler: Reassembler::new(limits.app_text_bytes),
    };
    let frame_limits = (limits.app_text_bytes, limits.max_fragments);
    frames::start(conn, response, stream, frame_limits, backlog)
}

/// The answer to an app whose user has no session on this instance of a
/// cluster. If another instance owns the user, that instance is asked to
/// send the app a fresh `session_request` naming itself (the SDK's way to
/// move an app), and the app hears where its session is.
async fn elsewhere(
    cluster: &crate::cluster::Cluster,
    user: &str,
    package: &str,
) -> (&'static str, String) {
    let owner = match cluster.bucket.owner(user).await {
        Ok(Some((owner, _))) if owner.instance != cluster.me.instance => owner,
        _ => return ("SESSION_NOT_FOUND", "Session not found".to_string()),
    };
    let ask = crate::cluster::wire::SessionAsk {
        user: user.to_string(),
        command: crate::cluster::wire::SessionCommand::RepointApp {
            package: package.to_string(),
        },
    };
    let subject = sightline_cluster::bus::session_subject(&owner.instance);
    let asked: Result<crate::cluster::wire::SessionAnswer, _> =
        cluster.bus.request(subject, &ask).await;
    if let Err(e) = asked {
        tracing::warn!(user, package, owner = %owner.instance, error = %e, "owner not told to point the app at itself");
    }
    tracing::info!(user, package, owner = %owner.instance, "app reached an instance that does not own its session");
    (
        "SESSION_ELSEWHERE",
        format!(
            "This session lives on instance {}; a new session request follows",
            owner.instance
        ),
    )
}
