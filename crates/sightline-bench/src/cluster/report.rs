//! What the cluster scenario reports: its figures as JSON, and one line
//! per figure on the terminal.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ClusterArgs;
use crate::hist::{Histogram, Percentiles};
use crate::scale::ScaleResult;

/// Percentiles (ms) of samples in microseconds.
pub fn percentiles(us: &[u64]) -> Percentiles {
    let h = Histogram::default();
    for &v in us {
        h.record(v);
    }
    h.percentiles()
}

/// One instance after the ramp.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceFigures {
    pub id: String,
    pub addr: String,
    /// Sessions whose glasses the workers hold there.
    pub sessions_held: u64,
    /// Sessions its supervisor counts (`/stats`).
    pub sessions_server: Option<u64>,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    /// (after − before) / sessions held.
    pub rss_per_session_kib: f64,
    pub open_fds: usize,
    /// Percent of one core.
    pub ramp_cpu: f64,
    pub idle_cpu: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RampFigures {
    pub sessions_ok: u64,
    pub failures: u64,
    pub apps_missing: u64,
    pub ramp_secs: f64,
    pub generator_rss_mib: f64,
    pub generator_ramp_cpu: f64,
    pub generator_idle_cpu: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoverFigures {
    pub moved: u64,
    pub failed: u64,
    /// 409/503 answers retried on the way.
    pub retries: u64,
    /// New glasses socket opened → `connection_ack`.
    pub to_ack: Percentiles,
    /// New glasses socket opened → every app's new socket accepted on the
    /// new owner.
    pub to_apps: Percentiles,
    /// `sightline_cluster_handover_seconds` over every instance: mean, ms.
    pub server_mean_ms: f64,
    pub server_count: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePhase {
    pub kind: String,
    pub pairs: u64,
    pub sent: u64,
    pub delivered: u64,
    pub refused: u64,
    pub latency: Percentiles,
    /// Every instance's CPU above idle, per delivered message.
    pub server_cpu_us_per_message: f64,
    /// nats-server's CPU above idle, per delivered message.
    pub nats_cpu_us_per_message: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryFigures {
    pub killed: String,
    /// Sessions alive (glasses held) when the instance was killed.
    pub sessions_at_kill: u64,
    pub sessions_on_killed: u64,
    pub back: u64,
    pub failed: u64,
    pub retries: u64,
    /// Kill → the last user's `connection_ack` elsewhere, seconds.
    pub all_in_secs: f64,
    /// Kill → the last app re-attached, seconds.
    pub all_apps_secs: f64,
    pub to_ack: Percentiles,
    pub to_apps: Percentiles,
    /// Survivors' sessions (`/stats`) and open files afterwards.
    pub survivors_sessions: BTreeMap<String, Option<u64>>,
    pub survivors_open_fds: BTreeMap<String, usize>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResult {
    pub params: ClusterArgs,
    pub machine: serde_json::Value,
    pub secs: f64,
    pub ramp: RampFigures,
    pub instances: Vec<InstanceFigures>,
    pub handover: HandoverFigures,
    pub messages: Vec<MessagePhase>,
    pub recovery: Option<RecoveryFigures>,
    /// `sightline_cluster_*` samples of each instance, at the end (the
    /// killed one: just before it was killed).
    pub cluster_metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// One Sightline alone (memory store) at one instance's share of the
    /// sessions, for the memory figures.
    pub single_process: Option<ScaleResult>,
}

fn ms(p: &Percentiles) -> String {
    format!("p50 {:.1} ms p99 {:.1} ms", p.p50, p.p99)
}

fn secs(p: &Percentiles) -> String {
    format!("p50 {:.2} s p99 {:.2} s", p.p50 / 1000.0, p.p99 / 1000.0)
}

/// One line per figure.
pub fn print_summary(r: &ClusterResult) {
    let held: Vec<String> = r
        .instances
        .iter()
        .map(|i| {
            format!(
                "{} {} (server {})",
                i.id,
                i.sessions_held,
                i.sessions_server.map_or("?".into(), |s| s.to_string())
            )
        })
        .collect();
    println!(
        "cluster sessions: {} held ({} failed, {} apps missing) in {:.1} s, {} WebSockets: {}",
        r.ramp.sessions_ok,
        r.ramp.failures,
        r.ramp.apps_missing,
        r.ramp.ramp_secs,
        r.ramp.sessions_ok * (1 + r.params.apps as u64),
        held.join(" / ")
    );
    let mem: Vec<String> = r
        .instances
        .iter()
        .map(|i| {
            format!(
                "{} {:.1} KiB ({:.0} → {:.0} MiB, {} fds, idle CPU {:.1}%)",
                i.id,
                i.rss_per_session_kib,
                i.rss_before_mib,
                i.rss_after_mib,
                i.open_fds,
                i.idle_cpu
            )
        })
        .collect();
    let single = r.single_process.as_ref().map_or(String::new(), |s| {
        format!(
            "; single process {:.1} KiB/session at {} sessions (idle CPU {:.1}%)",
            s.rss_per_session_kib, s.sessions_ok, s.server_idle_cpu
        )
    });
    println!("cluster memory per session: {}{single}", mem.join(", "));
    let h = &r.handover;
    println!(
        "cluster hand-over: {} users moved ({} failed, {} refusals retried): to connection_ack {}; until every app re-attached {}; server-side hand-over mean {:.1} ms over {}",
        h.moved,
        h.failed,
        h.retries,
        ms(&h.to_ack),
        ms(&h.to_apps),
        h.server_mean_ms,
        h.server_count
    );
    let phase = |m: &MessagePhase| {
        format!(
            "{} {} ({} delivered of {} sent, {} refused; CPU per message {:.0} µs in the instances + {:.0} µs in nats-server)",
            m.kind,
            ms(&m.latency),
            m.delivered,
            m.sent,
            m.refused,
            m.server_cpu_us_per_message,
            m.nats_cpu_us_per_message
        )
    };
    let ratio = match (r.messages.first(), r.messages.get(1)) {
        (Some(l), Some(c)) if l.latency.p50 > 0.0 => {
            format!("; cross/local p50 ×{:.1}", c.latency.p50 / l.latency.p50)
        }
        _ => String::new(),
    };
    println!(
        "cluster messages: {}{ratio}",
        r.messages.iter().map(phase).collect::<Vec<_>>().join("; ")
    );
    match &r.recovery {
        Some(k) => println!(
            "cluster recovery: instance {} killed (kill -9) holding {} of {} sessions, lease ttl {} ms: {} users back in after {:.2} s ({}, {} refusals retried), every app re-attached after {:.2} s ({}); {} failed; survivors now hold {}",
            k.killed,
            k.sessions_on_killed,
            k.sessions_at_kill,
            r.params.lease_ttl_ms,
            k.back,
            k.all_in_secs,
            secs(&k.to_ack),
            k.retries,
            k.all_apps_secs,
            secs(&k.to_apps),
            k.failed,
            k.survivors_sessions
                .iter()
                .map(|(id, s)| format!(
                    "{id} {} ({} fds)",
                    s.map_or("?".into(), |s| s.to_string()),
                    k.survivors_open_fds.get(id).copied().unwrap_or(0)
                ))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
        None => println!("cluster recovery: not run"),
    }
}
