//! Churn and app start: whole session lifecycles against Sightline, timed
//! step by step.
//!
//! - `churn`: many workers, each looping connect → `connection_ack` →
//!   `start_app` → app acknowledged → `stop_app` → app told it stopped →
//!   disconnect, each with a new user; sessions per second and the
//!   percentiles of every step.
//! - `appstart`: with `live` sessions connected (glasses + one app each,
//!   heartbeats running), samples `connection_init` → `connection_ack` and
//!   `start_app` → `tpa_connection_ack` on some of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::apps::{self, AppEvent, AppServer, Metrics, Waiters};
use crate::glasses;
use crate::hist::{Histogram, Percentiles};
use crate::net::Ws;
use crate::procstat;
use crate::target::{check_programs, Kind, Programs, Target};

const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Parameters of the churn scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChurnArgs {
    /// Workers cycling sessions at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds of churn.
    #[arg(long, default_value_t = 20.0)]
    pub secs: f64,
    /// How long Sightline keeps a session whose glasses left
    /// (SIGHTLINE_GLASSES_GRACE_MS), so finished sessions are retired.
    #[arg(long, default_value_t = 1000)]
    pub glasses_grace_ms: u64,
}

/// Percentiles of each step of a lifecycle.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChurnResult {
    pub params: ChurnArgs,
    pub cycles: u64,
    pub failures: u64,
    pub sessions_per_sec: f64,
    pub connect_to_ack: Percentiles,
    pub start_to_app_acked: Percentiles,
    pub stop_to_app_stopped: Percentiles,
    pub disconnect: Percentiles,
    pub server_cpu: f64,
    pub generator_cpu: f64,
    pub server_rss_mib_end: f64,
    /// Sessions still open at the end, after the grace period.
    pub sessions_left: serde_json::Value,
}

#[derive(Default)]
struct StepHists {
    connect: Histogram,
    start: Histogram,
    stop: Histogram,
    disconnect: Histogram,
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// One churn app server and what the workers need.
struct Rig {
    target: Target,
    app: AppServer,
    waiters: Arc<Waiters>,
    _metrics: Arc<Metrics>,
}

async fn rig(programs: &Programs, env: &[(&str, String)], package: &str) -> Result<Rig> {
    let target = Target::start(Kind::Sightline, programs, env).await?;
    let metrics = Arc::new(Metrics::default());
    let waiters = Arc::new(Waiters::default());
    let key = "bench-lifecycle-key";
    let app = apps::spawn_app_server(
        package,
        key,
        vec!["button_press".into()],
        metrics.clone(),
        waiters.clone(),
    )
    .await?;
    target
        .register_app(package, &app.url, key, &["ALL"])
        .await?;
    Ok(Rig {
        target,
        app,
        waiters,
        _metrics: metrics,
    })
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<AppEvent>) -> Result<AppEvent> {
    tokio::time::timeout(STEP_TIMEOUT, rx.recv())
        .await
        .context("app step timed out")?
        .context("app waiter closed")
}

/// Starts `package` from `ws` and waits for the app's ack; returns the time.
async fn start_app(
    ws: &mut Ws,
    package: &str,
    rx: &mut mpsc::UnboundedReceiver<AppEvent>,
) -> Result<Duration> {
    let t0 = Instant::now();
    ws.send(Message::text(
        json!({"type": "start_app", "packageName": package}).to_string(),
    ))
    .await?;
    loop {
        // Keep reading the glasses socket meanwhile (pings, app states).
        tokio::select! {
            ev = next_event(rx) => match ev? {
                AppEvent::Acked(at) => return Ok(at.duration_since(t0)),
                // A previous app socket of this session closing late.
                AppEvent::Stopped(_) => {}
            },
            m = ws.next() => if !matches!(m, Some(Ok(_))) { bail!("glasses socket ended") },
        }
    }
}

/// Stops `package` from `ws` and waits until its app socket is told.
async fn stop_app(
    ws: &mut Ws,
    package: &str,
    rx: &mut mpsc::UnboundedReceiver<AppEvent>,
) -> Result<Duration> {
    let t0 = Instant::now();
    ws.send(Message::text(
        json!({"type": "stop_app", "packageName": package}).to_string(),
    ))
    .await?;
    loop {
        tokio::select! {
            ev = next_event(rx) => if let AppEvent::Stopped(at) = ev? {
                return Ok(at.duration_since(t0));
            },
            m = ws.next() => if !matches!(m, Some(Ok(_))) { bail!("glasses socket ended") },
        }
    }
}

/// One full lifecycle of a new user.
async fn cycle(rig: &Rig, user: &str, hists: &StepHists) -> Result<()> {
    let package = &rig.app.package;
    let session_id = format!("{user}-{package}");
    let mut rx = rig.waiters.register(&session_id);
    let result = async {
        let (mut ws, connect) = glasses::connect_sightline(rig.target.addr, user).await?;
        hists.connect.record(us(connect));
        hists
            .start
            .record(us(start_app(&mut ws, package, &mut rx).await?));
        hists
            .stop
            .record(us(stop_app(&mut ws, package, &mut rx).await?));
        let t0 = Instant::now();
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await?;
        // The disconnect is done when the server has answered the close
        // (the socket is then dropped, as the phone does).
        let _ = tokio::time::timeout(STEP_TIMEOUT, async {
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
        hists.disconnect.record(us(t0.elapsed()));
        Ok(())
    }
    .await;
    rig.waiters.unregister(&session_id);
    result
}

/// The churn scenario.
pub async fn churn(args: &ChurnArgs, programs: &Programs) -> Result<ChurnResult> {
    check_programs(programs, &[Kind::Sightline])?;
    println!(
        "churn: concurrency={} secs={} glasses_grace_ms={} (connect -> ack -> start_app -> app acked -> stop_app -> app_stopped -> disconnect, a new user each cycle)",
        args.concurrency, args.secs, args.glasses_grace_ms
    );
    let env = [(
        "SIGHTLINE_GLASSES_GRACE_MS",
        args.glasses_grace_ms.to_string(),
    )];
    let rig = Arc::new(rig(programs, &env, "bench.churn.a0").await?);
    let hists = Arc::new(StepHists::default());
    let cycles = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (srv0, gen0) = (rig.target.sample()?, procstat::own()?);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|w| {
            let (rig, hists, cycles, failures, stop) = (
                rig.clone(),
                hists.clone(),
                cycles.clone(),
                failures.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let user = format!("churn-w{w}-{n}@bench.local");
                    n += 1;
                    match cycle(&rig, &user, &hists).await {
                        Ok(()) => cycles.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("  churn cycle of {user} failed: {e:#}");
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (srv1, gen1) = (rig.target.sample()?, procstat::own()?);
    tokio::time::sleep(Duration::from_millis(args.glasses_grace_ms + 1500)).await;
    let stats = rig.target.stats().await.unwrap_or_default();
    let n = cycles.load(Ordering::Relaxed);
    let result = ChurnResult {
        params: args.clone(),
        cycles: n,
        failures: failures.load(Ordering::Relaxed),
        sessions_per_sec: n as f64 / elapsed,
        connect_to_ack: hists.connect.percentiles(),
        start_to_app_acked: hists.start.percentiles(),
        stop_to_app_stopped: hists.stop.percentiles(),
        disconnect: hists.disconnect.percentiles(),
        server_cpu: procstat::cpu_percent(&srv0, &srv1),
        generator_cpu: procstat::cpu_percent(&gen0, &gen1),
        server_rss_mib_end: srv1.rss_bytes as f64 / 1048576.0,
        sessions_left: json!({
            "sessions": stats["sessions"],
            "liveSessions": stats["health"]["liveSessions"],
            "appConnections": stats["health"]["appConnections"],
        }),
    };
    if let Ok(rig) = Arc::try_unwrap(rig) {
        rig.target.stop().await;
    }
    println!(
        "churn: {} cycles ({} failed), {:.1} sessions/s; server CPU {:.0}%, generator CPU {:.0}%",
        result.cycles,
        result.failures,
        result.sessions_per_sec,
        result.server_cpu,
        result.generator_cpu
    );
    println!("| step | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|");
    for (name, p) in [
        ("connect → connection_ack", &result.connect_to_ack),
        ("start_app → app acked", &result.start_to_app_acked),
        ("stop_app → app_stopped", &result.stop_to_app_stopped),
        ("close → server close frame", &result.disconnect),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            p.p50, p.p99, p.p999, p.max
        );
    }
    println!("left after the grace period: {}", result.sessions_left);
    Ok(result)
}

/// Parameters of the app-start scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStartArgs {
    /// Sessions kept live (glasses + one app each) while sampling.
    #[arg(long, default_value_t = 1000)]
    pub live: usize,
    /// Samples of each measurement.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Live sessions the samples are taken on (round-robin).
    #[arg(long, default_value_t = 50)]
    pub sampled_sessions: usize,
}

/// What the app-start scenario measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStartResult {
    pub params: AppStartArgs,
    pub ramp_secs: f64,
    pub live_sessions: serde_json::Value,
    pub init_to_ack: Percentiles,
    pub start_to_app_acked: Percentiles,
    pub stop_to_app_stopped: Percentiles,
    pub server_rss_mib: f64,
}

/// The app-start scenario.
pub async fn app_start(args: &AppStartArgs, programs: &Programs) -> Result<AppStartResult> {
    check_programs(programs, &[Kind::Sightline])?;
    println!(
        "appstart: live={} samples={} sampled_sessions={} (glasses + 1 app per live session)",
        args.live, args.samples, args.sampled_sessions
    );
    let live_rig = rig(programs, &[], "bench.live.a0").await?;
    // A second app, started and stopped on the sampled sessions.
    let metrics = Arc::new(Metrics::default());
    let waiters = Arc::new(Waiters::default());
    let key = "bench-start-key";
    let extra = apps::spawn_app_server(
        "bench.start.a1",
        key,
        vec!["button_press".into()],
        metrics,
        waiters.clone(),
    )
    .await?;
    live_rig
        .target
        .register_app(&extra.package, &extra.url, key, &["ALL"])
        .await?;
    let started = Instant::now();
    let mut sampled: Vec<(String, Ws)> = Vec::new();
    let mut drains = Vec::new();
    let live_rig = Arc::new(live_rig);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let concurrency = 32usize;
    let per = args.live.div_ceil(concurrency);
    for c in 0..concurrency {
        let (rig, tx) = (live_rig.clone(), tx.clone());
        let range = (c * per)..((c + 1) * per).min(args.live);
        tokio::spawn(async move {
            for i in range {
                let user = format!("live{i}@bench.local");
                let sid = format!("{user}-{}", rig.app.package);
                let mut wait = rig.waiters.register(&sid);
                let res = async {
                    let (mut ws, _) = glasses::connect_sightline(rig.target.addr, &user).await?;
                    start_app(&mut ws, &rig.app.package, &mut wait).await?;
                    anyhow::Ok(ws)
                }
                .await;
                rig.waiters.unregister(&sid);
                let _ = tx.send((i, user, res));
            }
        });
    }
    drop(tx);
    while let Some((i, user, res)) = rx.recv().await {
        let ws = res.with_context(|| format!("ramping {user}"))?;
        if i < args.sampled_sessions {
            sampled.push((user, ws));
        } else {
            drains.push(tokio::spawn(glasses::drain_ws(ws)));
        }
    }
    let ramp_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = live_rig.target.stats().await.unwrap_or_default();
    eprintln!(
        "  {} live sessions in {ramp_secs:.1} s: {}",
        args.live, stats["health"]
    );
    let init = Histogram::default();
    let start = Histogram::default();
    let stop = Histogram::default();
    for n in 0..args.samples {
        let k = n % sampled.len().max(1);
        let Some((user, ws)) = sampled.get_mut(k) else {
            bail!("no sampled sessions");
        };
        let t0 = Instant::now();
        ws.send(Message::text(
            json!({"type": "connection_init"}).to_string(),
        ))
        .await?;
        glasses::wait_for(ws, "connection_ack", STEP_TIMEOUT).await?;
        init.record(us(t0.elapsed()));
        let sid = format!("{user}-{}", extra.package);
        let mut wait = waiters.register(&sid);
        start.record(us(start_app(ws, &extra.package, &mut wait).await?));
        stop.record(us(stop_app(ws, &extra.package, &mut wait).await?));
        waiters.unregister(&sid);
    }
    let rss = live_rig.target.sample()?.rss_bytes as f64 / 1048576.0;
    let result = AppStartResult {
        params: args.clone(),
        ramp_secs,
        live_sessions: stats["health"].clone(),
        init_to_ack: init.percentiles(),
        start_to_app_acked: start.percentiles(),
        stop_to_app_stopped: stop.percentiles(),
        server_rss_mib: rss,
    };
    for d in drains {
        d.abort();
    }
    drop(sampled);
    if let Ok(rig) = Arc::try_unwrap(live_rig) {
        rig.target.stop().await;
    }
    println!(
        "appstart with {} live sessions (ramped in {:.1} s):",
        args.live, ramp_secs
    );
    println!("| measurement | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|");
    for (name, p) in [
        ("connection_init → connection_ack", &result.init_to_ack),
        ("start_app → tpa_connection_ack", &result.start_to_app_acked),
        ("stop_app → app_stopped", &result.stop_to_app_stopped),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            p.p50, p.p99, p.p999, p.max
        );
    }
    Ok(result)
}
