//! The session's side of app-to-app messaging: it tells the
//! [`AppMessaging`](crate::messaging::AppMessaging) actor when its apps
//! start and stop running, hands it their requests (each app within a
//! message budget), answers `sendDirectMessage()` with
//! `app_direct_message_response`, and writes what other users' apps send to
//! the app's socket.

use std::time::Instant;

use actix::{ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};
use sightline_protocol::app_messaging::{self as wire, MessagingRequest};
use sightline_protocol::outbound;

use super::{AppState, UserSession};
use crate::messaging::{
    AppInbox, AppPresence, BroadcastToApp, DirectToApp, JoinAppRoom, LeaveAppRoom,
};
use crate::now_iso;

/// Messages one app may send to other users per second, sustained…
const MESSAGES_PER_SECOND: f64 = 10.0;
/// …and in a burst.
const MESSAGE_BURST: f64 = 20.0;

/// A token bucket: each message takes one token; tokens come back at
/// [`MESSAGES_PER_SECOND`].
#[derive(Debug, Clone, Copy)]
pub(super) struct MessageBudget {
    tokens: f64,
    at: Instant,
}

impl MessageBudget {
    pub(super) fn new(now: Instant) -> Self {
        MessageBudget {
            tokens: MESSAGE_BURST,
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * MESSAGES_PER_SECOND).min(MESSAGE_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl UserSession {
    /// An app of this session runs (its connection was accepted): other
    /// users of the app can reach it.
    pub(super) fn messaging_app_running(&mut self, package: &str, ctx: &mut Context<Self>) {
        let Some(app) = self.apps.get(package) else {
            return;
        };
        self.messaging.do_send(AppPresence {
            package: package.to_string(),
            user: self.user.email.clone(),
            session_id: app.session_id.clone(),
            inbox: Some(ctx.address().recipient()),
        });
    }

    /// An app of this session stopped.
    pub(super) fn messaging_app_stopped(&mut self, package: &str) {
        self.message_budgets.remove(package);
        self.messaging.do_send(AppPresence {
            package: package.to_string(),
            user: self.user.email.clone(),
            session_id: String::new(),
            inbox: None,
        });
    }

    /// A messaging request from one of this session's apps.
    pub(super) fn messaging_request(
        &mut self,
        package: &str,
        req: MessagingRequest,
        ctx: &mut Context<Self>,
    ) {
        let now = Instant::now();
        let within_budget = self
            .message_budgets
            .entry(package.to_string())
            .or_insert_with(|| MessageBudget::new(now))
            .take(now);
        let user = self.user.email.clone();
        let pkg = package.to_string();
        if !within_budget && !matches!(req, MessagingRequest::LeaveRoom { .. }) {
            self.health.metrics.refused("app_messages");
            let why = format!(
                "more than {MESSAGES_PER_SECOND} messages per second to other users; slow down"
            );
            let text = match &req {
                MessagingRequest::Direct { message_id, .. } => {
                    wire::app_direct_message_response(message_id, Some(&why), &now_iso())
                }
                _ => outbound::tpa_connection_error("RATE_LIMITED", &why, &now_iso()),
            };
            self.text_to_app(package, text);
            return;
        }
        match req {
            MessagingRequest::Broadcast {
                message_id,
                payload,
                room,
            } => {
                let ask = self.messaging.send(BroadcastToApp {
                    package: pkg.clone(),
                    user,
                    message_id: message_id.clone(),
                    payload,
                    room,
                });
                ctx.spawn(ask.into_actor(self).map(move |res, act, _| match res {
                    Ok(Ok(n)) => {
                        tracing::debug!(package = %pkg, message_id = %message_id, reached = n, "app broadcast delivered")
                    }
                    Ok(Err(why)) => act.text_to_app(
                        &pkg,
                        outbound::tpa_connection_error("BROADCAST_FAILED", &why, &now_iso()),
                    ),
                    Err(_) => {}
                }));
            }
            MessagingRequest::Direct {
                message_id,
                target_user,
                payload,
            } => {
                let ask = self.messaging.send(DirectToApp {
                    package: pkg.clone(),
                    user,
                    target: target_user,
                    message_id: message_id.clone(),
                    payload,
                });
                ctx.spawn(ask.into_actor(self).map(move |res, act, _| {
                    let error = match res {
                        Ok(Ok(())) => None,
                        Ok(Err(why)) => Some(why),
                        Err(_) => Some("messaging is not available".to_string()),
                    };
                    act.text_to_app(
                        &pkg,
                        wire::app_direct_message_response(
                            &message_id,
                            error.as_deref(),
                            &now_iso(),
                        ),
                    );
                }));
            }
            MessagingRequest::Discover { .. } => {
                // SDK apps discover users over REST
                // (`/api/app-communication/discover-users`); the socket
                // message has no answer the SDK reads.
                tracing::debug!(
                    package,
                    "app_user_discovery over the socket: use the REST route"
                );
            }
            MessagingRequest::JoinRoom {
                room,
                max_users,
                private,
                metadata,
            } => {
                let ask = self.messaging.send(JoinAppRoom {
                    package: pkg.clone(),
                    user,
                    room: room.clone(),
                    max_users,
                    private,
                    metadata,
                });
                ctx.spawn(ask.into_actor(self).map(move |res, act, _| {
                    if let Ok(Err(why)) = res {
                        act.text_to_app(
                            &pkg,
                            outbound::tpa_connection_error("ROOM_JOIN_FAILED", &why, &now_iso()),
                        );
                    }
                }));
            }
            MessagingRequest::LeaveRoom { room } => self.messaging.do_send(LeaveAppRoom {
                package: pkg,
                user,
                room,
            }),
        }
    }

    /// A messaging request whose fields were wrong.
    pub(super) fn invalid_messaging_request(
        &mut self,
        package: &str,
        kind: &str,
        id: Option<&str>,
        reason: &str,
    ) {
        let text = match (kind, id) {
            ("app_direct_message", Some(id)) => {
                wire::app_direct_message_response(id, Some(reason), &now_iso())
            }
            _ => outbound::tpa_connection_error("INVALID_REQUEST", reason, &now_iso()),
        };
        self.text_to_app(package, text);
    }
}

/// What another user's app sent to one of this session's apps.
impl Handler<AppInbox> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: AppInbox, _: &mut Context<Self>) {
        let running = self
            .apps
            .get(&msg.package)
            .is_some_and(|a| a.state == AppState::Running);
        if running {
            self.text_to_app(&msg.package, msg.text);
        }
    }
}
