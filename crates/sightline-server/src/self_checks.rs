//! The connections' own checks, paced by one actor for every connection.
//!
//! Pings and silence are the session's health monitor's business; a
//! connection only makes sure it is not left behind (its session died, or
//! no monitor watches it any more: see [`crate::frames::self_check`]). A
//! timer in each connection actor would be polled every time the actor
//! wakes — on every frame it relays — so the connections carry no timer:
//! [`SelfChecks`] holds each one's [`SelfCheck`] recipient and sends it
//! once per heartbeat interval.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::SendError;
use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};
use sightline_runtime::ConnectionId;

/// Time for a connection to run its own checks.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct SelfCheck;

/// A connection opened: check it every interval.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckConnection {
    pub id: ConnectionId,
    pub inbox: Recipient<SelfCheck>,
}

/// A connection closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetConnection {
    pub id: ConnectionId,
}

/// Paces every connection's self checks.
pub struct SelfChecks {
    interval: Duration,
    /// Bounded by the connection limit: a connection is here from its
    /// start to its stop.
    connections: HashMap<ConnectionId, Recipient<SelfCheck>>,
}

impl SelfChecks {
    pub fn new(interval: Duration) -> Self {
        SelfChecks {
            interval,
            connections: HashMap::new(),
        }
    }
}

impl Actor for SelfChecks {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, _| {
            // A connection whose mailbox is full is busy; it is checked
            // next time. One that is gone is forgotten.
            act.connections
                .retain(|_, inbox| !matches!(inbox.try_send(SelfCheck), Err(SendError::Closed(_))));
        });
    }
}

impl Handler<CheckConnection> for SelfChecks {
    type Result = ();
    fn handle(&mut self, msg: CheckConnection, _: &mut Context<Self>) {
        self.connections.insert(msg.id, msg.inbox);
    }
}

impl Handler<ForgetConnection> for SelfChecks {
    type Result = ();
    fn handle(&mut self, msg: ForgetConnection, _: &mut Context<Self>) {
        self.connections.remove(&msg.id);
    }
}
