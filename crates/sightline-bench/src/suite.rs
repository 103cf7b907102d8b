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
use crate::mixed::{self, MixedArgs, MixedRun};
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
    /// The mixed load; its event rate is set from the event fan-out's
    /// saturation.
    mixed: MixedArgs,
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
        repeats: if quick { 2 } else { 3 },
        fixed: vec![32_000.0],
    };
    let mixed = MixedArgs {
        users: 1000,
        speakers: 100,
        event_rate: 0.0,
        secs: if quick { 4.0 } else { 10.0 },
    };
    if quick {
        Plan {
            fanout: fanout(500, 4, 2.0, 2000.0, &[0.2, 0.5, 0.8]),
            audio: fanout(500, 2, 2.0, 1000.0, &[0.2, 0.5, 0.8]),
            mixed,
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
            fanout: fanout(1000, 4, 4.0, 1000.0, &[0.1, 0.2, 0.4, 0.6, 0.8]),
            audio: fanout(1000, 2, 4.0, 1000.0, &[0.1, 0.2, 0.4, 0.6, 0.8]),
            mixed,
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
    // The mixed load's glasses send events at the rate of the event
    // fan-out's 20 % point (glasses frames per second; each event reaches
    // one app here).
    let mut mixed_args = plan.mixed.clone();
    mixed_args.event_rate = (0.2 * median_saturation(&fan, Kind::Sightline)
        / plan.fanout.apps.max(1) as f64)
        .max(1000.0);
    let mixed = mixed::run(&mixed_args, programs).await?;
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
        "mixed": mixed,
        "appstart": appstart,
        "churn": churn,
        "scale": scale,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let md = markdown(&results, &fan, &audio, &mixed);
    std::fs::write(args.out.join("results.md"), &md)?;
    println!("\n{md}");
    println!("results in {}", args.out.display());
    Ok(())
}

/// The first repetition's run of `kind` (the one with the latency sweep).
fn find(runs: &[TargetRun], kind: Kind) -> Option<&TargetRun> {
    runs.iter().find(|r| r.target == kind && r.repeat == 0)
}

/// Minimum, median and maximum.
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[0], median, v[n - 1]))
}

fn saturations(runs: &[TargetRun], kind: Kind) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.target == kind)
        .map(|r| r.saturation_delivered)
        .collect()
}

fn median_saturation(runs: &[TargetRun], kind: Kind) -> f64 {
    spread(saturations(runs, kind)).map_or(0.0, |s| s.1)
}

/// Sightline's saturation over a baseline's, repetition by repetition.
fn ratios(runs: &[TargetRun], base: Kind) -> Vec<f64> {
    let reps = runs.iter().map(|r| r.repeat).max().map_or(0, |m| m + 1);
    (0..reps)
        .filter_map(|k| {
            let of = |kind| {
                runs.iter()
                    .find(|r| r.target == kind && r.repeat == k)
                    .map(|r| r.saturation_delivered)
            };
            match (of(Kind::Sightline), of(base)) {
                (Some(s), Some(b)) if b > 0.0 => Some(s / b),
                _ => None,
            }
        })
        .collect()
}

/// Server µs per delivered frame at the first fixed load, every repetition.
fn fixed_cpu(runs: &[TargetRun], kind: Kind) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.target == kind)
        .filter_map(|r| r.fixed.first().map(|s| s.server_cpu_us_per_delivered))
        .collect()
}

fn fmt_spread(s: Option<(f64, f64, f64)>, digits: usize) -> String {
    match s {
        Some((lo, mid, hi)) => format!("{mid:.digits$} ({lo:.digits$} – {hi:.digits$})"),
        None => "–".into(),
    }
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
    for r in runs.iter().filter(|r| r.repeat == 0) {
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
    repeated_section(md, runs);
    let _ = writeln!(
        md,
        "\nEvery load step of the first repetition (probe doubling to saturation, the sweep, then the fixed load):\n"
    );
    let _ = writeln!(md, "| server | offered/s | sent/s | delivered/s | delivered/expected | p50 ms | p99 ms | p99.9 ms | server CPU % | generator CPU % |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs.iter().filter(|r| r.repeat == 0) {
        for s in r.probe.iter().chain(&r.sweep).chain(&r.fixed) {
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

/// Every repetition's saturation, the ratios' spread, and server CPU per
/// delivered frame at the fixed load.
fn repeated_section(md: &mut String, runs: &[TargetRun]) {
    let _ = writeln!(
        md,
        "\nSaturation in every repetition (servers in rotating order), delivered/s:\n"
    );
    let _ = writeln!(md, "| repetition | sightline | bare-relay | node-relay | sightline / bare | sightline / Node | µs/frame at {} delivered/s: sightline | bare | Node |", runs.first().and_then(|r| r.fixed.first()).map_or(0.0, |s| s.delivered.round()));
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let reps = runs.iter().map(|r| r.repeat).max().map_or(0, |m| m + 1);
    for k in 0..reps {
        let of = |kind| runs.iter().find(|r| r.target == kind && r.repeat == k);
        let sat = |kind| of(kind).map_or(0.0, |r: &TargetRun| r.saturation_delivered);
        let us = |kind| {
            of(kind)
                .and_then(|r: &TargetRun| r.fixed.first())
                .map_or("–".to_string(), |s| {
                    format!("{:.2}", s.server_cpu_us_per_delivered)
                })
        };
        let (s, b, n) = (
            sat(Kind::Sightline),
            sat(Kind::BareRelay),
            sat(Kind::NodeRelay),
        );
        let _ = writeln!(
            md,
            "| {} | {s:.0} | {b:.0} | {n:.0} | {} | {} | {} | {} | {} |",
            k + 1,
            ratio(s, b),
            ratio(s, n),
            us(Kind::Sightline),
            us(Kind::BareRelay),
            us(Kind::NodeRelay)
        );
    }
    let _ = writeln!(
        md,
        "| **median (min – max)** | {} | {} | {} | {} | {} | {} | {} | {} |",
        fmt_spread(spread(saturations(runs, Kind::Sightline)), 0),
        fmt_spread(spread(saturations(runs, Kind::BareRelay)), 0),
        fmt_spread(spread(saturations(runs, Kind::NodeRelay)), 0),
        fmt_spread(spread(ratios(runs, Kind::BareRelay)), 2),
        fmt_spread(spread(ratios(runs, Kind::NodeRelay)), 2),
        fmt_spread(spread(fixed_cpu(runs, Kind::Sightline)), 2),
        fmt_spread(spread(fixed_cpu(runs, Kind::BareRelay)), 2),
        fmt_spread(spread(fixed_cpu(runs, Kind::NodeRelay)), 2),
    );
}

/// The mixed load's two phases.
fn mixed_section(md: &mut String, m: &MixedRun) {
    let p = &m.params;
    let _ = writeln!(
        md,
        "### Events under a mixed load ({} users, {} speaking, {:.0} events/s)\n",
        p.users, p.speakers, p.event_rate
    );
    let _ = writeln!(md, "Each user's glasses send `button_press` events to a listener app; in the mixed phase {} users also stream PCM in real time, transcribed through the Vosk provider path (a recogniser answering by audio length), and a captions app shows every transcript on their glasses.\n", p.speakers);
    let _ = writeln!(md, "| phase | events delivered/s | p50 ms | p99 ms | p99.9 ms | audio frames/s | transcripts/s | display requests/s | displays shown/s | server CPU % | generator CPU % |");
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for ph in [&m.alone, &m.mixed] {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            ph.name,
            ph.events_delivered,
            ph.latency.p50,
            ph.latency.p99,
            ph.latency.p999,
            ph.audio_frames,
            ph.transcripts,
            ph.display_requests,
            ph.displays_shown,
            ph.server_cpu,
            ph.generator_cpu
        );
    }
    let _ = writeln!(md);
}

/// The whole report.
fn markdown(results: &Value, fan: &[TargetRun], audio: &[TargetRun], mixed: &MixedRun) -> String {
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
    mixed_section(&mut md, mixed);
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
    for (what, runs, bare_goal, node_goal) in [
        ("event fan-out", fan, 0.6, 3.0),
        ("PCM audio fan-out", audio, 0.6, 2.0),
    ] {
        let rb = spread(ratios(runs, Kind::BareRelay));
        let rn = spread(ratios(runs, Kind::NodeRelay));
        let _ = writeln!(
            md,
            "| {what} ≥ {bare_goal}× the bare relay (median of the repetitions) | {}× | {} |",
            fmt_spread(rb, 2),
            verdict(rb.is_some_and(|r| r.1 >= bare_goal))
        );
        let _ = writeln!(
            md,
            "| {what} ≥ {node_goal}× the Node relay | {}× | {} |",
            fmt_spread(rn, 2),
            verdict(rn.is_some_and(|r| r.1 >= node_goal))
        );
        if let Some(st) = find(runs, Kind::Sightline).and_then(|s| s.at_fraction(0.2)) {
            let _ = writeln!(
                md,
                "| {what}: p99 < 2 ms at 20 % of saturation | {:.3} ms | {} |",
                st.latency.p99,
                verdict(st.latency.p99 < 2.0)
            );
        }
    }
    let cpu = spread(fixed_cpu(fan, Kind::Sightline));
    let _ = writeln!(
        md,
        "| server CPU ≤ 9 µs per delivered event at 32 000 deliveries/s | {} µs | {} |",
        fmt_spread(cpu, 2),
        verdict(cpu.is_some_and(|c| c.1 <= 9.0))
    );
    let _ = writeln!(
        md,
        "| events under the mixed load: p99 < 2 ms | {:.3} ms (alone: {:.3} ms) | {} |",
        mixed.mixed.latency.p99,
        mixed.alone.latency.p99,
        verdict(mixed.mixed.latency.p99 < 2.0)
    );
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
            "| ≤ 40 KiB resident per session (glasses + 2 apps) at 6 000 sessions | {kib:.1} KiB | {} |",
            sized(want >= 6000, kib <= 40.0)
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
