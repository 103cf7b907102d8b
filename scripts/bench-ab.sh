#!/usr/bin/env bash
# Before/after of a change on the message path: builds `sightline` at
# REV (in a temporary worktree, its own target dir under $SIGHTLINE_CACHE)
# and at the working tree, then runs `sightline-bench fanout` (1 000 users ×
# 4 apps by default, Sightline only) against each, alternating, ROUNDS times, and
# prints server CPU per delivered frame at fixed offered loads and the
# saturation of every run, with the median of each side.
#
#   scripts/bench-ab.sh REV [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rev="${1:?usage: scripts/bench-ab.sh REV [ROUNDS]}"
rounds="${2:-3}"
cache="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
before_dir="$cache/bench-ab/src-$rev"
before_target="$cache/bench-ab/target"
out="${SIGHTLINE_BENCH_OUT:-bench-results/ab-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"

cd "$root"
if [ ! -d "$before_dir" ]; then
  git worktree add --detach "$before_dir" "$rev" >/dev/null
fi
(cd "$before_dir" && CARGO_TARGET_DIR="$before_target" cargo build --release -q --bin sightline)
cargo build --release -q -p sightline --bin sightline
cargo build --release -q -p sightline-bench
bench="$CARGO_TARGET_DIR/release/sightline-bench"
old_bin="$before_target/release/sightline"
new_bin="$CARGO_TARGET_DIR/release/sightline"

for r in $(seq 1 "$rounds"); do
  "$bench" fanout --targets sightline --sightline "$old_bin" --log-dir "$out/logs" > "$out/before-$r.txt" 2>&1
  "$bench" fanout --targets sightline --sightline "$new_bin" --log-dir "$out/logs" > "$out/after-$r.txt" 2>&1
done

python3 - "$out" "$rounds" "$rev" <<'PY'
import re, statistics, sys
out, rounds, rev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
loads = [4000, 8000, 16000, 32000]
def read(path):
    text = open(path).read()
    sat = re.search(r"saturation (\d+) delivered/s", text)
    us = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[0].isdigit() and int(cells[0]) in loads and int(cells[0]) not in us:
            us[int(cells[0])] = float(cells[9])
    return (int(sat.group(1)) if sat else 0), us
rows = {side: [read(f"{out}/{side}-{r}.txt") for r in range(1, rounds + 1)] for side in ("before", "after")}
print(f"server µs per delivered frame (fan-out, 1 000 users × 4 apps), {rounds} runs each; before = {rev}, after = working tree")
print("| side | " + " | ".join(f"{l}/s offered" for l in loads) + " | saturation, delivered/s |")
print("|---|" + "---:|" * (len(loads) + 1))
for side, runs in rows.items():
    for n, (sat, us) in enumerate(runs, 1):
        print(f"| {side} {n} | " + " | ".join(f"{us.get(l, float('nan')):.2f}" for l in loads) + f" | {sat} |")
    med = [statistics.median(r[1].get(l, float('nan')) for r in runs) for l in loads]
    print(f"| **{side} median** | " + " | ".join(f"**{m:.2f}**" for m in med) + f" | {statistics.median(r[0] for r in runs):.0f} |")
PY
