//! A session moving between instances of a cluster.
//!
//! The old owner's session answers [`HandOver`] with a [`Handoff`] and is
//! *moved* from then on: its glasses socket is closed, the apps' sockets
//! are left for the SDK to close once the new owner's `session_request`
//! reaches it, nothing is stopped or persisted, and the session asks the
//! supervisor to forget it. The new owner's session takes the hand-off in
//! with [`AdoptHandoff`] before its glasses are attached.

use std::time::Instant;

use actix::{AsyncContext, Context, Handler, Message, MessageResult};
use sightline_protocol::app::DisplayRequest;

use super::{RetireSession, UserSession};
use crate::display::DisplaySource;
use crate::figures::SessionEvent;
use crate::handoff::{DisplayHandoff, Handoff};
use crate::link::{close, ConnectionId, ConnectionLink};

/// The reason glasses and leftover app sockets are closed with on a move.
const MOVED: &str = "Session moved to another instance";

/// What is left of a session after it was handed over.
pub(super) struct Moved {
    /// App sockets still open here; the SDK closes them when it switches.
    pub links: Vec<ConnectionLink>,
}

/// Asks the session to give itself up to another instance.
#[derive(Message)]
#[rtype(result = "Handoff")]
pub struct HandOver;

impl Handler<HandOver> for UserSession {
    type Result = MessageResult<HandOver>;

    fn handle(&mut self, _: HandOver, ctx: &mut Context<Self>) -> Self::Result {
        let _in_session = self.span.clone().entered();
        if self.moved.is_some() {
            return MessageResult(Handoff {
                user_id: self.user.email.clone(),
                ..Handoff::default()
            });
        }
        let (apps, links) = self.apps.hand_off();
        let display = self
            .screen
            .current()
            .filter(|c| c.source == DisplaySource::App)
            .filter(|c| apps.iter().any(|a| a.record.package_name == c.owner()))
            .map(|c| DisplayHandoff {
                package: c.display.package_name.clone(),
                view: c.display.view.clone(),
                layout: c.display.layout.clone(),
                duration_ms: c.display.duration_ms,
                force_display: c.display.force_display,
            });
        for app in &apps {
            self.messaging_app_stopped(&app.record.package_name);
        }
        // Device requests of the glasses fail now, with the SDK's own
        // answers: the glasses are on their way to the new owner.
        self.devices_glasses_gone(ctx);
        if let Some(g) = self.glasses.take() {
            self.unwatch(g.id);
            g.close(close::GOING_AWAY, MOVED);
        }
        if let Some(handle) = self.glasses_grace.take() {
            ctx.cancel_future(handle);
        }
        for link in &links {
            self.unwatch(link.id);
        }
        self.probe.set_state("moved");
        tracing::info!(user = %self.user.email, apps = apps.len(), "session handed over to another instance");
        self.moved = Some(Moved { links });
        self.supervisor.do_send(RetireSession {
            user_id: self.user.email.clone(),
            seq: self.seq,
        });
        let mut handoff = Handoff {
            user_id: self.user.email.clone(),
            apps,
            display,
            dropped: 0,
        };
        handoff.bound();
        if handoff.dropped > 0 {
            self.record(SessionEvent::Dropped(handoff.dropped));
        }
        MessageResult(handoff)
    }
}

impl UserSession {
    /// Ends a moved session: app sockets the SDK has not closed by the time
    /// an app start may take are closed now.
    pub(super) fn finish_move(&mut self, ctx: &mut Context<Self>) {
        if self.moved.as_ref().is_some_and(|m| m.links.is_empty()) {
            return actix::ActorContext::stop(ctx);
        }
        let wait = self.config.app_start_timeout;
        ctx.run_later(wait, |act, ctx| {
            if let Some(moved) = act.moved.take() {
                for link in moved.links {
                    link.close(close::GOING_AWAY, MOVED);
                }
            }
            actix::ActorContext::stop(ctx);
        });
    }

    /// A moved session's app socket closed (the SDK switched over).
    pub(super) fn moved_app_left(&mut self, id: ConnectionId, ctx: &mut Context<Self>) {
        if let Some(moved) = self.moved.as_mut() {
            moved.links.retain(|l| l.id != id);
            if moved.links.is_empty() {
                actix::ActorContext::stop(ctx);
            }
        }
    }
}

/// A session handed over by another instance, for this (new) session to
/// take in before its glasses are attached.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AdoptHandoff(pub Handoff);

impl Handler<AdoptHandoff> for UserSession {
    type Result = ();

    fn handle(&mut self, AdoptHandoff(handoff): AdoptHandoff, ctx: &mut Context<Self>) {
        let _in_session = self.span.clone().entered();
        // The hand-off is what runs: the store's list is not started again.
        self.ever_connected = true;
        let now = Instant::now();
        self.count_dropped(handoff.dropped);
        for app in handoff.apps {
            let package = app.record.package_name.clone();
            let effects = self.apps.adopt(now, app);
            self.carry_out(effects, ctx);
            // Running already: no "starting" card on the glasses.
            self.screen_app_booted(&package, ctx);
        }
        if let Some(d) = handoff.display {
            if self.apps.contains_key(&d.package) {
                let request = DisplayRequest {
                    view: d.view,
                    layout: d.layout,
                    duration_ms: d.duration_ms,
                    force_display: d.force_display,
                };
                self.screen_request(&d.package, request, ctx);
            }
        }
    }
}

/// An app of this session reached another instance: point it here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RepointApp {
    pub package_name: String,
}

impl Handler<RepointApp> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: RepointApp, ctx: &mut Context<Self>) {
        let _in_session = self.span.clone().entered();
        let effects = self.apps.repoint(Instant::now(), &msg.package_name);
        self.carry_out(effects, ctx);
    }
}

/// Closes the glasses connection (the phone reconnects; in a cluster
/// being drained it lands on another instance, which asks for the
/// session). The session waits for the glasses as after any drop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseGlasses {
    pub code: u16,
    pub reason: &'static str,
}

impl Handler<CloseGlasses> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: CloseGlasses, _: &mut Context<Self>) {
        if let Some(g) = &self.glasses {
            g.close(msg.code, msg.reason);
        }
    }
}
