#!/usr/bin/env bash
# Runs every test of Sightline, installing what the tests need first.
# It starts with scripts/check-compose.sh (the compose files, the load
# balancer's configuration and the Dockerfile, in about a second), so a
# broken container file fails before anything is compiled.
# Installs are cached outside the clone ($SIGHTLINE_CACHE, default
# ~/.cache/sightline), so a second run is fast and a first run works from
# nothing. Extra arguments go to `cargo test`. After the tests, and only
# when no arguments were given (a full run, as in CI), the cost guard
# (scripts/cost-guard.sh) checks the server's instructions per relayed
# event and audio frame against bench/cost-guard.json;
# SIGHTLINE_SKIP_COST_GUARD=1 leaves it out.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export SIGHTLINE_CACHE="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SIGHTLINE_CACHE/target}"

bash scripts/check-compose.sh
bash scripts/setup-test-deps.sh
cargo test --workspace "$@"
if [ $# -eq 0 ] && [ "${SIGHTLINE_SKIP_COST_GUARD:-0}" != 1 ]; then
  bash scripts/cost-guard.sh
fi
