#!/usr/bin/env bash
# Runs every test of Sightline, installing what the tests need first.
# Installs are cached outside the clone ($SIGHTLINE_CACHE, default
# ~/.cache/sightline), so a second run is fast and a first run works from
# nothing. Extra arguments go to `cargo test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export SIGHTLINE_CACHE="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SIGHTLINE_CACHE/target}"

bash scripts/setup-test-deps.sh
cargo test --workspace "$@"
