//! `suite [--quick]`: every scenario in one run, beside both baselines,
//! written to `<out>/results.json` and `<out>/results.md`. The markdown
//! states each result as a ratio to the bare relay (this machine's
//! transport ceiling) and to the Node relay (the original cloud's
//! transport), and checks each target.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

use crate::fanout::{self, FanoutArgs, TargetRun};
use crate::glasses::Payload;
use crate::lc3;
use crate::lifecycle::{self, AppStartArgs, ChurnArgs};
use crate::procstat;
use crate::scale::{self, ScaleArgs};
use crate::target::{Kind, Programs};

/// Arguments of the suite.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// A few minutes instead of the full run.
    #[arg(long)]
    pub quick: bool,
    /// Where results.json and results.md go.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
}

const ALL: [Kind; 3] = [Kind::Sightline, Kind::BareRelay, Kind::NodeRelay];

/// Parameters of every scenario, quick or full.
struct Plan {
    fanout: FanoutArgs,
    audio: FanoutArgs,
    lc3_secs: usize,
    lc3_passes: usize,
    appstart: AppStartArgs,
    churn: ChurnArgs,
    scale: ScaleArgs,
}

fn plan(quick: bool) -> Plan {
    let fanout = |users, apps, step_secs, start_rate, fractions: &[f64]| FanoutArgs {
        users,
        apps,
        targets: ALL.to_vec(),
        step_secs,
        start_rate,
        refine: if quick { 2 } else { 3 },
        fractions: fractions.to_vec(),
    };
    if quick {
        Plan {
            fanout: fanout(50, 4, 2.0, 2000.0, &[0.2, 0.5, 0.8]),
            audio: fanout(50, 2, 2.0, 1000.0, &[0.2, 0.5, 0.8]),
            lc3_secs: 3,
            lc3_passes: 3,
            appstart: AppStartArgs {
                live: 300,
                samples: 150,
                sampled_sessions: 30,
            },
            churn: ChurnArgs {
                concurrency: 8,
                secs: 8.0,
                glasses_grace_ms: 1000,
            },
            scale: ScaleArgs {
                sessions: 1000,
                apps: 2,
                workers: 2,
                concurrency: 16,
                idle_secs: 10.0,
                heartbeat_ms: 5000,
                targets: ALL.to_vec(),
            },
        }
    } else {
        Plan {
            fanout: fanout(100, 4, 4.0, 1000.0, &[0.1, 0.2, 0.4, 0.6, 0.8]),
            audio: fanout(100, 2, 4.0, 1000.0, &[0.1, 0.2, 0.4, 0.6, 0.8]),
            lc3_secs: 10,
            lc3_passes: 5,
            appstart: AppStartArgs {
                live: 1000,
                samples: 500,
                sampled_sessions: 50,
            },
            churn: ChurnArgs {
                concurrency: 16,
                secs: 20.0,
                glasses_grace_ms: 1000,
            },
            scale: ScaleArgs {
                sessions: 6000,
                apps: 2,
                workers: 3,
                concurrency: 16,
                idle_secs: 30.0,
                heartbeat_ms: 15_000,
                targets: ALL.to_vec(),
            },
        }
    }
}

/// Runs the suite.
pub async fn run(args: &SuiteArgs, programs: &Programs) -> Result<()> {
    let plan = plan(args.quick);
    std::fs::create_dir_all(&args.out)?;
    let started = Instant::now();
    let machine = procstat::machine();
    println!(
        "suite ({}): machine {machine}",
        if args.quick { "quick" } else { "full" }
    );
    let fan = fanout::run(&plan.fanout, programs, Payload::Event).await?;
    let lc3 = lc3::compare(plan.lc3_secs, plan.lc3_passes, &[20, 40])
        .map(|r| json!(r))
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let audio = fanout::run(&plan.audio, programs, Payload::Pcm).await?;
    let appstart = lifecycle::app_start(&plan.appstart, programs).await?;
    let churn = lifecycle::churn(&plan.churn, programs).await?;
    let scale = scale::run(&plan.scale, programs).await?;
    let results = json!({
        "mode": if args.quick { "quick" } else { "full" },
        "machine": machine,
        "loadavgEnd": procstat::loadavg(),
        "secs": started.elapsed().as_secs_f64(),
        "fanout": {"params": plan.fanout, "runs": fan},
        "audio": {"lc3": lc3, "pcmFanout": {"params": plan.audio, "runs": audio}},
        "appstart": appstart,
        "churn": churn,
        "scale": scale,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let md = markdown(&results, &fan, &audio);
    std::fs::write(args.out.join("results.md"), &md)?;
    println!("\n{md}");
    println!("results in {}", args.out.display());
    Ok(())
}

fn find(runs: &[TargetRun], kind: Kind) -> Option<&TargetRun> {
    runs.iter().find(|r| r.target == kind)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// A verdict for a target that names a size: a run smaller than that
/// size (the quick run) does not judge it.
fn sized(big_enough: bool, ok: bool) -> &'static str {
    if big_enough {
        verdict(ok)
    } else {
        "not judged (run smaller than the target)"
    }
}

/// One fan-out section: per server, saturation and the ~20 % point, with
/// ratios to both baselines.
fn fanout_section(md: &mut String, title: &str, runs: &[TargetRun]) {
    let _ = writeln!(md, "### {title}\n");
    let _ = writeln!(md, "| server | saturation (delivered/s) | vs bare relay | vs Node relay | at ~20 %: delivered/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/frame | server CPU % | generator CPU % |");
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let bare = find(runs, Kind::BareRelay).map_or(0.0, |r| r.saturation_delivered);
    let node = find(runs, Kind::NodeRelay).map_or(0.0, |r| r.saturation_delivered);
    for r in runs {
        let Some(s) = r.at_fraction(0.2) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.2} | {:.0} | {:.0} |",
            r.target.label(),
            r.saturation_delivered,
            ratio(r.saturation_delivered, bare),
            ratio(r.saturation_delivered, node),
            s.delivered,
            s.latency.p50,
            s.latency.p99,
            s.latency.p999,
            s.server_cpu_us_per_delivered,
            s.server_cpu,
            s.generator_cpu
        );
    }
    let _ = writeln!(
        md,
        "\nEvery load step (probe doubling to saturation, then the sweep):\n"
    );
    let _ = writeln!(md, "| server | offered/s | sent/s | delivered/s | delivered/expected | p50 ms | p99 ms | p99.9 ms | server CPU % | generator CPU % |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        for s in r.probe.iter().chain(r.sweep.iter()) {
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.0} | {:.0} | {:.2}{} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} |",
                r.target.label(),
                s.offered,
                s.sent,
                s.delivered,
                s.delivery_ratio,
                if s.saturated { " (saturated)" } else { "" },
                s.latency.p50,
                s.latency.p99,
                s.latency.p999,
                s.server_cpu,
                s.generator_cpu
            );
        }
    }
    let _ = writeln!(md);
}

/// The whole report.
fn markdown(results: &Value, fan: &[TargetRun], audio: &[TargetRun]) -> String {
    let mut md = String::new();
    let m = &results["machine"];
    let _ = writeln!(
        md,
        "## Results ({} run)\n",
        results["mode"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        md,
        "Machine: {} cores ({}), {} GiB memory, Linux {}, open-file limit {}. Load average at start {}, at end {}. Suite took {:.0} s.\n",
        m["cores"], m["cpu"].as_str().unwrap_or(""), m["memGiB"], m["kernel"].as_str().unwrap_or(""), m["fdLimit"],
        m["loadavg"].as_str().unwrap_or(""), results["loadavgEnd"].as_str().unwrap_or(""), f(&results["secs"])
    );
    let p = &results["fanout"]["params"];
    fanout_section(
        &mut md,
        &format!(
            "Fan-out of glasses events ({} users × {} apps, `button_press`)",
            p["users"], p["apps"]
        ),
        fan,
    );
    let p = &results["audio"]["pcmFanout"]["params"];
    fanout_section(
        &mut md,
        &format!(
            "PCM audio fan-out ({} users × {} `audio_chunk` apps, 640-byte frames)",
            p["users"], p["apps"]
        ),
        audio,
    );
    let _ = writeln!(md, "### LC3 decode\n\n| bytes/frame | Sightline ns/frame | liblc3 ns/frame | Sightline / liblc3 | Sightline vs liblc3 SNR dB |\n|---:|---:|---:|---:|---:|");
    let lc3 = results["audio"]["lc3"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for r in &lc3 {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.2} | {:.1} |",
            r["frameBytes"],
            f(&r["sightlineNsPerFrame"]),
            f(&r["liblc3NsPerFrame"]),
            f(&r["ratio"]),
            f(&r["sightlineVsLiblc3SnrDb"])
        );
    }
    if let Some(e) = results["audio"]["lc3"]["error"].as_str() {
        let _ = writeln!(md, "\nnot measured: {e}");
    }
    let a = &results["appstart"];
    let _ = writeln!(
        md,
        "\n### App start with {} live sessions (glasses + 1 app each; ramped in {:.1} s)\n\n| measurement | samples | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|---:|",
        a["params"]["live"], f(&a["rampSecs"])
    );
    for (name, key) in [
        ("connection_init → connection_ack", "initToAck"),
        ("start_app → tpa_connection_ack", "startToAppAcked"),
        ("stop_app → app_stopped", "stopToAppStopped"),
    ] {
        let p = &a[key];
        let _ = writeln!(
            md,
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            p["count"],
            f(&p["p50"]),
            f(&p["p99"]),
            f(&p["p999"]),
            f(&p["max"])
        );
    }
    let c = &results["churn"];
    let _ = writeln!(
        md,
        "\n### Churn ({} workers, {} s, a new user per cycle, glasses grace {} ms)\n\n{} cycles ({} failed): **{:.1} sessions/s**; server CPU {:.0} %, generator CPU {:.0} %; left after the grace period: {}.\n\n| step | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|",
        c["params"]["concurrency"], c["params"]["secs"], c["params"]["glassesGraceMs"], c["cycles"], c["failures"], f(&c["sessionsPerSec"]), f(&c["serverCpu"]), f(&c["generatorCpu"]), c["sessionsLeft"]
    );
    for (name, key) in [
        ("connect → connection_ack", "connectToAck"),
        ("start_app → app acked", "startToAppAcked"),
        ("stop_app → app_stopped", "stopToAppStopped"),
        ("close → server close frame", "disconnect"),
    ] {
        let p = &c[key];
        let _ = writeln!(
            md,
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            f(&p["p50"]),
            f(&p["p99"]),
            f(&p["p999"]),
            f(&p["max"])
        );
    }
    let scale = results["scale"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(md, "\n### Scale\n\n| server | sessions held | failed | WebSockets | ramp s | RSS before MiB | RSS after MiB | KiB/session | open fds | idle CPU % | ramp CPU % | generator RSS MiB | generator idle CPU % | generator ramp CPU % |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &scale {
        let sockets =
            s["sessionsOk"].as_u64().unwrap_or(0) * (1 + s["params"]["apps"].as_u64().unwrap_or(0));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.1} | {} | {:.1} | {:.0} | {:.0} | {:.1} | {:.0} |",
            s["target"].as_str().unwrap_or(""), s["sessionsOk"], s["failures"], sockets, f(&s["rampSecs"]),
            f(&s["serverRssBeforeMib"]), f(&s["serverRssAfterMib"]), f(&s["rssPerSessionKib"]), s["serverOpenFds"],
            f(&s["serverIdleCpu"]), f(&s["serverRampCpu"]), f(&s["generatorRssMib"]), f(&s["generatorIdleCpu"]), f(&s["generatorRampCpu"])
        );
    }
    // Targets.
    let _ = writeln!(
        md,
        "\n### Targets\n\n| target | measured | verdict |\n|---|---|---|"
    );
    if let (Some(s), Some(b), Some(n)) = (
        find(fan, Kind::Sightline),
        find(fan, Kind::BareRelay),
        find(fan, Kind::NodeRelay),
    ) {
        let rb = s.saturation_delivered / b.saturation_delivered.max(1.0);
        let rn = s.saturation_delivered / n.saturation_delivered.max(1.0);
        let _ = writeln!(
            md,
            "| fan-out ≥ 60 % of the bare relay | {:.0} % | {} |",
            rb * 100.0,
            verdict(rb >= 0.6)
        );
        let _ = writeln!(
            md,
            "| fan-out ≥ 3× the Node relay | {rn:.2}× | {} |",
            verdict(rn >= 3.0)
        );
        if let Some(st) = s.at_fraction(0.2) {
            let _ = writeln!(
                md,
                "| p99 < 2 ms at 20 % of saturation | {:.3} ms | {} |",
                st.latency.p99,
                verdict(st.latency.p99 < 2.0)
            );
        }
    }
    if let Some(s) = scale.iter().find(|s| s["target"] == "sightline") {
        let held = s["sessionsOk"].as_u64().unwrap_or(0);
        let want = s["params"]["sessions"].as_u64().unwrap_or(0);
        let _ = writeln!(
            md,
            "| 6 000 sessions held | {held} of {want} asked | {} |",
            sized(want >= 6000, held >= 6000)
        );
        let kib = f(&s["rssPerSessionKib"]);
        let _ = writeln!(
            md,
            "| < 150 KiB resident per session | {kib:.1} KiB | {} |",
            verdict(kib < 150.0)
        );
    }
    let init = f(&a["initToAck"]["p99"]);
    let live = a["params"]["live"].as_u64().unwrap_or(0);
    let _ = writeln!(
        md,
        "| connection_init → ack p99 < 5 ms with 1 000 live | {init:.2} ms with {live} live | {} |",
        sized(live >= 1000, init < 5.0)
    );
    let start = f(&a["startToAppAcked"]["p99"]);
    let _ = writeln!(
        md,
        "| start_app → app acked p99 < 50 ms | {start:.2} ms | {} |",
        verdict(start < 50.0)
    );
    let worst = lc3.iter().map(|r| f(&r["ratio"])).fold(0.0, f64::max);
    if !lc3.is_empty() {
        let _ = writeln!(
            md,
            "| LC3 decode ≤ 1.5× liblc3 | {worst:.2}× (worst frame size) | {} |",
            verdict(worst <= 1.5)
        );
    }
    md
}
