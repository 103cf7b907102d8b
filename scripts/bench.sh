#!/usr/bin/env bash
# The one command that runs Sightline's benchmark suite: builds `sightline`
# and `sightline-bench` in release, installs the Node relay's `ws` package
# and the plotting environment outside the clone ($SIGHTLINE_CACHE, default
# ~/.cache/sightline), runs every scenario beside both baselines, and
# writes results.json, results.md and PNG plots into the output directory.
#
#   scripts/bench.sh [--quick] [--publish] [--cluster | --cluster-only]
#
# --quick    a few minutes instead of the full run
# --publish  also copy results.md, results.json and the plots into
#            docs/benchmarks/ (what docs/benchmarks.md shows)
# --cluster  also run the cluster scenario (three `sightline serve` on one
#            nats-server and one MongoDB wire server, nx-27017; both are
#            installed by scripts/setup-test-deps.sh) into cluster.json
# --cluster-only  the cluster scenario alone (--publish then copies
#            cluster.json and cluster.log into docs/benchmarks/)
# Output directory: $SIGHTLINE_BENCH_OUT, default bench-results/<date>.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cache="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

quick=()
publish=0
cluster=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) ;;
    --publish) publish=1 ;;
    --cluster) cluster=1 ;;
    --cluster-only) cluster=2 ;;
    *) echo "usage: scripts/bench.sh [--quick] [--publish] [--cluster | --cluster-only]" >&2; exit 2 ;;
  esac
done
out="${SIGHTLINE_BENCH_OUT:-bench-results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"

command -v node >/dev/null || { echo "bench: node is required for the Node relay baseline" >&2; exit 1; }

# The Node relay's `ws` package, pinned by its lock file.
relay="$root/bench/node-relay"
hash=$(cat "$relay/package.json" "$relay/package-lock.json" | sha256sum | cut -c1-16)
npm_dir="$cache/npm-bench/$hash"
if [ ! -f "$npm_dir/.complete" ]; then
  echo "bench: installing the Node relay's packages into $npm_dir"
  rm -rf "$npm_dir"
  mkdir -p "$npm_dir"
  cp "$relay/package.json" "$relay/package-lock.json" "$npm_dir/"
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$npm_dir/.complete"
fi

# liblc3 (the LC3 reference the decoder is compared with).
if ! ldconfig -p 2>/dev/null | grep -q 'liblc3\.so'; then
  echo "bench: installing liblc3-tools with apt-get"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends liblc3-tools >/dev/null ||
    echo "bench: liblc3 unavailable; the LC3 comparison will be skipped" >&2
fi

# matplotlib for the plots, in a virtual environment of its own.
reqs="$root/scripts/bench-plot-requirements.txt"
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv="$cache/plot-venv/$( (cat "$reqs"; echo "$pyver") | sha256sum | cut -c1-16)"
if [ ! -f "$venv/.complete" ]; then
  echo "bench: installing matplotlib into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$reqs"
  touch "$venv/.complete"
fi

cargo build --release -p sightline -p sightline-bench
bin="$CARGO_TARGET_DIR/release"
echo "bench: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$cluster" != 2 ]; then
  "$bin/sightline-bench" suite "${quick[@]}" --out "$out" \
    --sightline "$bin/sightline" \
    --node-relay "$relay/relay.js" --node-modules "$npm_dir/node_modules" \
    --log-dir "$out/logs" | tee "$out/suite.log"
  "$venv/bin/python" scripts/bench-plot.py "$out/results.json" "$out"
fi

if [ "$cluster" != 0 ]; then
  # Sessions over three instances, past what one process may open; each
  # worker and instance stays under the open-file limit.
  ulimit -n "$(ulimit -Hn)"
  size=()
  [ ${#quick[@]} -eq 0 ] || size=(--sessions 3000 --handovers 100 --message-secs 5 --idle-secs 5)
  # The stores (nx-27017's SQLite, JetStream) live under the temporary
  # directory: in memory when /dev/shm is there, so the run measures the
  # instances and not the disk's fsync.
  tmp="${TMPDIR:-/tmp}"
  [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
  TMPDIR="$tmp" "$bin/sightline-bench" cluster "${size[@]}" --out "$out/cluster.json" \
    --sightline "$bin/sightline" --log-dir "$out/logs" | tee "$out/cluster.log"
fi

if [ "$publish" = 1 ]; then
  mkdir -p docs/benchmarks
  if [ "$cluster" != 0 ]; then
    cp "$out/cluster.json" "$out/cluster.log" docs/benchmarks/
  fi
  [ "$cluster" = 2 ] || cp "$out/results.md" "$out/results.json" "$out"/*.png docs/benchmarks/
  echo "bench: published into docs/benchmarks/"
fi
echo "bench: results in $out"
