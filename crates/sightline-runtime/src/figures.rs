//! Health figures: what every session of the runtime counts, read by the
//! stats endpoint, the metrics and the logs, and each session's own
//! [`SessionFigures`].
//!
//! There is one count of each event: a figure *is* its Prometheus metric
//! (an atomic), so `/stats` reads the same number `/metrics` renders. Each
//! is touched once per connection change, timeout, reconnect or buffered
//! event — never per ordinary message. A session records an event of its
//! own once, with [`SessionFigures::record`], which counts it for the
//! session and for the runtime in the same call.

use serde::Serialize;

use crate::connection::ConnectionRole;
use crate::metrics::{FigureMetrics, Metrics};

/// Counters shared by every session of one runtime.
pub struct HealthFigures {
    m: FigureMetrics,
}

impl std::fmt::Debug for HealthFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
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

impl HealthFigures {
    /// Figures counting into `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        HealthFigures {
            m: metrics.figure_metrics(),
        }
    }

    /// A session actor started (`1`) or stopped (`-1`).
    pub fn session_lives(&self, delta: i64) {
        self.m.live_sessions.add(delta);
    }

    /// A health-monitor actor started (`1`) or stopped (`-1`).
    pub fn monitor_lives(&self, delta: i64) {
        self.m.live_monitors.add(delta);
    }

    pub fn connection_opened(&self, role: &ConnectionRole) {
        self.gauge(role).inc();
    }

    pub fn connection_closed(&self, role: &ConnectionRole) {
        self.gauge(role).dec();
    }

    fn gauge(&self, role: &ConnectionRole) -> &prometheus::IntGauge {
        match role {
            ConnectionRole::Glasses => &self.m.glasses_connections,
            ConnectionRole::App { .. } => &self.m.app_connections,
        }
    }

    pub fn webhook_fast_failure(&self) {
        self.m.webhook_fast_failures.inc();
    }

    pub fn snapshot(&self) -> HealthFiguresSnapshot {
        let m = &self.m;
        HealthFiguresSnapshot {
            live_sessions: m.live_sessions.get(),
            live_monitors: m.live_monitors.get(),
            glasses_connections: m.glasses_connections.get(),
            app_connections: m.app_connections.get(),
            glasses_timeouts: m.glasses_timeouts.get(),
            app_timeouts: m.app_timeouts.get(),
            glasses_reconnects: m.glasses_reconnects.get(),
            app_reconnects: m.app_reconnects.get(),
            resurrections: m.resurrections.get(),
            replayed_events: m.replayed_events.get(),
            dropped_events: m.dropped_events.get(),
            webhook_fast_failures: m.webhook_fast_failures.get(),
        }
    }
}

/// Something that happened in one session, counted for the session and
/// for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    GlassesReconnected,
    AppReconnected,
    Resurrected,
    /// Kept events delivered after a reconnect.
    Replayed(u64),
    /// Events an app will never get.
    Dropped(u64),
    /// The health monitor closed a connection that fell silent.
    ConnectionTimedOut(ConnectionRole),
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

impl SessionFigures {
    /// Counts `event` in this session's figures and in the runtime's, in
    /// one place.
    pub fn record(&mut self, event: SessionEvent, runtime: &HealthFigures) {
        let m = &runtime.m;
        match event {
            SessionEvent::GlassesReconnected => {
                self.glasses_reconnects += 1;
                m.glasses_reconnects.inc();
            }
            SessionEvent::AppReconnected => {
                self.app_reconnects += 1;
                m.app_reconnects.inc();
            }
            SessionEvent::Resurrected => {
                self.resurrections += 1;
                m.resurrections.inc();
            }
            SessionEvent::Replayed(n) => {
                self.replayed_events += n;
                m.replayed_events.inc_by(n);
            }
            SessionEvent::Dropped(n) => {
                self.dropped_events += n;
                m.dropped_events.inc_by(n);
            }
            SessionEvent::ConnectionTimedOut(role) => {
                self.connection_timeouts += 1;
                match role {
                    ConnectionRole::Glasses => m.glasses_timeouts.inc(),
                    ConnectionRole::App { .. } => m.app_timeouts.inc(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record counts for the session, `/stats` and `/metrics` alike.
    #[test]
    fn an_event_is_counted_once_for_every_reader() {
        let metrics = Metrics::new();
        let runtime = HealthFigures::new(&metrics);
        let mut session = SessionFigures::default();
        session.record(SessionEvent::AppReconnected, &runtime);
        session.record(SessionEvent::Dropped(3), &runtime);
        session.record(
            SessionEvent::ConnectionTimedOut(ConnectionRole::Glasses),
            &runtime,
        );
        assert_eq!(session.app_reconnects, 1);
        assert_eq!(session.dropped_events, 3);
        assert_eq!(session.connection_timeouts, 1);
        let snap = runtime.snapshot();
        assert_eq!(
            (
                snap.app_reconnects,
                snap.dropped_events,
                snap.glasses_timeouts
            ),
            (1, 3, 1)
        );
        let page = metrics.render(&sightline_probe::ActorRegistry::new());
        assert!(
            page.contains("sightline_reconnects_total{kind=\"app\"} 1"),
            "{page}"
        );
        assert!(page.contains("sightline_replay_dropped_total 3"));
        assert!(page.contains("sightline_connection_timeouts_total{kind=\"glasses\"} 1"));
    }
}
