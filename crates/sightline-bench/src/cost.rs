//! The cost guard: instructions Sightline executes per relayed event and
//! per relayed PCM audio frame, counted by valgrind's callgrind, so the
//! figure does not depend on the machine's speed or load.
//!
//! Only the server runs under callgrind; the glasses and apps of
//! [`deploy`](crate::deploy) run natively here. The server is first started
//! natively once on a fresh embedded store (so its signing key and store
//! exist), then under callgrind on that store. After the users and apps are
//! connected and warmed up, the load is sent in lock-step rounds (every
//! glasses sends one frame, then everything waits until every app has it)
//! and `callgrind_control --dump` closes a phase after each run of rounds.
//! Each payload is run for N and then 2N rounds; the cost per delivery is
//! `(Ir(2N) − Ir(N)) / (N × users × apps)`, so whatever a phase costs
//! regardless of its length cancels out.
//!
//! The figures are compared with the record in `bench/cost-guard.json`:
//! more than `tolerance` times the recorded figure fails the run.
//!
//! `--server bare-relay` runs the same workload against the bare
//! tokio-tungstenite relay under callgrind and only prints its figures: the
//! transport's own instructions per delivery, beside Sightline's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};

use crate::deploy::{deploy_on, Deployment};
use crate::glasses::Payload;
use crate::target::{check_programs, Kind, Launch, Programs, Target};

/// Parameters of the cost guard.
#[derive(Debug, Clone, clap::Args)]
pub struct CostArgs {
    #[command(flatten)]
    pub workload: Workload,
    /// The recorded figures.
    #[arg(long, default_value = "bench/cost-guard.json")]
    pub record_file: PathBuf,
    /// Rewrite the record with this run's figures, for this reason, instead
    /// of checking against it.
    #[arg(long)]
    pub record: Option<String>,
    /// Commit the figures are recorded at (with --record).
    #[arg(long, default_value = "unknown")]
    pub commit: String,
    /// Date the figures are recorded on (with --record).
    #[arg(long, default_value = "unknown")]
    pub date: String,
    /// Highest accepted ratio of a figure to its record.
    #[arg(long, default_value_t = 1.2)]
    pub tolerance: f64,
    /// Also write this run's figures here, as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "valgrind")]
    pub valgrind: String,
    #[arg(long, default_value = "callgrind_control")]
    pub callgrind_control: String,
    /// The server measured: `sightline` (checked against the record) or
    /// `bare-relay` (figures printed only, for comparison).
    #[arg(long, default_value = "sightline")]
    pub server: Kind,
    /// Keep the data, server log and callgrind files (their directory is
    /// printed; a failed run always keeps them).
    #[arg(long)]
    pub keep: bool,
}

/// The fixed workload; figures are only compared between equal workloads.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// Simulated users (one glasses connection each).
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Subscribed apps per user (each subscribed to `button_press` and
    /// `audio_chunk`).
    #[arg(long, default_value_t = 2)]
    pub apps: usize,
    /// Unmeasured rounds of each payload before the measured ones.
    #[arg(long, default_value_t = 50)]
    pub warmup_rounds: usize,
    /// N: the short run has N rounds, the long one 2N.
    #[arg(long, default_value_t = 200)]
    pub rounds: usize,
}

/// The recorded figures (`bench/cost-guard.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Server instructions per `button_press` delivered to one app.
    pub instructions_per_event: u64,
    /// Server instructions per PCM frame delivered to one app.
    pub instructions_per_audio_frame: u64,
    pub workload: Workload,
    pub valgrind: String,
    pub commit: String,
    pub date: String,
    pub reason: String,
}

/// What one measured payload cost.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PayloadCost {
    ir_short: u64,
    ir_long: u64,
    deliveries_short: u64,
    deliveries_long: u64,
    per_delivery: f64,
}

/// Runs the workload, prints the figures and checks or rewrites the record.
pub async fn run(args: &CostArgs, programs: &Programs) -> Result<()> {
    let baseline = match args.server {
        Kind::Sightline => false,
        Kind::BareRelay if args.record.is_none() => true,
        Kind::BareRelay => bail!("--record applies to Sightline only"),
        Kind::NodeRelay => bail!("the Node relay's JIT is not measured under callgrind"),
    };
    check_programs(programs, &[args.server])?;
    let w = &args.workload;
    if w.users == 0 || w.apps == 0 || w.rounds == 0 {
        bail!("--users, --apps and --rounds must be positive");
    }
    let record = read_record(&args.record_file)?;
    if args.record.is_none() && !baseline {
        match &record {
            None => bail!(
                "{} does not exist: record figures with --record \"reason\"",
                args.record_file.display()
            ),
            Some(r) if r.workload != *w => bail!(
                "the workload differs from the recorded one ({:?}): run it as recorded or record again",
                r.workload
            ),
            Some(_) => {}
        }
    }
    let valgrind = tool_version(&args.valgrind).await?;
    let dir = std::env::temp_dir().join(format!(
        "sightline-cost-{}-{}",
        std::process::id(),
        crate::net::now_us()
    ));
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let measured = measure(args, programs, &dir).await;
    if args.keep || measured.is_err() {
        println!(
            "cost: data, server log and callgrind files kept in {}",
            dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (event, audio) = measured?;
    println!(
        "cost: {} users x {} apps, {} warm-up rounds, N={} ({valgrind}), {:.0} s",
        w.users,
        w.apps,
        w.warmup_rounds,
        w.rounds,
        started.elapsed().as_secs_f64()
    );
    let figures = [
        ("instructions per event", event.per_delivery),
        ("instructions per audio frame", audio.per_delivery),
    ];
    if baseline {
        println!("| figure | {} |", args.server.label());
        println!("|---|---:|");
        for (name, now) in figures {
            println!("| {name} | {now:.0} |");
        }
        return Ok(());
    }
    if let Some(out) = &args.out {
        let json = serde_json::json!({"workload": w, "valgrind": valgrind, "event": event, "audio": audio});
        std::fs::write(out, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(reason) = &args.record {
        let new = Record {
            instructions_per_event: event.per_delivery.round() as u64,
            instructions_per_audio_frame: audio.per_delivery.round() as u64,
            workload: w.clone(),
            valgrind,
            commit: args.commit.clone(),
            date: args.date.clone(),
            reason: reason.clone(),
        };
        for ((name, now), was) in figures.iter().zip(
            record
                .iter()
                .flat_map(|r| [r.instructions_per_event, r.instructions_per_audio_frame])
                .map(|v| v as f64)
                .map(Some)
                .chain(std::iter::repeat(None)),
        ) {
            match was {
                Some(was) => println!("cost: {name}: {now:.0} (was {was:.0})"),
                None => println!("cost: {name}: {now:.0}"),
            }
        }
        std::fs::write(
            &args.record_file,
            serde_json::to_string_pretty(&new)? + "\n",
        )
        .with_context(|| format!("writing {}", args.record_file.display()))?;
        println!("cost: recorded in {}", args.record_file.display());
        return Ok(());
    }
    let Some(record) = record else {
        bail!("no record to compare with");
    };
    if record.valgrind != valgrind {
        println!(
            "cost: note: recorded with {}, measured with {valgrind}",
            record.valgrind
        );
    }
    let recorded = [
        record.instructions_per_event as f64,
        record.instructions_per_audio_frame as f64,
    ];
    let mut failed = Vec::new();
    println!(
        "| figure | now | recorded ({}, {}) | ratio |",
        record.commit, record.date
    );
    println!("|---|---:|---:|---:|");
    for ((name, now), was) in figures.iter().zip(recorded) {
        let ratio = if was > 0.0 { now / was } else { f64::INFINITY };
        println!("| {name} | {now:.0} | {was:.0} | {ratio:.3} |");
        if ratio > args.tolerance {
            failed.push(format!("{name} is {ratio:.2}x the record"));
        }
    }
    if !failed.is_empty() {
        bail!(
            "cost guard: {} (limit {:.2}x); if the growth is deliberate, record it: scripts/cost-guard.sh --record \"reason\"",
            failed.join(", "),
            args.tolerance
        );
    }
    println!("cost: within {:.2}x of the record", args.tolerance);
    Ok(())
}

/// Starts the server under callgrind, runs the workload and reads the
/// phases' instruction counts: (events, audio).
async fn measure(
    args: &CostArgs,
    programs: &Programs,
    dir: &Path,
) -> Result<(PayloadCost, PayloadCost)> {
    let w = &args.workload;
    let data = dir.join("data");
    let programs = Programs {
        log_dir: dir.join("logs"),
        ..programs.clone()
    };
    let store_args = vec![
        "--store".to_string(),
        "embedded".to_string(),
        "--data-dir".to_string(),
        data.display().to_string(),
    ];
    // Natively first: the store and the signing key are created outside
    // the measured process (key generation is slow under callgrind).
    if args.server == Kind::Sightline {
        let native = Launch {
            serve_args: store_args.clone(),
            ..Launch::default()
        };
        let first = Target::start_with(Kind::Sightline, &programs, &[], &native).await?;
        first
            .terminate(libc::SIGINT, Duration::from_secs(20))
            .await?;
    }

    let out = dir.join("callgrind.out");
    let launch = Launch {
        wrapper: vec![
            args.valgrind.clone(),
            "--tool=callgrind".to_string(),
            format!("--callgrind-out-file={}", out.display()),
        ],
        serve_args: store_args,
        listen_within: Duration::from_secs(300),
        port: None,
    };
    let target = Target::start_with(args.server, &programs, &[], &launch).await?;
    let pid = target.pid();
    eprintln!(
        "cost: {} under callgrind (pid {pid}), connecting",
        args.server.label()
    );
    let mut dep = deploy_on(target, w.users, w.apps, &[Payload::Event, Payload::Pcm]).await?;
    settle(&dep).await;
    for payload in [Payload::Event, Payload::Pcm] {
        rounds(&mut dep, payload, w.warmup_rounds).await?;
    }
    let mut dumps = Dumps {
        control: &args.callgrind_control,
        pid,
        out: &out,
        next: 1,
    };
    dumps.take().await?; // start-up, connections and warm-up
    let mut costs = Vec::new();
    for payload in [Payload::Event, Payload::Pcm] {
        let deliveries_short = rounds(&mut dep, payload, w.rounds).await?;
        let ir_short = dumps.take().await?;
        let deliveries_long = rounds(&mut dep, payload, 2 * w.rounds).await?;
        let ir_long = dumps.take().await?;
        let extra = deliveries_long.saturating_sub(deliveries_short).max(1);
        let cost = PayloadCost {
            ir_short,
            ir_long,
            deliveries_short,
            deliveries_long,
            per_delivery: ir_long.saturating_sub(ir_short) as f64 / extra as f64,
        };
        eprintln!("cost: {payload:?}: {cost:?}");
        costs.push(cost);
    }
    let target = dep.into_target();
    // The clients' sockets close before the server is asked to end.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = target
        .terminate(libc::SIGTERM, Duration::from_secs(120))
        .await?;
    match total_ir(&out) {
        Ok(ir) => {
            eprintln!("cost: server ended ({status}); callgrind wrote {ir} Ir after the last dump")
        }
        Err(e) => bail!("callgrind wrote no final output after SIGTERM ({status}): {e:#}"),
    }
    let audio = costs.pop().context("no audio figure")?;
    let event = costs.pop().context("no event figure")?;
    Ok((event, audio))
}

/// Waits until nothing has been delivered for a second (frames the
/// deployment's probes left in flight have arrived).
async fn settle(dep: &Deployment) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = dep.metrics.delivered();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = dep.metrics.delivered();
        if now == last {
            return;
        }
        last = now;
    }
}

/// `n` lock-step rounds of `payload`: every glasses sends one frame, then
/// every app's copy is awaited. Returns the deliveries.
async fn rounds(dep: &mut Deployment, payload: Payload, n: usize) -> Result<u64> {
    let per_round = (dep.users * dep.apps) as u64;
    let start = dep.metrics.delivered();
    for round in 0..n {
        let want = dep.metrics.delivered() + per_round;
        for g in dep.glasses.iter_mut() {
            g.send(payload.frame()).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while dep.metrics.delivered() < want {
            if Instant::now() > deadline {
                bail!(
                    "{payload:?} round {round}: only {} of {per_round} deliveries within 60 s",
                    per_round + dep.metrics.delivered() - want
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(dep.metrics.delivered() - start)
}

/// Dumps of the callgrind profile, one per phase.
struct Dumps<'a> {
    control: &'a str,
    pid: u32,
    out: &'a Path,
    next: usize,
}

impl Dumps<'_> {
    /// Closes the current phase; returns its instructions.
    async fn take(&mut self) -> Result<u64> {
        let output = tokio::process::Command::new(self.control)
            .arg("--dump")
            .arg(self.pid.to_string())
            .output()
            .await
            .with_context(|| format!("running {}", self.control))?;
        if !output.status.success() {
            bail!(
                "{} --dump {} failed: {}{}",
                self.control,
                self.pid,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let file = PathBuf::from(format!("{}.{}", self.out.display(), self.next));
        self.next += 1;
        total_ir(&file)
    }
}

/// The total `Ir` of a callgrind output file (its `summary:` or `totals:`
/// line).
fn total_ir(file: &Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("summary:"))
        .or_else(|| text.lines().find(|l| l.starts_with("totals:")))
        .with_context(|| format!("{} has no summary line", file.display()))?;
    parse_total(line).with_context(|| format!("{}: bad line {line:?}", file.display()))
}

fn parse_total(line: &str) -> Option<u64> {
    line.split_once(':')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn read_record(path: &Path) -> Result<Option<Record>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `valgrind --version`, e.g. `valgrind-3.19.0`.
async fn tool_version(valgrind: &str) -> Result<String> {
    let output = tokio::process::Command::new(valgrind)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("running {valgrind} (install valgrind)"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrind_totals() {
        assert_eq!(parse_total("summary: 302418"), Some(302418));
        assert_eq!(parse_total("totals: 5732 12"), Some(5732));
        assert_eq!(parse_total("summary:"), None);
    }
}
