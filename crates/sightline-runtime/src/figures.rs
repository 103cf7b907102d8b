//! Health figures: counters every session of the runtime adds to, read by
//! the stats endpoint, the metrics and the logs, and each session's own
//! [`SessionFigures`].
//!
//! Each figure is an atomic counter touched once per connection change,
//! timeout, reconnect or buffered event — never per ordinary message — so
//! sessions on different threads do not contend on a lock.

use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::connection::ConnectionRole;

/// Counters shared by every session of one runtime.
#[derive(Debug, Default)]
pub struct HealthFigures {
    live_sessions: AtomicI64,
    live_monitors: AtomicI64,
    glasses_connections: AtomicI64,
    app_connections: AtomicI64,
    glasses_timeouts: AtomicU64,
    app_timeouts: AtomicU64,
    glasses_reconnects: AtomicU64,
    app_reconnects: AtomicU64,
    resurrections: AtomicU64,
    replayed_events: AtomicU64,
    dropped_events: AtomicU64,
    webhook_fast_failures: AtomicU64,
}

/// The figures at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthFiguresSnapshot {
    /// User-session actors running now.
    pub live_sessions: i64,
    /// Health-monitor actors running now.
    pub live_monitors: i64,
    pub glasses_connections: i64,
    pub app_connections: i64,
    pub glasses_timeouts: u64,
    pub app_timeouts: u64,
    pub glasses_reconnects: u64,
    pub app_reconnects: u64,
    pub resurrections: u64,
    pub replayed_events: u64,
    pub dropped_events: u64,
    /// Webhook calls refused at once because the app server's circuit
    /// breaker was open.
    pub webhook_fast_failures: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl HealthFigures {
    /// A session actor started (`1`) or stopped (`-1`).
    pub fn session_lives(&self, delta: i64) {
        self.live_sessions.fetch_add(delta, Ordering::Relaxed);
    }

    /// A health-monitor actor started (`1`) or stopped (`-1`).
    pub fn monitor_lives(&self, delta: i64) {
        self.live_monitors.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn connection_opened(&self, role: &ConnectionRole) {
        self.gauge(role).fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, role: &ConnectionRole) {
        self.gauge(role).fetch_sub(1, Ordering::Relaxed);
    }

    fn gauge(&self, role: &ConnectionRole) -> &AtomicI64 {
        match role {
            ConnectionRole::Glasses => &self.glasses_connections,
            ConnectionRole::App { .. } => &self.app_connections,
        }
    }

    pub fn timeout(&self, role: &ConnectionRole) {
        match role {
            ConnectionRole::Glasses => add(&self.glasses_timeouts, 1),
            ConnectionRole::App { .. } => add(&self.app_timeouts, 1),
        }
    }

    pub fn glasses_reconnected(&self) {
        add(&self.glasses_reconnects, 1);
    }

    pub fn app_reconnected(&self) {
        add(&self.app_reconnects, 1);
    }

    pub fn resurrected(&self) {
        add(&self.resurrections, 1);
    }

    pub fn replayed(&self, n: u64) {
        add(&self.replayed_events, n);
    }

    pub fn dropped(&self, n: u64) {
        add(&self.dropped_events, n);
    }

    pub fn webhook_fast_failure(&self) {
        add(&self.webhook_fast_failures, 1);
    }

    pub fn snapshot(&self) -> HealthFiguresSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HealthFiguresSnapshot {
            live_sessions: self.live_sessions.load(Ordering::Relaxed),
            live_monitors: self.live_monitors.load(Ordering::Relaxed),
            glasses_connections: self.glasses_connections.load(Ordering::Relaxed),
            app_connections: self.app_connections.load(Ordering::Relaxed),
            glasses_timeouts: get(&self.glasses_timeouts),
            app_timeouts: get(&self.app_timeouts),
            glasses_reconnects: get(&self.glasses_reconnects),
            app_reconnects: get(&self.app_reconnects),
            resurrections: get(&self.resurrections),
            replayed_events: get(&self.replayed_events),
            dropped_events: get(&self.dropped_events),
            webhook_fast_failures: get(&self.webhook_fast_failures),
        }
    }
}

/// What happened in one session, for the stats and the logs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionFigures {
    pub glasses_reconnects: u64,
    pub app_reconnects: u64,
    pub resurrections: u64,
    pub replayed_events: u64,
    pub dropped_events: u64,
    pub connection_timeouts: u64,
}
