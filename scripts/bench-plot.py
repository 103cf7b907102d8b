#!/usr/bin/env python3
"""Draws the benchmark plots from a results.json written by
`sightline-bench suite` (scripts/bench.sh runs it):

  fanout-latency.png  p50 and p99 latency against delivered events/s,
                      Sightline beside the bare relay and the Node relay
  audio-latency.png   the same for PCM audio fan-out
  scale-memory.png    resident memory per held session, per server

Usage: bench-plot.py <results.json> <output directory>
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"sightline": "#1f77b4", "bare-relay": "#2ca02c", "node-relay": "#d62728"}


def latency_plot(runs, title, unit, path):
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for run in runs:
        name = run["target"]
        steps = sorted(run["probe"] + run["sweep"], key=lambda s: s["offered"])
        ok = [s for s in steps if not s["saturated"]]
        sat = [s for s in steps if s["saturated"]]
        c = COLOURS.get(name, None)
        for key, style, label in (("p99", "-", "p99"), ("p50", "--", "p50")):
            ax.plot([s["delivered"] for s in ok], [s["latency"][key] for s in ok],
                    style, marker="o", ms=3, color=c, label=f"{name} {label}")
        if sat:
            ax.plot([s["delivered"] for s in sat], [s["latency"]["p99"] for s in sat],
                    "x", color=c, ms=8, label=f"{name} saturated (p99)")
        ax.axvline(run["saturationDelivered"], color=c, alpha=0.25, lw=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"delivered {unit} per second (all apps)")
    ax.set_ylabel("latency, glasses send → app receive (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def scale_plot(scale, path):
    if not scale:
        return
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    names = [s["target"] for s in scale]
    kib = [s["rssPerSessionKib"] for s in scale]
    ax.bar(names, kib, color=[COLOURS.get(n, "#888") for n in names])
    for i, v in enumerate(kib):
        ax.text(i, v, f"{v:.1f}", ha="center", va="bottom")
    ax.axhline(150, color="black", ls=":", label="target: 150 KiB")
    held = scale[0]["sessionsOk"]
    ax.set_ylabel("resident memory per session (KiB)")
    ax.set_title(f"Memory per session ({held} sessions, glasses + 2 apps each)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    results = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    fan = results["fanout"]
    latency_plot(fan["runs"],
                 f"Fan-out: {fan['params']['users']} users x {fan['params']['apps']} apps, button_press",
                 "events", out / "fanout-latency.png")
    pcm = results["audio"]["pcmFanout"]
    latency_plot(pcm["runs"],
                 f"PCM fan-out: {pcm['params']['users']} users x {pcm['params']['apps']} audio_chunk apps",
                 "audio frames", out / "audio-latency.png")
    scale_plot(results.get("scale", []), out / "scale-memory.png")


if __name__ == "__main__":
    main()
