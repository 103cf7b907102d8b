//! Prometheus metrics of one runtime, scraped at `GET /metrics`.
//!
//! Counters on the message path (messages in and out by type) are resolved
//! once per label into an actor-local [`LabelledCounters`] cache, so a
//! message costs one atomic add on a counter handle, never a label lookup.
//! Figures that already exist elsewhere — live sessions and connections, the
//! health figures, actor counts and failures — are copied into their
//! metrics when the page is rendered, so they are counted only once.

use std::sync::Mutex;
use std::time::Duration;

use prometheus::core::{AtomicU64, GenericCounter};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sightline_probe::{ActorKind, ActorRegistry};

/// Latency buckets of the message path, in seconds (50 µs to 1 s).
const FAST_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Latency buckets of calls to app servers and app starts, in seconds.
const SLOW_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric of one runtime.
pub struct Metrics {
    registry: Registry,
    sessions: IntGauge,
    health_monitors: IntGauge,
    connections: IntGaugeVec,
    actors: IntGaugeVec,
    actor_failures: IntCounterVec,
    messages_in: IntCounterVec,
    messages_out: IntCounterVec,
    /// Glasses event received → written to an app's socket.
    pub fanout_latency: Histogram,
    webhook_duration: HistogramVec,
    webhook_failures: IntCounterVec,
    /// `start_app` (or a webhook-driven start) → the app's init accepted.
    pub app_start: Histogram,
    transcription_streams: IntGauge,
    transcription_errors: IntCounter,
    pub lc3_frames_decoded: IntCounter,
    pub lc3_frames_concealed: IntCounter,
    /// Events kept for an app while its connection was away.
    pub replay_buffered: IntCounter,
    replay_replayed: IntCounter,
    replay_dropped: IntCounter,
    display_events: IntCounterVec,
    connection_timeouts: IntCounterVec,
    reconnects: IntCounterVec,
    resurrections: IntCounter,
    webhook_fast_failures: IntCounter,
    /// Audio frames not sent to a client that was not keeping up.
    pub audio_dropped: IntCounter,
    /// Connections closed because their client stopped reading.
    pub slow_consumer_closes: IntCounter,
    limit_refusals: IntCounterVec,
    device_requests: IntCounterVec,
    device_request_duration: HistogramVec,
    device_answers_dropped: IntCounterVec,
    /// `GET /api/tts` requests, by provider and outcome.
    pub tts_requests: IntCounterVec,
    /// `GET /api/tts` requests answered from the speech cache.
    pub tts_cache_hits: IntCounter,
    cluster_moves: IntCounterVec,
    cluster_renewals: IntCounterVec,
    cluster_requests: Histogram,
    /// Glasses landing here → the owner's hand-over received.
    pub cluster_handover: Histogram,
    cluster_messaging: IntCounterVec,
    /// Serialises renders, which bring the actor registry's figures up
    /// to date.
    render: Mutex<()>,
}

/// The metric of each health figure: the figures count into these and
/// read from them, so `/stats`, `/metrics` and the logs show one count.
pub struct FigureMetrics {
    pub live_sessions: IntGauge,
    pub live_monitors: IntGauge,
    pub glasses_connections: IntGauge,
    pub app_connections: IntGauge,
    pub glasses_timeouts: IntCounter,
    pub app_timeouts: IntCounter,
    pub glasses_reconnects: IntCounter,
    pub app_reconnects: IntCounter,
    pub resurrections: IntCounter,
    pub replayed_events: IntCounter,
    pub dropped_events: IntCounter,
    pub webhook_fast_failures: IntCounter,
}

/// What became of a display request.
#[derive(Debug, Clone, Copy)]
pub enum DisplayOutcome {
    /// Sent to the glasses.
    Sent,
    /// Held back by the throttle (a later one may replace it).
    Throttled,
    /// Refused as invalid.
    Rejected,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::for_instance(None)
    }

    /// The metrics of one instance of a cluster: every metric carries an
    /// `instance` label with its id.
    pub fn for_instance(instance: Option<&str>) -> Metrics {
        let labels =
            instance.map(|i| std::iter::once(("instance".to_string(), i.to_string())).collect());
        let registry = Registry::new_custom(Some("sightline".into()), labels).expect(DEFINED);
        let r = &registry;
        Metrics {
            sessions: gauge(r, "sessions", "User sessions running now"),
            health_monitors: gauge(r, "health_monitors", "Health monitors running now"),
            connections: gauge_vec(r, "connections", "Open WebSocket connections", &["kind"]),
            actors: gauge_vec(r, "actors", "Live actors", &["kind"]),
            actor_failures: counter_vec(
                r,
                "actor_failures_total",
                "Failures recorded by actors (refused frames, provider and webhook failures)",
                &["kind"],
            ),
            messages_in: counter_vec(
                r,
                "messages_in_total",
                "Messages received, by sender and type",
                &["source", "type"],
            ),
            messages_out: counter_vec(
                r,
                "messages_out_total",
                "Messages written to sockets, by receiver and type",
                &["target", "type"],
            ),
            fanout_latency: histogram(
                r,
                "fanout_latency_seconds",
                "Glasses event received to data_stream written to an app socket",
                FAST_BUCKETS,
            ),
            webhook_duration: histogram_vec(
                r,
                "webhook_duration_seconds",
                "Duration of calls to app servers, by outcome",
                &["outcome"],
            ),
            webhook_failures: counter_vec(
                r,
                "webhook_failures_total",
                "Failed calls to app servers, by reason",
                &["reason"],
            ),
            app_start: histogram(
                r,
                "app_start_seconds",
                "App start requested to the app's connection accepted",
                SLOW_BUCKETS,
            ),
            transcription_streams: gauge(
                r,
                "transcription_streams",
                "Transcription streams running now",
            ),
            transcription_errors: counter(
                r,
                "transcription_provider_errors_total",
                "Speech provider connections that failed",
            ),
            lc3_frames_decoded: counter(r, "lc3_frames_decoded_total", "LC3 frames decoded"),
            lc3_frames_concealed: counter(
                r,
                "lc3_frames_concealed_total",
                "LC3 frames replaced by concealment (damaged or truncated)",
            ),
            replay_buffered: counter(
                r,
                "replay_buffered_total",
                "Events kept in replay buffers for apps whose connection was away",
            ),
            replay_replayed: counter(
                r,
                "replay_delivered_total",
                "Kept events delivered after a reconnect",
            ),
            replay_dropped: counter(
                r,
                "replay_dropped_total",
                "Kept events dropped because a replay buffer was full",
            ),
            display_events: counter_vec(
                r,
                "display_events_total",
                "Display requests, by what became of them",
                &["outcome"],
            ),
            connection_timeouts: counter_vec(
                r,
                "connection_timeouts_total",
                "Connections closed by the health monitor for silence",
                &["kind"],
            ),
            reconnects: counter_vec(
                r,
                "reconnects_total",
                "Connections that came back within their grace period",
                &["kind"],
            ),
            resurrections: counter(
                r,
                "resurrections_total",
                "Apps restarted by Sightline after they vanished",
            ),
            webhook_fast_failures: counter(
                r,
                "webhook_circuit_open_total",
                "Calls to app servers refused at once by an open circuit breaker",
            ),
            audio_dropped: counter(
                r,
                "audio_dropped_total",
                "Audio frames not sent to a client that was not keeping up",
            ),
            slow_consumer_closes: counter(
                r,
                "slow_consumer_closes_total",
                "Connections closed because their client stopped reading",
            ),
            limit_refusals: counter_vec(
                r,
                "limit_refusals_total",
                "Messages or connections refused by a limit",
                &["limit"],
            ),
            device_requests: counter_vec(
                r,
                "device_requests_total",
                "Device requests of apps (photo, audio, location, LED, Wi-Fi setup, streams), by kind and outcome",
                &["kind", "outcome"],
            ),
            device_request_duration: histogram_vec(
                r,
                "device_request_seconds",
                "Device request asked to settled, by kind",
                &["kind"],
            ),
            device_answers_dropped: counter_vec(
                r,
                "device_answers_dropped_total",
                "Answers from the phone that no request waited for, by kind and reason",
                &["kind", "reason"],
            ),
            tts_requests: counter_vec(
                r,
                "tts_requests_total",
                "Text-to-speech requests, by provider and outcome",
                &["provider", "outcome"],
            ),
            tts_cache_hits: counter(
                r,
                "tts_cache_hits_total",
                "Text-to-speech requests answered from the speech cache",
            ),
            cluster_moves: counter_vec(
                r,
                "cluster_ownership_moves_total",
                "Users whose ownership changed here: claimed, handed_in, handed_out, fenced, released",
                &["kind"],
            ),
            cluster_renewals: counter_vec(
                r,
                "cluster_lease_renewals_total",
                "Lease renewals, by result (ok, conflict, unavailable)",
                &["result"],
            ),
            cluster_requests: histogram(
                r,
                "cluster_request_seconds",
                "Requests to another instance's session, until answered",
                SLOW_BUCKETS,
            ),
            cluster_handover: histogram(
                r,
                "cluster_handover_seconds",
                "From glasses landing here to the owner's hand-over received",
                SLOW_BUCKETS,
            ),
            cluster_messaging: counter_vec(
                r,
                "cluster_messaging_total",
                "App-to-app messaging announcements between instances: sent, received, dropped (backlog full)",
                &["direction"],
            ),
            render: Mutex::new(()),
            registry,
        }
    }

    /// A cache of the inbound message counters of one sender kind.
    pub fn messages_in(&self, source: &'static str) -> LabelledCounters {
        LabelledCounters::new(self.messages_in.clone(), source)
    }

    /// A cache of the outbound message counters of one receiver kind.
    pub fn messages_out(&self, target: &'static str) -> LabelledCounters {
        LabelledCounters::new(self.messages_out.clone(), target)
    }

    /// One call to an app server finished.
    pub fn webhook(&self, elapsed: Duration, failure: Option<&'static str>) {
        let outcome = if failure.is_some() { "failed" } else { "ok" };
        self.webhook_duration
            .with_label_values(&[outcome])
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = failure {
            self.webhook_failures.with_label_values(&[reason]).inc();
        }
    }

    /// A limit refused something: `size`, `rate`, `rate_close`,
    /// `connections` or `subscriptions`.
    pub fn refused(&self, limit: &'static str) {
        self.limit_refusals.with_label_values(&[limit]).inc();
    }

    /// A device request settled.
    pub fn device_settled(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        self.device_requests
            .with_label_values(&[kind, outcome])
            .inc();
        self.device_request_duration
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    /// An answer from the phone no request waited for.
    pub fn device_answer_dropped(&self, kind: &'static str, reason: &'static str) {
        self.device_answers_dropped
            .with_label_values(&[kind, reason])
            .inc();
    }

    pub fn display(&self, outcome: DisplayOutcome) {
        let label = match outcome {
            DisplayOutcome::Sent => "sent",
            DisplayOutcome::Throttled => "throttled",
            DisplayOutcome::Rejected => "rejected",
        };
        self.display_events.with_label_values(&[label]).inc();
    }

    /// A user's ownership changed on this instance.
    pub fn cluster_moved(&self, kind: &'static str) {
        self.cluster_moves.with_label_values(&[kind]).inc();
    }

    /// A lease renewal ended: `ok`, `conflict` or `unavailable`.
    pub fn cluster_renewal(&self, result: &'static str) {
        self.cluster_renewals.with_label_values(&[result]).inc();
    }

    /// A request to another instance's session was answered (or failed).
    pub fn cluster_request(&self, took: Duration) {
        self.cluster_requests.observe(took.as_secs_f64());
    }

    /// App-to-app messaging crossed instances: `sent`, `received`, or
    /// `dropped` (the publishing backlog was full).
    pub fn cluster_messaging(&self, direction: &'static str) {
        self.cluster_messaging.with_label_values(&[direction]).inc();
    }

    /// The metrics the health figures count into.
    pub fn figure_metrics(&self) -> FigureMetrics {
        let conn = |k: &str| self.connections.with_label_values(&[k]);
        let timeout = |k: &str| self.connection_timeouts.with_label_values(&[k]);
        let reconnect = |k: &str| self.reconnects.with_label_values(&[k]);
        FigureMetrics {
            live_sessions: self.sessions.clone(),
            live_monitors: self.health_monitors.clone(),
            glasses_connections: conn("glasses"),
            app_connections: conn("app"),
            glasses_timeouts: timeout("glasses"),
            app_timeouts: timeout("app"),
            glasses_reconnects: reconnect("glasses"),
            app_reconnects: reconnect("app"),
            resurrections: self.resurrections.clone(),
            replayed_events: self.replay_replayed.clone(),
            dropped_events: self.replay_dropped.clone(),
            webhook_fast_failures: self.webhook_fast_failures.clone(),
        }
    }

    /// The page in Prometheus text format. What the actor registry counts
    /// (actors per kind, their failures) is read from it now; everything
    /// else is counted straight into its metric.
    pub fn render(&self, actors: &ActorRegistry) -> String {
        let _one_at_a_time = self.render.lock();
        for (kind, n) in actors.counts() {
            self.actors.with_label_values(&[kind.name()]).set(n as i64);
            catch_up(
                &self.actor_failures.with_label_values(&[kind.name()]),
                actors.totals(kind).failures(),
            );
        }
        let streams = actors.counts()[&ActorKind::TranscriptionStream];
        self.transcription_streams.set(streams as i64);
        catch_up(
            &self.transcription_errors,
            actors.totals(ActorKind::TranscriptionStream).failures(),
        );
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Moves a counter up to a total kept elsewhere.
fn catch_up(counter: &GenericCounter<AtomicU64>, total: u64) {
    let have = counter.get();
    if total > have {
        counter.inc_by(total - have);
    }
}

/// Counters of one metric, resolved per label once and kept by one actor.
#[derive(Clone)]
pub struct LabelledCounters {
    vec: IntCounterVec,
    first: &'static str,
    /// The counters looked up so far, one per type seen (types are a fixed
    /// set, so this stays a few entries long; a scan of it is cheaper than
    /// hashing the label on every message).
    cache: Vec<(&'static str, IntCounter)>,
}

impl LabelledCounters {
    fn new(vec: IntCounterVec, first: &'static str) -> Self {
        LabelledCounters {
            vec,
            first,
            cache: Vec::new(),
        }
    }

    /// Counts one message of type `kind` (a label from a fixed set).
    pub fn inc(&mut self, kind: &'static str) {
        if let Some((_, counter)) = self.cache.iter().find(|(k, _)| *k == kind) {
            counter.inc();
            return;
        }
        let counter = self.vec.with_label_values(&[self.first, kind]);
        counter.inc();
        self.cache.push((kind, counter));
    }
}

// Metric names, help texts, labels and buckets are constants of this file:
// building and registering them fails only on a programming error (a
// malformed or duplicated name), which the unit test below would catch.
const DEFINED: &str = "metric definitions are constants and valid";

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect(DEFINED);
    r.register(Box::new(g.clone())).expect(DEFINED);
    g
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect(DEFINED);
    r.register(Box::new(g.clone())).expect(DEFINED);
    g
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect(DEFINED);
    r.register(Box::new(c.clone())).expect(DEFINED);
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect(DEFINED);
    r.register(Box::new(c.clone())).expect(DEFINED);
    c
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let h = Histogram::with_opts(opts).expect(DEFINED);
    r.register(Box::new(h.clone())).expect(DEFINED);
    h
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(SLOW_BUCKETS.to_vec());
    let h = HistogramVec::new(opts, labels).expect(DEFINED);
    r.register(Box::new(h.clone())).expect(DEFINED);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_defined_and_rendered() {
        let m = Metrics::new();
        let mut cache = m.messages_in("glasses");
        cache.inc("button_press");
        cache.inc("button_press");
        m.fanout_latency.observe(0.0004);
        m.display(DisplayOutcome::Throttled);
        m.webhook(Duration::from_millis(20), Some("timeout"));
        let figures = m.figure_metrics();
        figures.live_sessions.add(2);
        figures.replayed_events.inc_by(7);
        let actors = ActorRegistry::new();
        let page = m.render(&actors);
        assert!(page
            .contains("sightline_messages_in_total{source=\"glasses\",type=\"button_press\"} 2"));
        assert!(page.contains("sightline_sessions 2"));
        assert!(page.contains("sightline_replay_delivered_total 7"));
        assert!(page.contains("sightline_fanout_latency_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(page.contains("sightline_display_events_total{outcome=\"throttled\"} 1"));
        assert!(page.contains("sightline_webhook_failures_total{reason=\"timeout\"} 1"));
        // Rendering again counts nothing twice.
        let again = m.render(&actors);
        assert!(again.contains("sightline_replay_delivered_total 7"));
    }
}
