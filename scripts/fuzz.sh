#!/usr/bin/env bash
# Runs each of Sightline's fuzz targets (fuzz/fuzz_targets/*.rs) for a
# bounded time and exits non-zero if any of them finds a crash, a hang or
# an out-of-memory input.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Defaults: 600 seconds, every target, one after the other. Not part of CI.
# Be kind to shared machines: `nice -n 19 scripts/fuzz.sh 600`.
#
# Works on a stable toolchain: cargo-fuzz asks rustc for nightly-only flags
# (-Zsanitizer=address and friends), which stable rustc accepts when
# RUSTC_BOOTSTRAP=1 is set; the sanitizer runtimes ship with stable.
#
# Environment:
#   SIGHTLINE_CACHE   where tools, builds, corpora and findings go
#                     (default ~/.cache/sightline; nothing is written to
#                     the clone)
#   FUZZ_JOBS         targets run side by side (default 1)
#   FUZZ_SANITIZER    address (default) or none
#   FUZZ_MAX_LEN      largest input libFuzzer makes (default 4096 bytes)
#
# Each target's working corpus is $SIGHTLINE_CACHE/fuzz/corpus/<target>;
# the seeds committed in fuzz/corpus/<target> are read but never written.
# A finding is saved in $SIGHTLINE_CACHE/fuzz/artifacts/<target>/; replay
# it with the command the summary prints.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

seconds="${1:-600}"
[ $# -gt 0 ] && shift
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [seconds-per-target] [target...]" >&2
    exit 2
    ;;
esac

cache="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
tools="$cache/fuzz-tools"
target_dir="$cache/target-fuzzing"
work="$cache/fuzz"
jobs="${FUZZ_JOBS:-1}"
sanitizer="${FUZZ_SANITIZER:-address}"
max_len="${FUZZ_MAX_LEN:-4096}"
cargo_fuzz_version="0.13.2"

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sightline-fuzz$')
fi

# cargo-fuzz, installed once outside the clone.
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $cargo_fuzz_version\$"; then
    echo "installing cargo-fuzz $cargo_fuzz_version into $tools" >&2
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version" --root "$tools"
fi

# The toolchain trick: stable rustc with nightly flags unlocked.
export RUSTC_BOOTSTRAP=1
echo "toolchain: $(rustc --version); cargo-fuzz $cargo_fuzz_version; sanitizer: $sanitizer" >&2
"$tools/bin/cargo-fuzz" fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir" >&2

# As `cargo fuzz run` does: Rust binaries trip ASan's ODR check falsely.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/release"
mkdir -p "$work/logs"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"

# Runs one target; its libFuzzer output goes to a log, its exit code to a file.
run_target() {
    local t="$1"
    local corpus="$work/corpus/$t" artifacts="$work/artifacts/$t"
    local log="$work/logs/$t-$stamp.log"
    mkdir -p "$corpus" "$artifacts"
    local rc=0
    # libFuzzer stops itself after -max_total_time; `timeout` is the
    # backstop should a single input hang past that.
    timeout -k 30 "$((seconds + 300))" \
        "$bin_dir/$t" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -max_len="$max_len" \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "$corpus" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    echo "$rc" >"$log.rc"
}

pids=()
for t in "${targets[@]}"; do
    if [ ! -x "$bin_dir/$t" ]; then
        echo "no fuzz target named $t" >&2
        exit 2
    fi
    echo "fuzzing $t for ${seconds}s (log: $work/logs/$t-$stamp.log)" >&2
    run_target "$t" &
    pids+=("$!")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}"
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do
    wait "$p"
done

# Summary, from libFuzzer's own final statistics.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
failed=0
printf '%-16s %10s %14s %8s %10s %8s  %s\n' target seconds runs exec/s new_units rss_mb result
for t in "${targets[@]}"; do
    log="$work/logs/$t-$stamp.log"
    rc="$(cat "$log.rc")"
    runs="$(stat number_of_executed_units "$log")"
    if [ "$rc" = 0 ]; then
        result="no finding"
    else
        failed=1
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
        result="FINDING (exit $rc) ${artifact:-see $log}"
        [ -n "$artifact" ] && result="$result; replay: $bin_dir/$t $artifact"
    fi
    printf '%-16s %10s %14s %8s %10s %8s  %s\n' "$t" "$seconds" "${runs:-?}" \
        "$(stat average_exec_per_sec "$log")" "$(stat new_units_added "$log")" \
        "$(stat peak_rss_mb "$log")" "$result"
done
exit "$failed"
