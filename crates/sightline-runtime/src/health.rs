//! The health monitor: one actor per user session that watches every
//! connection of that session.
//!
//! It knows each connection with its metadata (glasses or app, package,
//! connection id, when it connected, when it was last heard from). Every
//! `heartbeat_interval` it asks each connection to ping its client; the
//! connection answers with [`Activity`] — when it last received anything
//! (any frame or pong counts). A connection silent for longer than
//! `connection_timeout` is closed gracefully with 1001 "Connection timeout
//! detected", and the session is told in the same step
//! ([`ConnectionTimedOut`]), so the session never holds a connection the
//! monitor has given up on (the original cloud's global monitor closed
//! sockets behind the sessions' backs). A connection whose mailbox is
//! already gone cannot be sent a close; it is forgotten and the session is
//! told all the same. Every `stats_interval` it logs the session's health.
//!
//! The monitor lives and dies with its session: the session starts it and
//! stops it, and a monitor whose session has died stops on its next tick.
//!
//! The monitor does not know the session's type: it holds a recipient of
//! each message it sends back ([`ConnectionTimedOut`], [`GetSessionFigures`]),
//! so the session depends on the monitor and never the other way round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
};
use serde::Serialize;

use crate::figures::SessionFigures;
use crate::link::{close, Activity, ConnectionId, ConnectionLink, Outbound};
use crate::shared::RuntimeShared;
use sightline_probe::ProbeGuard;

pub use crate::connection::ConnectionRole;

/// The timings the monitor works with.
#[derive(Debug, Clone, Copy)]
pub struct HealthTimings {
    /// How often each connection is pinged (`HEARTBEAT_INTERVAL_MS`).
    pub heartbeat_interval: Duration,
    /// Silence after which a connection is closed (`CONNECTION_TIMEOUT_MS`).
    pub connection_timeout: Duration,
    /// How often the session's health is logged (`STATS_INTERVAL_MS`).
    pub stats_interval: Duration,
}

struct Watched {
    role: ConnectionRole,
    link: ConnectionLink,
    connected_at: Instant,
    last_seen: Instant,
}

/// Where the monitor reports to: its session, known only by the messages
/// it takes from the monitor.
pub struct SessionReplies {
    /// Told of every connection the monitor closed or found gone.
    pub timed_out: Recipient<ConnectionTimedOut>,
    /// Asked for the session's own figures, for the stats log.
    pub figures: Recipient<GetSessionFigures>,
}

/// The monitor of one user session.
pub struct HealthMonitor {
    user_id: String,
    session: SessionReplies,
    timings: HealthTimings,
    shared: Arc<RuntimeShared>,
    connections: BTreeMap<ConnectionId, Watched>,
    /// Connections this monitor closed for silence.
    /// This monitor's entry in the actor registry.
    probe: ProbeGuard,
}

impl HealthMonitor {
    pub fn new(
        user_id: String,
        session: SessionReplies,
        timings: HealthTimings,
        shared: Arc<RuntimeShared>,
        probe: ProbeGuard,
    ) -> Self {
        probe.set_user(&user_id);
        HealthMonitor {
            probe,
            user_id,
            session,
            timings,
            shared,
            connections: BTreeMap::new(),
        }
    }

    /// One heartbeat: close the silent, ping the rest.
    fn beat(&mut self, ctx: &mut Context<Self>) {
        self.probe.handled();
        if !self.session.timed_out.connected() {
            // The session died; its connections notice by themselves and
            // close 1011 so their clients reconnect into a fresh session.
            ctx.stop();
            return;
        }
        let now = Instant::now();
        let me = ctx.address().recipient();
        let mut silent = Vec::new();
        for (id, c) in &self.connections {
            if !c.link.out.connected() {
                silent.push((*id, false));
            } else if now.saturating_duration_since(c.last_seen) > self.timings.connection_timeout {
                silent.push((*id, true));
            } else {
                c.link.send(Outbound::Ping { reply: me.clone() });
            }
        }
        for (id, closable) in silent {
            let Some(c) = self.connections.remove(&id) else {
                continue;
            };
            if closable {
                self.probe.failed();
                tracing::info!(user = %self.user_id, connection = %id, role = ?c.role,
                    silent_ms = now.saturating_duration_since(c.last_seen).as_millis() as u64,
                    "connection silent too long; closing it");
                c.link
                    .close(close::GOING_AWAY, "Connection timeout detected");
            } else {
                tracing::info!(user = %self.user_id, connection = %id, role = ?c.role,
                    "connection gone without a close; forgetting it");
            }
            self.shared.figures.connection_closed(&c.role);
            self.session.timed_out.do_send(ConnectionTimedOut {
                id,
                role: c.role,
                silent: closable,
            });
        }
    }

    fn snapshot(&self) -> HealthSnapshot {
        let now = Instant::now();
        HealthSnapshot {
            connections: self
                .connections
                .iter()
                .map(|(id, c)| ConnectionHealth {
                    id: id.to_string(),
                    role: c.role.clone(),
                    connected_ms: now.saturating_duration_since(c.connected_at).as_millis() as u64,
                    silent_ms: now.saturating_duration_since(c.last_seen).as_millis() as u64,
                })
                .collect(),
        }
    }

    fn log_stats(&mut self, ctx: &mut Context<Self>) {
        let snapshot = self.snapshot();
        let user = self.user_id.clone();
        let figures = self.session.figures.send(GetSessionFigures);
        ctx.spawn(actix::fut::wrap_future(async move {
            let session = figures.await.ok();
            let glasses = snapshot
                .connections
                .iter()
                .filter(|c| c.role == ConnectionRole::Glasses)
                .count();
            tracing::info!(
                user = %user,
                glasses,
                apps = snapshot.connections.len() - glasses,
                session = ?session,
                "session health"
            );
        }));
    }
}

impl Actor for HealthMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared.figures.monitor_lives(1);
        ctx.run_interval(self.timings.heartbeat_interval, |act, ctx| act.beat(ctx));
        ctx.run_interval(self.timings.stats_interval, |act, ctx| act.log_stats(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.shared.figures.monitor_lives(-1);
        for c in self.connections.values() {
            self.shared.figures.connection_closed(&c.role);
        }
    }
}

// ------------------------------------------------------------- messages --

/// Start watching a connection of the session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub role: ConnectionRole,
    pub link: ConnectionLink,
}

impl Handler<Watch> for HealthMonitor {
    type Result = ();
    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) {
        self.probe.handled();
        let now = Instant::now();
        self.shared.figures.connection_opened(&msg.role);
        let previous = self.connections.insert(
            msg.link.id,
            Watched {
                role: msg.role,
                link: msg.link,
                connected_at: now,
                last_seen: now,
            },
        );
        if let Some(p) = previous {
            self.shared.figures.connection_closed(&p.role);
        }
    }
}

/// Stop watching a connection (it closed, or was replaced).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub id: ConnectionId,
}

impl Handler<Unwatch> for HealthMonitor {
    type Result = ();
    fn handle(&mut self, msg: Unwatch, _: &mut Context<Self>) {
        self.probe.handled();
        if let Some(c) = self.connections.remove(&msg.id) {
            self.shared.figures.connection_closed(&c.role);
        }
    }
}

impl Handler<Activity> for HealthMonitor {
    type Result = ();
    fn handle(&mut self, msg: Activity, _: &mut Context<Self>) {
        self.probe.handled();
        if let Some(c) = self.connections.get_mut(&msg.id) {
            c.last_seen = c.last_seen.max(msg.last_seen);
        }
    }
}

/// The session ends: stop watching.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopMonitoring;

impl Handler<StopMonitoring> for HealthMonitor {
    type Result = ();
    fn handle(&mut self, _: StopMonitoring, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// One connection as the monitor sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionHealth {
    pub id: String,
    #[serde(flatten)]
    pub role: ConnectionRole,
    pub connected_ms: u64,
    pub silent_ms: u64,
}

/// The monitor's view of its session.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSnapshot {
    pub connections: Vec<ConnectionHealth>,
}

/// Asks for the monitor's view.
#[derive(Message)]
#[rtype(result = "HealthSnapshot")]
pub struct GetHealth;

impl Handler<GetHealth> for HealthMonitor {
    type Result = MessageResult<GetHealth>;
    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.snapshot())
    }
}

/// The monitor closed a connection that fell silent (or found it gone):
/// the session treats it as disconnected, in the same step.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectionTimedOut {
    pub id: ConnectionId,
    pub role: ConnectionRole,
    /// It fell silent and was closed (a timeout, counted by the session);
    /// otherwise it was found gone without a close.
    pub silent: bool,
}

/// Asks a session for its own figures (sent by the monitor for its stats).
#[derive(Message)]
#[rtype(result = "SessionFigures")]
pub struct GetSessionFigures;
