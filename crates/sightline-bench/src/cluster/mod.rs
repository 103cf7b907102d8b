//! `cluster`: three `sightline serve` instances (by default) sharing one
//! `nats-server -js` and one MongoDB store (nx-27017) hold N sessions
//! (glasses + 2 apps each), more WebSockets than one process may open
//! here; the client side is split over `cluster-worker` processes, each
//! with its own app servers. Measured, in this order:
//!
//! 1. sessions held and resident memory per session, instance by
//!    instance, and idle CPU with heartbeats running;
//! 2. app-to-app direct messages between two users on one instance beside
//!    two users on different instances: latency, server CPU per message;
//! 3. hand-over: users whose glasses reconnect to another instance, timed
//!    to `connection_ack` and until every app's new socket is accepted on
//!    the new owner;
//! 4. recovery: `kill -9` of one instance; its users' glasses get back in
//!    on the others (retrying on 503/409) once its leases lapse, and their
//!    apps are restored from the store. When the survivors could not hold
//!    every session within their open-file limit, sessions are ended
//!    first (`--recovery-sessions`).
//!
//! Figures are printed one line each and written to `--out` as JSON.

mod apps;
mod infra;
mod messages;
mod phases;
mod reconnect;
mod report;
mod users;
mod wire;
pub mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use self::infra::{Backing, Instance};
use self::report::ClusterResult;
use crate::procstat;
use crate::scale::{self, ScaleArgs, Worker};
use crate::target::{check_programs, Kind, Programs};

/// Open files an instance keeps for itself beside its WebSockets (NATS,
/// MongoDB, listeners, logs, sockets closing).
const FD_RESERVE: usize = 1500;

/// Parameters of the cluster scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterArgs {
    /// Sessions to hold over the whole cluster.
    #[arg(long, default_value_t = 18_000)]
    pub sessions: usize,
    /// App sockets per session.
    #[arg(long, default_value_t = 2)]
    pub apps: usize,
    /// `sightline serve` processes.
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// Load generator processes the client sockets are split over.
    #[arg(long, default_value_t = 6)]
    pub workers: usize,
    /// Sessions each worker opens at once while ramping (few: every open
    /// waits on nx-27017, which answers one request at a time).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seconds of idle measured once ramped.
    #[arg(long, default_value_t = 10.0)]
    pub idle_secs: f64,
    /// Users moved from their owner to another instance.
    #[arg(long, default_value_t = 500)]
    pub handovers: usize,
    /// Moves at once (each worker in turn).
    #[arg(long, default_value_t = 4)]
    pub handover_concurrency: usize,
    /// Message pairs per worker, in each of the two phases.
    #[arg(long, default_value_t = 16)]
    pub message_pairs: usize,
    /// Messages per second of each sender (Sightline allows an app 10).
    #[arg(long, default_value_t = 5.0)]
    pub message_rate: f64,
    /// Seconds of each messaging phase.
    #[arg(long, default_value_t = 10.0)]
    pub message_secs: f64,
    /// Sessions alive when an instance is killed (0: as many as the
    /// survivors can hold within their open-file limit).
    #[arg(long, default_value_t = 0)]
    pub recovery_sessions: usize,
    /// The instance killed (0 = a).
    #[arg(long, default_value_t = 0)]
    pub kill: usize,
    /// Reconnecting users per worker at once after the kill.
    #[arg(long, default_value_t = 64)]
    pub reconnect_concurrency: usize,
    /// Pause before glasses try again after a 503/409.
    #[arg(long, default_value_t = 200)]
    pub retry_ms: u64,
    /// SIGHTLINE_LEASE_TTL_MS of every instance.
    #[arg(long, default_value_t = 6000)]
    pub lease_ttl_ms: u64,
    /// HEARTBEAT_INTERVAL_MS of every instance.
    #[arg(long, default_value_t = 15_000)]
    pub heartbeat_ms: u64,
    /// SIGHTLINE_STORE_TIMEOUT_MS of every instance: nx-27017, the MongoDB
    /// wire server the run uses, answers far slower than MongoDB once it
    /// holds many users (one Python thread on SQLite).
    #[arg(long, default_value_t = 10_000)]
    pub store_timeout_ms: u64,
    /// Skip the single-process scale run the memory figures go beside.
    #[arg(long)]
    pub no_baseline: bool,
    /// The nats-server executable.
    #[arg(long, default_value = "nats-server", env = "SIGHTLINE_NATS_SERVER")]
    #[serde(skip)]
    pub nats_server: PathBuf,
    /// The nx-27017 executable (default: $SIGHTLINE_NX27017, else
    /// $SIGHTLINE_CACHE/bin/nx-27017).
    #[arg(long)]
    #[serde(skip)]
    pub nx27017: Option<PathBuf>,
    /// Where the JSON goes.
    #[arg(long, default_value = "bench-results/cluster.json")]
    #[serde(skip)]
    pub out: PathBuf,
}

/// The cluster scenario.
pub async fn run(args: &ClusterArgs, programs: &Programs) -> Result<ClusterResult> {
    check_programs(programs, &[Kind::Sightline])?;
    let nx = infra::nx27017_executable(args.nx27017.as_deref())?;
    let n = args.instances.max(2);
    let per_session = 1 + args.apps;
    let fd_limit = procstat::raise_fd_limit() as usize;
    let usable = fd_limit.saturating_sub(FD_RESERVE);
    let fits_survivors = (n - 1) * usable / per_session;
    let recovery_sessions = match args.recovery_sessions {
        0 => args.sessions.min(fits_survivors),
        s => s.min(args.sessions),
    };
    let per_instance = args.sessions.div_ceil(n);
    let peak = per_instance.max(recovery_sessions.div_ceil(n - 1)) + args.handovers.div_ceil(n);
    let max_connections = (peak * per_session + 100).max(16_000);
    let workers_n = args.workers.clamp(1, args.sessions.max(1));
    let per_worker = args.sessions.div_ceil(workers_n);
    println!(
        "cluster: {n} instances, sessions={} (glasses + {} apps = {} WebSockets, {per_instance} sessions each) workers={workers_n} handovers={} messages {}/worker × {}/s × {} s, recovery with {recovery_sessions} sessions; fd limit {fd_limit}, SIGHTLINE_MAX_CONNECTIONS={max_connections}",
        args.sessions,
        args.apps,
        args.sessions * per_session,
        args.handovers,
        args.message_pairs,
        args.message_rate,
        args.message_secs
    );
    if per_instance * per_session > usable || per_worker * per_session > usable {
        eprintln!(
            "cluster: warning: {} sockets per instance / {} per worker is near the open-file limit ({fd_limit}); pass more --instances or --workers",
            per_instance * per_session,
            per_worker * per_session
        );
    }
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("sightline-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let backing = Backing::start(&args.nats_server, &nx, &dir).await?;
    let result = run_on(
        args,
        programs,
        &backing,
        &dir,
        recovery_sessions,
        max_connections,
    )
    .await;
    drop(backing);
    let _ = std::fs::remove_dir_all(&dir);
    let mut result = result?;
    result.secs = started.elapsed().as_secs_f64();
    if !args.no_baseline {
        let baseline = ScaleArgs {
            sessions: per_instance,
            apps: args.apps,
            workers: (per_instance * per_session).div_ceil(9000).max(1),
            concurrency: args.concurrency,
            idle_secs: args.idle_secs.min(10.0),
            heartbeat_ms: args.heartbeat_ms,
            targets: vec![Kind::Sightline],
        };
        println!("cluster: the single-process figures beside it:");
        result.single_process = scale::run(&baseline, programs).await?.into_iter().next();
    }
    report::print_summary(&result);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("cluster: results in {}", args.out.display());
    Ok(result)
}

async fn run_on(
    args: &ClusterArgs,
    programs: &Programs,
    backing: &Backing,
    dir: &std::path::Path,
    recovery_sessions: usize,
    max_connections: usize,
) -> Result<ClusterResult> {
    let n = args.instances.max(2);
    let env: Vec<(&'static str, String)> = vec![
        ("SIGHTLINE_NATS_URL", backing.nats_url.clone()),
        ("SIGHTLINE_MONGODB_URI", backing.mongo_uri.clone()),
        ("SIGHTLINE_LEASE_TTL_MS", args.lease_ttl_ms.to_string()),
        ("SIGHTLINE_OWNERSHIP_BUCKET", "bench-owners".to_string()),
        ("SIGHTLINE_MAX_CONNECTIONS", max_connections.to_string()),
        ("HEARTBEAT_INTERVAL_MS", args.heartbeat_ms.to_string()),
        (
            "SIGHTLINE_STORE_TIMEOUT_MS",
            args.store_timeout_ms.to_string(),
        ),
        ("CONNECTION_TIMEOUT_MS", (args.heartbeat_ms * 3).to_string()),
        // Every app socket of the run comes from 16 loopback addresses;
        // real app servers are many hosts.
        ("SIGHTLINE_MAX_UNAUTHENTICATED", "4096".to_string()),
        (
            "SIGHTLINE_MAX_UNAUTHENTICATED_PER_ADDRESS",
            "1024".to_string(),
        ),
    ];
    let mut instances = Vec::new();
    for i in 0..n {
        instances.push(Instance::start(i, programs, &env, dir).await?);
    }
    for i in &instances {
        i.wait_ready(Duration::from_secs(60)).await?;
    }
    let result = measure(args, &mut instances, recovery_sessions, backing.nats_pid).await;
    for i in instances {
        i.stop().await;
    }
    result
}

async fn measure(
    args: &ClusterArgs,
    instances: &mut [Instance],
    recovery_sessions: usize,
    nats_pid: Option<u32>,
) -> Result<ClusterResult> {
    let workers_n = args.workers.clamp(1, args.sessions.max(1));
    let per_worker = args.sessions.div_ceil(workers_n);
    let servers: Vec<String> = instances.iter().map(|i| i.addr.to_string()).collect();
    let mut workers = Vec::new();
    for w in 0..workers_n {
        let (from, to) = (w * per_worker, ((w + 1) * per_worker).min(args.sessions));
        if from >= to {
            break;
        }
        let a: Vec<String> = [
            "cluster-worker",
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
            "--servers",
            &servers.join(","),
        ]
        .map(String::from)
        .to_vec();
        workers.push(Worker::spawn(&a)?);
    }
    for (w, worker) in workers.iter_mut().enumerate() {
        let urls = worker.line("PORTS", Duration::from_secs(20)).await?;
        for (k, url) in urls.split_whitespace().enumerate() {
            let (package, key) = worker::worker_app(w, k);
            instances[0]
                .target()?
                .register_app(&package, url, &key, &["ALL"])
                .await?;
        }
    }
    let result = phases::phases(args, instances, &mut workers, recovery_sessions, nats_pid).await;
    for w in workers {
        w.stop().await;
    }
    result
}
