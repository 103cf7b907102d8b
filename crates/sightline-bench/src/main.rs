//! `sightline-bench`: Sightline's load generator and benchmark suite.
//!
//! Every scenario is a subcommand that prints its parameters and its
//! numbers; `suite` runs them all and writes JSON and markdown. Servers
//! under test run as separate processes (see [`target`]), so their CPU and
//! memory are read apart from the generator's, which is reported next to
//! them. Nothing here runs under `cargo test`.

mod apps;
mod cluster;
mod cost;
mod deploy;
mod fanout;
mod glasses;
mod hist;
mod lc3;
mod lifecycle;
mod mixed;
mod net;
mod procstat;
mod relay;
mod scale;
mod suite;
mod target;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::glasses::Payload;
use crate::target::Programs;

#[derive(Parser)]
#[command(
    name = "sightline-bench",
    about = "Sightline's load generator and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fan-out of glasses `button_press` events to K subscribed apps, up to
    /// saturation, on Sightline and the baselines.
    Fanout {
        #[command(flatten)]
        args: fanout::FanoutArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// LC3 decode time next to liblc3, and PCM fan-out to `audio_chunk`
    /// apps on Sightline and the baselines.
    Audio {
        #[command(flatten)]
        args: fanout::FanoutArgs,
        /// Seconds of signal decoded per pass.
        #[arg(long, default_value_t = 10)]
        lc3_secs: usize,
        #[arg(long, default_value_t = 5)]
        lc3_passes: usize,
        /// Only the LC3 comparison.
        #[arg(long)]
        lc3_only: bool,
        #[command(flatten)]
        programs: Programs,
    },
    /// Ramp to N sessions (glasses + 2 apps) and hold them with heartbeats.
    Scale {
        #[command(flatten)]
        args: scale::ScaleArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// Three `sightline serve` instances sharing NATS and MongoDB: sessions
    /// and memory per instance, hand-over time, cross-instance messages
    /// beside local ones, recovery of a killed instance.
    Cluster {
        #[command(flatten)]
        args: cluster::ClusterArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// Sessions per second through the whole lifecycle.
    Churn {
        #[command(flatten)]
        args: lifecycle::ChurnArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// `connection_init` → ack and `start_app` → app acked with sessions live.
    Appstart {
        #[command(flatten)]
        args: lifecycle::AppStartArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// Glasses-event → app latency while users speak (transcription) and
    /// caption apps display, beside the same events alone.
    Mixed {
        #[command(flatten)]
        args: mixed::MixedArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// Every scenario beside both baselines; writes results.json/.md.
    Suite {
        #[command(flatten)]
        args: suite::SuiteArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// Instructions per relayed event and audio frame, counted under
    /// callgrind, checked against (or recorded in) bench/cost-guard.json.
    Cost {
        #[command(flatten)]
        args: cost::CostArgs,
        #[command(flatten)]
        programs: Programs,
    },
    /// The bare tokio-tungstenite relay (a baseline; started by the runs).
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        port: u16,
    },
    /// One load generator process of `scale` (started by it).
    #[command(hide = true)]
    ScaleWorker {
        #[command(flatten)]
        args: scale::WorkerArgs,
    },
    /// One load generator process of `cluster` (started by it).
    #[command(hide = true)]
    ClusterWorker {
        #[command(flatten)]
        args: cluster::worker::WorkerArgs,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    procstat::raise_fd_limit();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Fanout { args, programs } => {
                fanout::run(&args, &programs, Payload::Event).await?;
            }
            Command::Audio {
                args,
                lc3_secs,
                lc3_passes,
                lc3_only,
                programs,
            } => {
                lc3::compare(lc3_secs, lc3_passes, &[20, 40])?;
                if !lc3_only {
                    fanout::run(&args, &programs, Payload::Pcm).await?;
                }
            }
            Command::Scale { args, programs } => {
                scale::run(&args, &programs).await?;
            }
            Command::Cluster { args, programs } => {
                cluster::run(&args, &programs).await?;
            }
            Command::Churn { args, programs } => {
                lifecycle::churn(&args, &programs).await?;
            }
            Command::Appstart { args, programs } => {
                lifecycle::app_start(&args, &programs).await?;
            }
            Command::Mixed { args, programs } => {
                mixed::run(&args, &programs).await?;
            }
            Command::Suite { args, programs } => suite::run(&args, &programs).await?,
            Command::Cost { args, programs } => cost::run(&args, &programs).await?,
            Command::Relay { port } => relay::run(port).await?,
            Command::ScaleWorker { args } => scale::worker(args).await?,
            Command::ClusterWorker { args } => cluster::worker::run(args).await?,
        }
        Ok(())
    })
}
