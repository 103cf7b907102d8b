//! The measured phases of a cluster run, on instances and workers already
//! up: the ramp and idle, the two messaging phases, the hand-overs, and the
//! recovery of a killed instance.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::apps;
use super::infra::Instance;
use super::report::{
    percentiles, ClusterResult, HandoverFigures, InstanceFigures, MessagePhase, RampFigures,
    RecoveryFigures,
};
use super::wire::Fields;
use super::ClusterArgs;
use crate::procstat::{self, ProcSample};
use crate::scale::{sum_samples, Worker};

/// Sends `command` to every worker, then reads each one's `answer` line.
async fn all(
    workers: &mut [Worker],
    command: &str,
    answer: &str,
    within: Duration,
) -> Result<Vec<Fields>> {
    for w in workers.iter_mut() {
        w.send(command).await?;
    }
    let mut out = Vec::new();
    for w in workers.iter_mut() {
        out.push(Fields::parse(&w.line(answer, within).await?));
    }
    Ok(out)
}

fn samples(instances: &[Instance]) -> Vec<Option<ProcSample>> {
    instances.iter().map(Instance::sample).collect()
}

fn cpu_secs(s: &[Option<ProcSample>]) -> f64 {
    s.iter().flatten().map(|s| s.cpu_secs).sum()
}

fn cpu(a: &Option<ProcSample>, b: &Option<ProcSample>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => procstat::cpu_percent(a, b),
        _ => 0.0,
    }
}

fn mib(s: &Option<ProcSample>) -> f64 {
    s.map_or(0.0, |s| s.rss_bytes as f64 / 1048576.0)
}

/// Per-instance sums of the workers' `held` lists.
fn held_by_instance(answers: &[Fields], n: usize) -> Vec<u64> {
    let mut c = vec![0u64; n];
    for a in answers {
        for (i, v) in a.list("held").into_iter().enumerate().take(n) {
            c[i] += v;
        }
    }
    c
}

pub async fn phases(
    args: &ClusterArgs,
    instances: &mut [Instance],
    workers: &mut [Worker],
    recovery_sessions: usize,
    nats_pid: Option<u32>,
) -> Result<ClusterResult> {
    let nats_cpu = || {
        nats_pid
            .and_then(|p| procstat::sample(p).ok())
            .map_or(0.0, |s| s.cpu_secs)
    };
    let n = instances.len();
    let pids: Vec<u32> = workers.iter().map(|w| w.pid).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1. The ramp, then idle.
    let s0 = samples(instances);
    let g0 = sum_samples(&pids);
    let t = Instant::now();
    let done = all(workers, "GO", "DONE", Duration::from_secs(1800)).await?;
    let ramp_secs = t.elapsed().as_secs_f64();
    let s1 = samples(instances);
    let g1 = sum_samples(&pids);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s2 = samples(instances);
    let g2 = sum_samples(&pids);
    let n2 = nats_cpu();
    tokio::time::sleep(Duration::from_secs_f64(args.idle_secs)).await;
    let s3 = samples(instances);
    let g3 = sum_samples(&pids);
    let n3 = nats_cpu();
    let held = held_by_instance(&done, n);
    let mut figures = Vec::new();
    for (i, inst) in instances.iter().enumerate() {
        let after = s3[i]
            .map_or(0, |s| s.rss_bytes)
            .max(s2[i].map_or(0, |s| s.rss_bytes));
        let before = s0[i].map_or(0, |s| s.rss_bytes);
        figures.push(InstanceFigures {
            id: inst.id.clone(),
            addr: inst.addr.to_string(),
            sessions_held: held[i],
            sessions_server: inst.sessions().await,
            rss_before_mib: mib(&s0[i]),
            rss_after_mib: after as f64 / 1048576.0,
            rss_per_session_kib: after.saturating_sub(before) as f64
                / 1024.0
                / held[i].max(1) as f64,
            open_fds: procstat::open_fds(inst.pid),
            ramp_cpu: cpu(&s0[i], &s1[i]),
            idle_cpu: cpu(&s2[i], &s3[i]),
        });
    }
    let sum = |key: &str| done.iter().map(|d| d.num(key)).sum::<u64>();
    let ramp = RampFigures {
        sessions_ok: sum("ok"),
        failures: sum("failed"),
        apps_missing: sum("appsMissing"),
        ramp_secs,
        generator_rss_mib: g3.rss_bytes as f64 / 1048576.0,
        generator_ramp_cpu: procstat::cpu_percent(&g0, &g1),
        generator_idle_cpu: procstat::cpu_percent(&g2, &g3),
    };
    println!(
        "cluster: ramped {} sessions in {ramp_secs:.1} s ({} failed); held per instance {held:?}",
        ramp.sessions_ok, ramp.failures
    );
    let idle_wall = s2
        .iter()
        .zip(&s3)
        .find_map(|(a, b)| Some(b.as_ref()?.at.duration_since(a.as_ref()?.at).as_secs_f64()))
        .unwrap_or(1.0);
    let idle_cpu_rate = (cpu_secs(&s3) - cpu_secs(&s2)) / idle_wall.max(0.001);
    let idle_nats_rate = (n3 - n2) / idle_wall.max(0.001);

    // 2. Messages on one instance, then across two.
    let mut messages = Vec::new();
    for kind in ["local", "cross"] {
        let c0 = samples(instances);
        let nc0 = nats_cpu();
        let command = format!(
            "MSG {kind} {} {} {}",
            args.message_pairs, args.message_rate, args.message_secs
        );
        let within = Duration::from_secs_f64(args.message_secs + 60.0);
        let answers = all(workers, &command, "MSGD", within).await?;
        let c1 = samples(instances);
        let nc1 = nats_cpu();
        let wall = c0
            .iter()
            .zip(&c1)
            .find_map(|(a, b)| Some(b.as_ref()?.at.duration_since(a.as_ref()?.at).as_secs_f64()))
            .unwrap_or(1.0);
        let lat: Vec<u64> = answers.iter().flat_map(|a| a.list("lat")).collect();
        let total = |key: &str| answers.iter().map(|a| a.num(key)).sum::<u64>();
        let busy = (cpu_secs(&c1) - cpu_secs(&c0) - idle_cpu_rate * wall).max(0.0);
        let nats_busy = (nc1 - nc0 - idle_nats_rate * wall).max(0.0);
        let per_message = |cpu: f64| cpu * 1e6 / (lat.len().max(1) as f64);
        let phase = MessagePhase {
            kind: kind.to_string(),
            pairs: total("pairs"),
            sent: total("sent"),
            delivered: lat.len() as u64,
            refused: total("refused"),
            latency: percentiles(&lat),
            server_cpu_us_per_message: per_message(busy),
            nats_cpu_us_per_message: per_message(nats_busy),
        };
        println!(
            "cluster: {kind} messages: {} delivered of {} sent, p50 {:.2} ms p99 {:.2} ms",
            phase.delivered, phase.sent, phase.latency.p50, phase.latency.p99
        );
        messages.push(phase);
    }

    // 3. Hand-overs, each worker in turn.
    let (mut ack, mut full, mut moved, mut failed, mut retries) = (vec![], vec![], 0, 0, 0);
    let nw = workers.len();
    for (w, worker) in workers.iter_mut().enumerate() {
        let count = args.handovers / nw + usize::from(w < args.handovers % nw);
        if count == 0 {
            continue;
        }
        worker
            .send(&format!(
                "MOVE {count} {}",
                args.handover_concurrency.max(1)
            ))
            .await?;
        let within = Duration::from_secs(120 + count as u64);
        let a = Fields::parse(&worker.line("MOVED", within).await?);
        ack.extend(a.list("ack"));
        full.extend(a.list("full"));
        moved += a.num("ok");
        failed += a.num("failed");
        retries += a.num("retries");
    }
    let mut metrics = BTreeMap::new();
    for i in instances.iter() {
        metrics.insert(i.id.clone(), i.cluster_metrics().await);
    }
    let (mut h_sum, mut h_count) = (0.0, 0.0);
    for m in metrics.values() {
        for (k, v) in m {
            if k.starts_with("sightline_cluster_handover_seconds_sum") {
                h_sum += v;
            } else if k.starts_with("sightline_cluster_handover_seconds_count") {
                h_count += v;
            }
        }
    }
    let handover = HandoverFigures {
        moved,
        failed,
        retries,
        to_ack: percentiles(&ack),
        to_apps: percentiles(&full),
        server_mean_ms: if h_count > 0.0 {
            h_sum / h_count * 1000.0
        } else {
            0.0
        },
        server_count: h_count,
    };
    println!(
        "cluster: {moved} users moved ({failed} failed): ack p50 {:.1} ms, apps p50 {:.1} ms",
        handover.to_ack.p50, handover.to_apps.p50
    );

    // 4. Recovery of a killed instance.
    let recovery = recover(args, instances, workers, recovery_sessions, &mut metrics).await?;
    for i in instances.iter().filter(|i| i.running()) {
        metrics.insert(i.id.clone(), i.cluster_metrics().await);
    }
    Ok(ClusterResult {
        params: args.clone(),
        machine: procstat::machine(),
        secs: 0.0,
        ramp,
        instances: figures,
        handover,
        messages,
        recovery: Some(recovery),
        cluster_metrics: metrics,
        single_process: None,
    })
}

async fn recover(
    args: &ClusterArgs,
    instances: &mut [Instance],
    workers: &mut [Worker],
    recovery_sessions: usize,
    metrics: &mut BTreeMap<String, BTreeMap<String, f64>>,
) -> Result<RecoveryFigures> {
    let n = instances.len();
    let within = Duration::from_secs(60);
    let held = all(workers, "HELD", "HELD", within).await?;
    let per_worker: Vec<u64> = held.iter().map(|h| h.list("held").iter().sum()).collect();
    let total: u64 = per_worker.iter().sum();
    if total > recovery_sessions as u64 {
        println!(
            "cluster: ending {} sessions first, so the survivors can hold the other {recovery_sessions} within their open-file limit",
            total - recovery_sessions as u64
        );
        for (w, worker) in workers.iter_mut().enumerate() {
            let keep = per_worker[w] * recovery_sessions as u64 / total;
            worker.send(&format!("TRIM {keep}")).await?;
        }
        for worker in workers.iter_mut() {
            worker.line("TRIMMED", Duration::from_secs(600)).await?;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let held = held_by_instance(&all(workers, "HELD", "HELD", within).await?, n);
    let k = args.kill % n;
    let killed = instances[k].id.clone();
    metrics.insert(killed.clone(), instances[k].cluster_metrics().await);
    let kill_us = apps::epoch_us();
    instances[k].kill().await?;
    let command = format!(
        "KILLED {k} {kill_us} {} {}",
        args.reconnect_concurrency.max(1),
        args.retry_ms
    );
    let back = all(workers, &command, "BACK", Duration::from_secs(900)).await?;
    let ins: Vec<u64> = back.iter().flat_map(|b| b.list("in")).collect();
    let apps_back: Vec<u64> = back.iter().flat_map(|b| b.list("apps")).collect();
    let total = |key: &str| back.iter().map(|b| b.num(key)).sum::<u64>();
    let (mut survivors_sessions, mut survivors_open_fds) = (BTreeMap::new(), BTreeMap::new());
    for i in instances.iter().filter(|i| i.running()) {
        survivors_sessions.insert(i.id.clone(), i.sessions().await);
        survivors_open_fds.insert(i.id.clone(), procstat::open_fds(i.pid));
    }
    let max_secs = |v: &[u64]| v.iter().max().map_or(0.0, |&m| m as f64 / 1e6);
    Ok(RecoveryFigures {
        killed,
        sessions_at_kill: held.iter().sum(),
        sessions_on_killed: held[k],
        back: total("ok"),
        failed: total("failed"),
        retries: total("retries"),
        all_in_secs: max_secs(&ins),
        all_apps_secs: max_secs(&apps_back),
        to_ack: percentiles(&ins),
        to_apps: percentiles(&apps_back),
        survivors_sessions,
        survivors_open_fds,
    })
}
