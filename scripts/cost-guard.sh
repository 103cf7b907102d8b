#!/usr/bin/env bash
# The cost guard: builds `sightline` and `sightline-bench` in release, runs
# a fixed small workload with only the server under valgrind's callgrind
# (10 users, each with 2 apps subscribed to button_press and audio_chunk),
# and prints the server's instructions per relayed event and per relayed
# PCM audio frame beside the record in bench/cost-guard.json. Fails when
# either is more than 1.2 times its record.
#
#   scripts/cost-guard.sh                   check against the record
#   scripts/cost-guard.sh --record "reason" rewrite the record deliberately
#
# Needs valgrind (scripts/setup-test-deps.sh installs it). Extra arguments
# after the options go to `sightline-bench cost`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cache="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

args=()
if [ "${1:-}" = "--record" ]; then
  [ -n "${2:-}" ] || { echo "usage: scripts/cost-guard.sh [--record \"reason\"]" >&2; exit 2; }
  args=(--record "$2" --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    --date "$(date -u +%Y-%m-%d)")
  shift 2
fi
command -v valgrind >/dev/null || { echo "cost-guard: valgrind is required (scripts/setup-test-deps.sh installs it)" >&2; exit 1; }

cargo build --release -p sightline -p sightline-bench
bin="$CARGO_TARGET_DIR/release"
"$bin/sightline-bench" cost --sightline "$bin/sightline" \
  --record-file bench/cost-guard.json "${args[@]}" "$@"
