//! `/app-ws`: the connection from an app server (an SDK `AppSession`).
//!
//! The socket opens unauthenticated; its first message must be
//! `tpa_connection_init`. The connection checks the API key against the
//! stored hash, finds the user's session and asks it to bind the socket.
//! From then on the (user, package) identity belongs to the socket: fields
//! in later messages never change it.

use std::time::Instant;

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Handler, StreamHandler, WrapFuture,
};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, WebsocketContext};
use sightline_protocol::app::{parse_app_message, AppMessage, ConnectionInit};
use sightline_protocol::outbound;
use sightline_protocol::session_id::user_from_app_session_id;
use sightline_runtime::link::close;
use sightline_runtime::session::{AppDisconnected, AttachApp, FromApp};
use sightline_runtime::supervisor::FindSession;
use sightline_runtime::{ConnectionId, ConnectionLink, Outbound, UserSession};
use sightline_store::verify_api_key;

use crate::frames::{self, Frame, Heartbeat, Reassembler};
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

#[derive(Clone)]
struct Identity {
    user_id: String,
    package: String,
    session: Addr<UserSession>,
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
}

impl Actor for AppConnection {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let cfg = &self.state.config;
        frames::start_self_checks(
            ctx,
            cfg.runtime.heartbeat_interval,
            cfg.runtime.connection_timeout,
        );
        ctx.run_later(cfg.app_init_timeout, |act, ctx| {
            if matches!(act.binding, Binding::AwaitingInit) {
                tracing::info!(connection = %act.id, "app socket sent no tpa_connection_init; closing");
                frames::close_with(ctx, close::POLICY, "No tpa_connection_init received");
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Binding::Bound(who) | Binding::Attaching(who) = &self.binding {
            who.session.do_send(AppDisconnected {
                package_name: who.package.clone(),
                id: self.id,
                code: self.peer_close,
            });
        }
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
}

impl Handler<Outbound> for AppConnection {
    type Result = ();

    fn handle(&mut self, msg: Outbound, ctx: &mut Self::Context) {
        let Some(msg) = frames::write(msg, ctx) else {
            return;
        };
        match msg {
            Outbound::InitAccepted => {
                if let Binding::Attaching(who) = &self.binding {
                    self.binding = Binding::Bound(who.clone());
                    for text in std::mem::take(&mut self.pending) {
                        self.text(&text, ctx);
                    }
                }
            }
            Outbound::InitRejected { code, message } => {
                self.binding = Binding::AwaitingInit;
                self.reject(code, &message, close::POLICY, ctx);
            }
            Outbound::Superseded => {
                tracing::info!(connection = %self.id, "app socket superseded by a newer connection");
                self.binding = Binding::Superseded;
            }
            Outbound::Ping { reply } => frames::answer_ping(self, &reply, ctx),
            _ => {}
        }
    }
}

impl AppConnection {
    fn error(&self, code: &str, message: &str, ctx: &mut WebsocketContext<Self>) {
        ctx.text(outbound::tpa_connection_error(
            code,
            message,
            &crate::now_iso(),
        ));
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

    fn text(&mut self, text: &str, ctx: &mut WebsocketContext<Self>) {
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
        let msg = match parse_app_message(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(connection = %self.id, error = %e, "unusable frame from app");
                return self.error(e.code(), &e.to_string(), ctx);
            }
        };
        match (&self.binding, msg) {
            (Binding::AwaitingInit, AppMessage::ConnectionInit(init)) => self.init(init, ctx),
            (Binding::AwaitingInit, _) => self.error(
                "NOT_INITIALISED",
                "send tpa_connection_init before anything else",
                ctx,
            ),
            (Binding::Bound(who), msg) => who.session.do_send(FromApp {
                package_name: who.package.clone(),
                id: self.id,
                msg,
            }),
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
        let runtime = self.state.runtime.clone();
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
                Ok(None) => Err(("SESSION_NOT_FOUND", "Session not found".to_string())),
                Err(_) => Err(("INTERNAL_ERROR", "Internal server error".to_string())),
            }
        };
        ctx.spawn(check.into_actor(self).map(move |res, act, ctx| match res {
            Ok((who, app)) => {
                let link = ConnectionLink {
                    id: act.id,
                    out: ctx.address().recipient(),
                };
                who.session.do_send(AttachApp { app, link });
                act.binding = Binding::Attaching(who);
            }
            Err((code, message)) => {
                act.binding = Binding::AwaitingInit;
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
        self.last_seen = Instant::now();
        let msg = match item {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(connection = %self.id, error = %e, "app socket protocol error; closing");
                frames::close_with(ctx, close::POLICY, &e.to_string());
                return;
            }
        };
        match msg {
            ws::Message::Text(t) => self.text(&t, ctx),
            ws::Message::Binary(_) => self.error(
                "MALFORMED_MESSAGE",
                "apps send JSON in text frames; binary frames are not accepted",
                ctx,
            ),
            ws::Message::Continuation(item) => match self.reassembler.push(item) {
                Ok(Some(Frame::Text(t))) => self.text(&t, ctx),
                Ok(Some(Frame::Binary(_))) => {
                    self.error("MALFORMED_MESSAGE", "binary frames are not accepted", ctx)
                }
                Ok(None) => {}
                Err(reason) => self.error("MALFORMED_MESSAGE", reason, ctx),
            },
            ws::Message::Ping(p) => ctx.pong(&p),
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                self.peer_close = Some(frames::peer_close_code(&reason));
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
    let conn = AppConnection {
        id: ConnectionId::next(),
        state: state.clone(),
        binding: Binding::AwaitingInit,
        pending: Vec::new(),
        last_seen: Instant::now(),
        peer_close: None,
        reassembler: Reassembler::new(state.config.max_frame_bytes),
    };
    match frames::handshake(conn, &req, stream, state.config.max_frame_bytes) {
        Ok(resp) => resp,
        Err(e) => e.error_response(),
    }
}
