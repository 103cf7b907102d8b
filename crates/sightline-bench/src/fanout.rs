//! Fan-out: glasses frames per second to K subscribed apps per user.
//! Offered load climbs (doubling) until the server falls behind; that is
//! its saturation. Then the latency curve is measured at fractions of that
//! saturation. The same run works for `button_press` events and for PCM
//! audio to `audio_chunk` apps, and for each of the three servers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::SinkExt;
use serde::Serialize;

use crate::deploy::{deploy, Deployment, GlassesSink};
use crate::glasses::Payload;
use crate::hist::Percentiles;
use crate::procstat;
use crate::target::{check_programs, Kind, Programs};

/// Parameters of a fan-out run.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutArgs {
    /// Simulated users (one glasses connection each). Enough of them that
    /// no glasses connection goes over Sightline's per-connection message
    /// budget (250/s by default) below Sightline's saturation: the budget
    /// would be the ceiling measured, not the server.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Subscribed apps per user.
    #[arg(long, default_value_t = 4)]
    pub apps: usize,
    /// Servers to measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sightline,bare-relay,node-relay"
    )]
    pub targets: Vec<Kind>,
    /// Seconds measured at each load step (after a warm-up of a third of it).
    #[arg(long, default_value_t = 4.0)]
    pub step_secs: f64,
    /// Glasses frames per second offered at the first step.
    #[arg(long, default_value_t = 1000.0)]
    pub start_rate: f64,
    /// Steps that narrow the saturation down (bisecting between the last
    /// rate that kept up and the first that did not) after the doubling.
    #[arg(long, default_value_t = 3)]
    pub refine: usize,
    /// Fractions of saturation where the latency curve is measured (in the
    /// first repetition).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.4,0.6,0.8")]
    pub fractions: Vec<f64>,
    /// Times each server's saturation is measured; the servers take turns
    /// in a rotating order, so a slow moment of the machine does not fall
    /// on one of them only.
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// Delivered frames per second at which each repetition also measures
    /// server CPU per delivered frame.
    #[arg(long, value_delimiter = ',', default_value = "32000")]
    pub fixed: Vec<f64>,
}

/// One load step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Glasses frames per second asked for.
    pub offered: f64,
    /// Glasses frames per second actually sent.
    pub sent: f64,
    /// App frames per second received.
    pub delivered: f64,
    /// `delivered / (sent × apps)`.
    pub delivery_ratio: f64,
    pub latency: Percentiles,
    /// CPU of the server, percent of one core.
    pub server_cpu: f64,
    pub server_rss_mib: f64,
    /// CPU of the load generator, percent of one core.
    pub generator_cpu: f64,
    /// Server CPU microseconds per delivered frame.
    pub server_cpu_us_per_delivered: f64,
    pub saturated: bool,
}

/// A fan-out run of one server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRun {
    pub target: Kind,
    pub payload: Payload,
    pub users: usize,
    pub apps: usize,
    /// Which repetition (0: the one with the latency sweep).
    pub repeat: usize,
    pub probe: Vec<Step>,
    pub sweep: Vec<Step>,
    /// The steps at `FanoutArgs::fixed` delivered frames per second.
    pub fixed: Vec<Step>,
    /// Highest delivered frames per second seen.
    pub saturation_delivered: f64,
}

impl TargetRun {
    /// The sweep step closest to `fraction` of saturation.
    pub fn at_fraction(&self, fraction: f64) -> Option<&Step> {
        let want = fraction * self.saturation_delivered;
        self.sweep.iter().min_by(|a, b| {
            (a.delivered - want)
                .abs()
                .total_cmp(&(b.delivered - want).abs())
        })
    }
}

/// Runs the fan-out for every target in `args`.
pub async fn run(
    args: &FanoutArgs,
    programs: &Programs,
    payload: Payload,
) -> Result<Vec<TargetRun>> {
    check_programs(programs, &args.targets)?;
    println!(
        "fan-out ({payload:?}): users={} apps/user={} step={}s start_rate={}/s fractions={:?} targets={:?}",
        args.users, args.apps, args.step_secs, args.start_rate, args.fractions, args.targets
    );
    let mut runs = Vec::new();
    for repeat in 0..args.repeats.max(1) {
        let mut order = args.targets.clone();
        let n = order.len().max(1);
        order.rotate_left(repeat % n);
        for kind in order {
            let mut dep = deploy(kind, programs, args.users, args.apps, payload).await?;
            let run = measure(&mut dep, args, payload, repeat).await;
            dep.stop().await;
            let run = run?;
            print_run(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

async fn measure(
    dep: &mut Deployment,
    args: &FanoutArgs,
    payload: Payload,
    repeat: usize,
) -> Result<TargetRun> {
    let mut probe = Vec::new();
    let mut rate = args.start_rate;
    // The highest rate that kept up and the lowest that did not.
    let (mut good, mut bad) = (0.0f64, f64::INFINITY);
    let mut refined = 0;
    for _ in 0..14 {
        let step = step(dep, rate, args.step_secs * 0.5, payload).await?;
        eprintln!(
            "  {} probe {:>9.0}/s offered: {:>9.0}/s delivered, p99 {:.2} ms{}",
            dep.target.kind.label(),
            rate,
            step.delivered,
            step.latency.p99,
            if step.saturated { " (saturated)" } else { "" }
        );
        if step.saturated {
            bad = bad.min(rate);
        } else {
            good = good.max(rate);
        }
        probe.push(step);
        if bad.is_infinite() {
            rate *= 2.0;
            continue;
        }
        // Doubling overshot: bisect, geometrically, between the two.
        if refined == args.refine || good <= 0.0 {
            break;
        }
        refined += 1;
        rate = (good * bad).sqrt();
    }
    let saturation_delivered = probe.iter().map(|s| s.delivered).fold(0.0, f64::max);
    let mut sweep = Vec::new();
    let fractions: &[f64] = if repeat == 0 { &args.fractions } else { &[] };
    for &f in fractions {
        let rate = f * saturation_delivered / dep.apps as f64;
        let step = step(dep, rate, args.step_secs, payload).await?;
        eprintln!(
            "  {} {:>3.0}% of saturation ({:.0}/s offered): {:.0}/s delivered, p50 {:.2} p99 {:.2} p99.9 {:.2} ms",
            dep.target.kind.label(),
            f * 100.0,
            rate,
            step.delivered,
            step.latency.p50,
            step.latency.p99,
            step.latency.p999
        );
        sweep.push(step);
    }
    let mut fixed = Vec::new();
    for &delivered in &args.fixed {
        let rate = delivered / dep.apps as f64;
        let step = step(dep, rate, args.step_secs, payload).await?;
        eprintln!(
            "  {} at {delivered:.0} delivered/s: server {:.2} µs/frame",
            dep.target.kind.label(),
            step.server_cpu_us_per_delivered
        );
        fixed.push(step);
    }
    Ok(TargetRun {
        target: dep.target.kind,
        payload,
        users: dep.users,
        apps: dep.apps,
        repeat,
        probe,
        sweep,
        fixed,
        saturation_delivered,
    })
}

/// Sends `rate` glasses frames per second for a warm-up then `secs`, and
/// measures the window.
pub async fn step(dep: &mut Deployment, rate: f64, secs: f64, payload: Payload) -> Result<Step> {
    let warmup = Duration::from_secs_f64((secs / 3.0).max(0.3));
    let window = Duration::from_secs_f64(secs);
    let senders = dep.glasses.len().clamp(1, 4);
    let sent = Arc::new(AtomicU64::new(0));
    let mut groups: Vec<Vec<GlassesSink>> = (0..senders).map(|_| Vec::new()).collect();
    for (i, g) in std::mem::take(&mut dep.glasses).into_iter().enumerate() {
        groups[i % senders].push(g);
    }
    let total = warmup + window;
    let handles: Vec<_> = groups
        .into_iter()
        .map(|g| {
            let sent = sent.clone();
            tokio::spawn(send_paced(g, rate / senders as f64, total, payload, sent))
        })
        .collect();
    tokio::time::sleep(warmup).await;
    dep.metrics.latency.reset();
    let (d0, s0) = (dep.metrics.delivered(), sent.load(Ordering::Relaxed));
    let (srv0, gen0) = (dep.target.sample()?, procstat::own()?);
    tokio::time::sleep(window).await;
    let (d1, s1) = (dep.metrics.delivered(), sent.load(Ordering::Relaxed));
    let (srv1, gen1) = (dep.target.sample()?, procstat::own()?);
    for h in handles {
        dep.glasses.extend(h.await?);
    }
    // Let the backlog arrive so late frames count in the latency.
    let mut last = dep.metrics.delivered();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = dep.metrics.delivered();
        if now == last || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    let secs_measured = srv1.at.duration_since(srv0.at).as_secs_f64();
    let sent_rate = (s1 - s0) as f64 / secs_measured;
    let delivered = (d1 - d0) as f64 / secs_measured;
    let expected = sent_rate * dep.apps as f64;
    let latency = dep.metrics.latency.percentiles();
    let delivery_ratio = if expected > 0.0 {
        delivered / expected
    } else {
        0.0
    };
    let server_cpu = procstat::cpu_percent(&srv0, &srv1);
    Ok(Step {
        offered: rate,
        sent: sent_rate,
        delivered,
        delivery_ratio,
        latency,
        server_cpu,
        server_rss_mib: srv1.rss_bytes as f64 / 1048576.0,
        generator_cpu: procstat::cpu_percent(&gen0, &gen1),
        server_cpu_us_per_delivered: if delivered > 0.0 {
            server_cpu / 100.0 * 1e6 / delivered
        } else {
            0.0
        },
        // Behind: frames pile up, or the generator could not send what was
        // asked because the server stopped reading.
        saturated: delivery_ratio < 0.95 || sent_rate < 0.9 * rate || latency.p99 > 250.0,
    })
}

/// Sends frames round-robin over `sinks` at `rate` per second for `dur`.
async fn send_paced(
    mut sinks: Vec<GlassesSink>,
    rate: f64,
    dur: Duration,
    payload: Payload,
    sent: Arc<AtomicU64>,
) -> Vec<GlassesSink> {
    if sinks.is_empty() {
        return sinks;
    }
    let start = Instant::now();
    let mut n = 0u64;
    let mut i = 0usize;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= dur {
            break;
        }
        let due = (rate * elapsed.as_secs_f64()) as u64;
        while n < due && start.elapsed() < dur {
            let len = sinks.len();
            let _ = sinks[i % len].send(payload.frame()).await;
            i += 1;
            n += 1;
            sent.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    sinks
}

fn print_run(run: &TargetRun) {
    println!(
        "\n{} ({:?}, {} users x {} apps): saturation {:.0} delivered/s",
        run.target.label(),
        run.payload,
        run.users,
        run.apps,
        run.saturation_delivered
    );
    println!("| offered/s | sent/s | delivered/s | ratio | p50 ms | p99 ms | p99.9 ms | server CPU % | generator CPU % | server µs/frame |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in run.probe.iter().chain(&run.sweep).chain(&run.fixed) {
        println!(
            "| {:.0} | {:.0} | {:.0} | {:.2} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} | {:.2} |",
            s.offered,
            s.sent,
            s.delivered,
            s.delivery_ratio,
            s.latency.p50,
            s.latency.p99,
            s.latency.p999,
            s.server_cpu,
            s.generator_cpu,
            s.server_cpu_us_per_delivered
        );
    }
}
