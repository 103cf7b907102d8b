#!/usr/bin/env bash
# Produces the example outputs quoted in docs/operations.md: runs the server
# (in-memory store) on a free port, the example SDK app (tests/sdk/app.mjs)
# and the glasses simulator (tests/sdk/glasses.mjs) for one user who starts
# the app, presses a button and looks up; then saves what each operator
# endpoint and `sightline top` answer into docs/examples/ (or the directory
# given as the first argument). Needs scripts/setup-test-deps.sh to have run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${1:-docs/examples}"
export SIGHTLINE_CACHE="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SIGHTLINE_CACHE/target}"
cargo build -q --bin sightline
bin="$CARGO_TARGET_DIR/debug/sightline"
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
app_port="$(free_port)"
base="http://127.0.0.1:$port"
admin="example-admin-token"
export SIGHTLINE_JWT_SECRET="example-jwt-secret"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

SIGHTLINE_ADMIN_TOKEN="$admin" "$bin" serve --store memory --bind "127.0.0.1:$port" 2>"$tmp/server.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done

curl -sf -X POST "$base/api/admin/apps" -H "Authorization: Bearer $admin" \
  -H "Content-Type: application/json" \
  -d "{\"packageName\":\"com.example.hello\",\"name\":\"Hello\",\"publicUrl\":\"http://127.0.0.1:$app_port\",
       \"apiKey\":\"hello-api-key\",\"appType\":\"standard\",\"permissions\":[\"MICROPHONE\"]}" >/dev/null
(cd tests/sdk && PACKAGE=com.example.hello API_KEY=hello-api-key PORT="$app_port" exec node app.mjs >"$tmp/app.log" 2>&1) &
pids+=($!)
sleep 1
token="$("$bin" token --email alice@example.com)"
{ sleep 1.5; echo "start com.example.hello"; sleep 3; echo press; sleep 0.5; echo up; sleep 600; } |
  node tests/sdk/glasses.mjs "ws://127.0.0.1:$port/glasses-ws" "$token" >"$tmp/glasses.log" 2>&1 &
pids+=($!)
sleep 6

mkdir -p "$out"
get() { curl -sf -H "Authorization: Bearer $admin" "$base$1"; }
get /health | python3 -m json.tool >"$out/health.json"
get /ready | python3 -m json.tool >"$out/ready.json"
get /stats | python3 -m json.tool >"$out/stats.json"
get "/stats?user=alice@example.com" | python3 -m json.tool >"$out/stats-user.json"
get /actors | python3 -m json.tool >"$out/actors.json"
app_id="$(get "/actors?package=com.example.hello" | python3 -c '
import json, sys
def walk(n):
    if n["kind"] == "app-connection": print(n["id"]); raise SystemExit
    for c in n["children"]: walk(c)
for n in json.load(sys.stdin)["tree"]: walk(n)')"
get "/actors/$app_id" | python3 -m json.tool >"$out/actor.json"
get "/sessions/alice@example.com" | python3 -m json.tool >"$out/session.json"
get /metrics >"$out/metrics.txt"
SIGHTLINE_ADMIN_TOKEN="$admin" "$bin" top --url "$base" >"$out/top.txt"
echo "examples written to $out (server on $base, app connection #$app_id)"
