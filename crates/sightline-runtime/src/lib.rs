//! Sightline's actor runtime.
//!
//! One [`SessionSupervisor`] owns every [`UserSession`]. A user session owns
//! all state of one user: the glasses connection, the running apps and their
//! subscriptions, what is on the display. Connections (the WebSocket actors
//! of the server crate) reach a session only through its mailbox, and a
//! session reaches a connection only through the [`ConnectionLink`] the
//! connection handed over, tagged with a [`ConnectionId`]. When a connection
//! stops, its mailbox closes: nothing can write to a dead socket, and a
//! late "disconnected" from a replaced connection is recognised by its id
//! and ignored.
//!
//! Reading order: [`config`], [`link`], [`connection`], [`supervisor`],
//! [`session`], [`health`], [`webhook`], [`shared`] (what every actor
//! shares), and the screen logic the sessions own: [`display`] (which app's
//! display reaches the glasses, and when) and [`dashboard`].
//!
//! No module depends on one that depends on it: an actor that answers its
//! creator holds a `Recipient` of the message it sends back (the health
//! monitor, a session towards the supervisor), and the
//! `sightline-modcheck` test fails when a cycle appears.

pub mod breaker;
pub mod config;
pub mod connection;
pub mod dashboard;
pub mod device;
pub mod devices;
pub mod display;
pub mod figures;
pub mod handoff;
pub mod health;
pub mod inbound;
pub mod lifecycle;
pub mod link;
pub mod messaging;
pub mod metrics;
pub mod microphone;
pub mod session;
pub mod shared;
pub mod supervisor;
pub mod webhook;

use std::sync::Arc;

use actix::{Actor, Addr};
use sightline_store::Store;

pub use config::RuntimeConfig;
pub use link::{ConnectionId, ConnectionLink, Outbound};
pub use session::{SessionHandle, UserSession};
pub use shared::RuntimeShared;
pub use supervisor::SessionSupervisor;

/// A running Sightline runtime: the supervisor, the store and the config.
/// Cheap to clone; every clone talks to the same actors.
#[derive(Clone)]
pub struct Runtime {
    pub supervisor: Addr<SessionSupervisor>,
    pub store: Arc<dyn Store>,
    pub config: Arc<RuntimeConfig>,
    /// Health figures, webhook breakers, the actor registry and the
    /// metrics, shared by every actor.
    pub shared: Arc<RuntimeShared>,
    /// The supervisor's id in the actor registry.
    pub supervisor_actor: u64,
    /// App-to-app messaging between users of the same app.
    pub messaging: Addr<messaging::AppMessaging>,
}

impl Runtime {
    /// The user's live session, if there is one (a supervisor that no
    /// longer answers, as at shutdown, has none).
    pub async fn live_session(&self, user: &str) -> Option<SessionHandle> {
        self.supervisor
            .send(supervisor::FindSession {
                user_id: user.to_string(),
            })
            .await
            .ok()
            .flatten()
    }

    /// Starts the supervisor and its session arbiters. Must be called from
    /// inside a running actix system.
    pub fn start(config: RuntimeConfig, store: Arc<dyn Store>) -> Runtime {
        let shared = Arc::new(RuntimeShared::for_instance(
            config.webhook_breaker,
            config.instance_id.as_deref(),
        ));
        let config = Arc::new(config);
        // App-to-app messaging on a thread of its own: a popular app's
        // presence fan-out never delays the supervisor's bookkeeping.
        let messaging =
            messaging::AppMessaging::start_in_arbiter(&actix::Arbiter::new().handle(), |_| {
                messaging::AppMessaging::new()
            });
        let supervisor = SessionSupervisor::new(
            config.clone(),
            store.clone(),
            shared.clone(),
            messaging.clone(),
        );
        let supervisor_actor = supervisor.actor_id();
        let supervisor = supervisor.start();
        Runtime {
            messaging,
            supervisor_actor,
            supervisor,
            store,
            config,
            shared,
        }
    }
}

/// Current time as the ISO string the wire uses.
pub(crate) fn now_iso() -> String {
    sightline_protocol::time::iso8601(chrono::Utc::now())
}
