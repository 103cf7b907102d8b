//! Scale: ramp to N concurrent sessions (glasses + 2 apps each) with
//! heartbeats running, then read the server's resident memory per session
//! and its CPU at idle. The client sockets are split over several worker
//! processes (`sightline-bench scale-worker`), because one process may
//! hold at most 20 000 open files here; each worker runs its own app
//! servers under its own package names.

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::SinkExt;
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::apps::{self, Metrics, Waiters};
use crate::glasses;
use crate::net;
use crate::procstat::{self, ProcSample};
use crate::target::{check_programs, Kind, Programs, Target};

/// Parameters of the scale scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleArgs {
    /// Sessions to hold (each: glasses + `apps` app sockets).
    #[arg(long, default_value_t = 6000)]
    pub sessions: usize,
    #[arg(long, default_value_t = 2)]
    pub apps: usize,
    /// Load generator processes the client sockets are split over.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Sessions each worker opens at once while ramping.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds of idle measured once ramped.
    #[arg(long, default_value_t = 30.0)]
    pub idle_secs: f64,
    /// Sightline's HEARTBEAT_INTERVAL_MS during the run.
    #[arg(long, default_value_t = 15_000)]
    pub heartbeat_ms: u64,
    /// Servers to measure.
    #[arg(long, value_delimiter = ',', default_value = "sightline")]
    pub targets: Vec<Kind>,
}

/// What one server held.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleResult {
    pub target: Kind,
    pub params: ScaleArgs,
    pub sessions_ok: u64,
    pub failures: u64,
    pub ramp_secs: f64,
    pub server_rss_before_mib: f64,
    pub server_rss_after_mib: f64,
    /// (after − before) / sessions.
    pub rss_per_session_kib: f64,
    pub server_open_fds: usize,
    /// Percent of one core, over the idle window.
    pub server_idle_cpu: f64,
    pub server_ramp_cpu: f64,
    pub generator_rss_mib: f64,
    pub generator_idle_cpu: f64,
    pub generator_ramp_cpu: f64,
    pub health: serde_json::Value,
}

/// A load generator process started by a scenario: commands go to its
/// stdin, one a line; it answers on stdout, one line each, opening with a
/// word the scenario waits for.
pub(crate) struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub(crate) pid: u32,
}

impl Worker {
    /// Starts this executable with `args` (a hidden worker subcommand).
    pub(crate) fn spawn(args: &[String]) -> Result<Worker> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("worker pid")?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        Ok(Worker {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            pid,
        })
    }

    /// Sends one command line.
    pub(crate) async fn send(&mut self, command: &str) -> Result<()> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .with_context(|| format!("worker {} gone", self.pid))
    }

    /// The rest of the next line opening with `prefix` (other lines are
    /// skipped).
    pub(crate) async fn line(&mut self, prefix: &str, within: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .with_context(|| format!("worker {} said no {prefix} in time", self.pid))??
                .with_context(|| format!("worker {} ended", self.pid))?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_string());
            }
        }
    }

    /// Tells the worker to stop, and makes sure it has.
    pub(crate) async fn stop(mut self) {
        let _ = self.send("STOP").await;
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

pub(crate) fn sum_samples(pids: &[u32]) -> ProcSample {
    let mut total = ProcSample {
        cpu_secs: 0.0,
        rss_bytes: 0,
        at: Instant::now(),
    };
    for &p in pids {
        if let Ok(s) = procstat::sample(p) {
            total.cpu_secs += s.cpu_secs;
            total.rss_bytes += s.rss_bytes;
        }
    }
    total
}

/// The scale scenario, for each target.
pub async fn run(args: &ScaleArgs, programs: &Programs) -> Result<Vec<ScaleResult>> {
    check_programs(programs, &args.targets)?;
    println!(
        "scale: sessions={} (glasses + {} apps each = {} WebSockets) workers={} concurrency/worker={} idle={}s heartbeat={}ms targets={:?}",
        args.sessions,
        args.apps,
        args.sessions * (1 + args.apps),
        args.workers,
        args.concurrency,
        args.idle_secs,
        args.heartbeat_ms,
        args.targets
    );
    let mut out = Vec::new();
    for &kind in &args.targets {
        let r = run_one(kind, args, programs).await?;
        println!(
            "{}: {} sessions ({} failed) in {:.1} s; RSS {:.0} → {:.0} MiB = {:.1} KiB/session; {} open fds; idle CPU {:.1}% (generator {:.1}%); ramp CPU {:.0}% (generator {:.0}%)",
            kind.label(),
            r.sessions_ok,
            r.failures,
            r.ramp_secs,
            r.server_rss_before_mib,
            r.server_rss_after_mib,
            r.rss_per_session_kib,
            r.server_open_fds,
            r.server_idle_cpu,
            r.generator_idle_cpu,
            r.server_ramp_cpu,
            r.generator_ramp_cpu
        );
        out.push(r);
    }
    Ok(out)
}

async fn run_one(kind: Kind, args: &ScaleArgs, programs: &Programs) -> Result<ScaleResult> {
    // The connection cap is sized to the run, as an operator sizes it to
    // the host: its default (16 000) is below the 18 000 WebSockets of
    // 6 000 sessions; the process's open-file limit (20 000 here) stays
    // the real bound.
    let sockets = args.sessions * (1 + args.apps);
    let env = [
        ("HEARTBEAT_INTERVAL_MS", args.heartbeat_ms.to_string()),
        ("CONNECTION_TIMEOUT_MS", (args.heartbeat_ms * 3).to_string()),
        (
            "SIGHTLINE_MAX_CONNECTIONS",
            (sockets + 100).max(16_000).to_string(),
        ),
    ];
    let target = Target::start(kind, programs, &env).await?;
    let per = args.sessions.div_ceil(args.workers.max(1));
    let mut workers = Vec::new();
    for w in 0..args.workers {
        let from = w * per;
        let to = ((w + 1) * per).min(args.sessions);
        let worker_args: Vec<String> = [
            "scale-worker",
            "--kind",
            kind.label(),
            "--server",
            &target.addr.to_string(),
            "--worker",
            &w.to_string(),
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--apps",
            &args.apps.to_string(),
            "--concurrency",
            &args.concurrency.to_string(),
        ]
        .map(String::from)
        .to_vec();
        workers.push(Worker::spawn(&worker_args)?);
    }
    for (w, worker) in workers.iter_mut().enumerate() {
        let urls = worker.line("PORTS", Duration::from_secs(20)).await?;
        if kind == Kind::Sightline {
            for (k, url) in urls.split_whitespace().enumerate() {
                let (package, key) = worker_app(w, k);
                target.register_app(&package, url, &key, &["ALL"]).await?;
            }
        }
    }
    let pids: Vec<u32> = workers.iter().map(|w| w.pid).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let srv0 = target.sample()?;
    let gen0 = sum_samples(&pids);
    let started = Instant::now();
    for w in &mut workers {
        w.send("GO").await?;
    }
    let (mut ok, mut failed) = (0u64, 0u64);
    for w in &mut workers {
        let done = w.line("DONE", Duration::from_secs(900)).await?;
        let mut parts = done.split_whitespace();
        ok += parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        failed += parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    }
    let ramp_secs = started.elapsed().as_secs_f64();
    let srv1 = target.sample()?;
    let gen1 = sum_samples(&pids);
    // Settle, then the idle window with heartbeats running.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let srv2 = target.sample()?;
    let gen2 = sum_samples(&pids);
    tokio::time::sleep(Duration::from_secs_f64(args.idle_secs)).await;
    let srv3 = target.sample()?;
    let gen3 = sum_samples(&pids);
    let health = if kind == Kind::Sightline {
        target
            .stats()
            .await
            .map(|s| s["health"].clone())
            .unwrap_or_default()
    } else {
        json!(null)
    };
    let fds = procstat::open_fds(target.pid());
    for w in workers {
        w.stop().await;
    }
    target.stop().await;
    let mib = |b: u64| b as f64 / 1048576.0;
    let rss_after = srv3.rss_bytes.max(srv2.rss_bytes);
    Ok(ScaleResult {
        target: kind,
        params: args.clone(),
        sessions_ok: ok,
        failures: failed,
        ramp_secs,
        server_rss_before_mib: mib(srv0.rss_bytes),
        server_rss_after_mib: mib(rss_after),
        rss_per_session_kib: rss_after.saturating_sub(srv0.rss_bytes) as f64
            / 1024.0
            / ok.max(1) as f64,
        server_open_fds: fds,
        server_idle_cpu: procstat::cpu_percent(&srv2, &srv3),
        server_ramp_cpu: procstat::cpu_percent(&srv0, &srv1),
        generator_rss_mib: mib(gen3.rss_bytes),
        generator_idle_cpu: procstat::cpu_percent(&gen2, &gen3),
        generator_ramp_cpu: procstat::cpu_percent(&gen0, &gen1),
        health,
    })
}

fn worker_app(worker: usize, k: usize) -> (String, String) {
    (
        format!("bench.scale.w{worker}.a{k}"),
        format!("bench-scale-key-{worker}-{k}"),
    )
}

/// Arguments of one worker process.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub kind: Kind,
    #[arg(long)]
    pub server: std::net::SocketAddr,
    #[arg(long)]
    pub worker: usize,
    #[arg(long)]
    pub from: usize,
    #[arg(long)]
    pub to: usize,
    #[arg(long)]
    pub apps: usize,
    #[arg(long)]
    pub concurrency: usize,
}

/// One worker: its app servers, then on `GO` its share of the sessions,
/// held until `STOP` or the end of stdin.
pub async fn worker(args: WorkerArgs) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let waiters = Arc::new(Waiters::default());
    let mut servers = Vec::new();
    if args.kind == Kind::Sightline {
        for k in 0..args.apps {
            let (package, key) = worker_app(args.worker, k);
            servers.push(
                apps::spawn_app_server(
                    &package,
                    &key,
                    vec!["button_press".into()],
                    metrics.clone(),
                    waiters.clone(),
                )
                .await?,
            );
        }
    }
    let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
    println!("PORTS {}", urls.join(" "));
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        if line.trim() == "GO" {
            break;
        }
    }
    let started = Instant::now();
    let users: Vec<usize> = (args.from..args.to).collect();
    let chunks: Vec<Vec<usize>> = users
        .chunks(users.len().div_ceil(args.concurrency.max(1)).max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let packages: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.package.clone()).collect());
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (a, packages) = (args.clone(), packages.clone());
        let metrics = metrics.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut held = Vec::new();
            for u in chunk {
                match open_session(&a, u, &packages, &metrics).await {
                    Ok(mut h) => {
                        ok += 1;
                        held.append(&mut h);
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("worker {}: session {u} failed: {e:#}", a.worker);
                    }
                }
            }
            (ok, failed, held)
        }));
    }
    let (mut ok, mut failed, mut held) = (0u64, 0u64, Vec::new());
    for t in tasks {
        let (o, f, mut h) = t.await?;
        ok += o;
        failed += f;
        held.append(&mut h);
    }
    if args.kind == Kind::Sightline {
        // Every app of every session acknowledged.
        let want = ok * args.apps as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let acked: u64 = servers
                .iter()
                .map(|s| s.acked.load(Ordering::Relaxed))
                .sum();
            if acked >= want {
                break;
            }
            if Instant::now() > deadline {
                eprintln!(
                    "worker {}: only {acked} of {want} apps acknowledged",
                    args.worker
                );
                failed += (want - acked).div_ceil(args.apps as u64);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("DONE {ok} {failed} {:.2}", started.elapsed().as_secs_f64());
    while let Some(line) = stdin.next_line().await? {
        if line.trim() == "STOP" {
            break;
        }
    }
    for h in held {
        h.abort();
    }
    Ok(())
}

/// Opens one session; returns the tasks reading its sockets.
async fn open_session(
    args: &WorkerArgs,
    u: usize,
    packages: &[String],
    metrics: &Arc<Metrics>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let user = format!("scale{u}@bench.local");
    let mut held = Vec::new();
    match args.kind {
        Kind::Sightline => {
            let (mut ws, _) = glasses::connect_sightline(args.server, &user).await?;
            for p in packages {
                ws.send(Message::text(
                    json!({"type": "start_app", "packageName": p}).to_string(),
                ))
                .await?;
            }
            held.push(tokio::spawn(glasses::drain_ws(ws)));
        }
        _ => {
            for _ in 0..args.apps {
                let ws = net::ws_connect(args.server, &format!("/app?user={u}"), None).await?;
                held.push(tokio::spawn(apps::read_app_socket(
                    ws,
                    metrics.clone(),
                    None,
                )));
            }
            let ws = glasses::connect_relay(args.server, &u.to_string()).await?;
            held.push(tokio::spawn(glasses::drain_ws(ws)));
        }
    }
    Ok(held)
}
