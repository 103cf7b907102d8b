#!/usr/bin/env bash
# Checks the container files without a Docker engine (scripts/test.sh runs
# it first, so a broken file fails in seconds):
#   - docker-compose.yml and deploy/cluster/docker-compose.yml are parsed
#     and validated against the Compose schema by Compose itself
#     (`docker compose config`, or Debian's docker-compose 1.29, installed
#     with apt-get when neither is there), with the variables they require
#     set to placeholders; any warning (an unset variable, say) fails too;
#   - every server of deploy/cluster/haproxy.cfg is a service of the cluster
#     file, and the configuration passes `haproxy -c` when haproxy is on
#     PATH (it is not installed for this);
#   - the Dockerfile: only known instructions, a build stage and a final
#     stage that copies the binary from it, runs as a non-root user, has a
#     health check on /ready and starts `sightline`.
# The image itself is not built: that needs a Docker engine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

fail() {
  echo "check-compose: $*" >&2
  exit 1
}

# Compose: the docker CLI plugin when there is one, else docker-compose.
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  if ! command -v docker-compose >/dev/null; then
    echo "check-compose: installing docker-compose with apt-get"
    command -v apt-get >/dev/null ||
      fail "neither 'docker compose' nor docker-compose found, and no apt-get to install it"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  fi
  compose=(docker-compose)
fi

# Placeholders for the variables the files require (${VAR:?...}).
export SIGHTLINE_JWT_SECRET=compose-check-secret
export SIGHTLINE_ADMIN_TOKEN=compose-check-admin-token
export SIGHTLINE_USER_TOKEN_PRIVATE_KEY=compose-check-key
unset COMPOSE_FILE COMPOSE_PROFILES

files=(docker-compose.yml deploy/cluster/docker-compose.yml)
for f in "${files[@]}"; do
  [ -f "$f" ] || fail "$f is missing"
  if ! out=$("${compose[@]}" -f "$f" config -q 2>&1); then
    printf '%s\n' "$out" >&2
    fail "$f is not a valid Compose file"
  fi
  if [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    fail "$f: Compose warned (see above)"
  fi
done

# The load balancer's servers are the cluster file's services.
cluster=deploy/cluster/docker-compose.yml
haproxy_cfg=deploy/cluster/haproxy.cfg
[ -f "$haproxy_cfg" ] || fail "$haproxy_cfg is missing"
services=$("${compose[@]}" -f "$cluster" config --services)
servers=$(awk '$1 == "server" { split($3, a, ":"); print a[1] }' "$haproxy_cfg")
[ "$(printf '%s\n' "$servers" | grep -c .)" -ge 3 ] ||
  fail "$haproxy_cfg: expected a server line per Sightline instance (three)"
for s in $servers; do
  printf '%s\n' "$services" | grep -qx "$s" ||
    fail "$haproxy_cfg: server $s is not a service of $cluster"
done
if command -v haproxy >/dev/null; then
  haproxy -c -q -f "$haproxy_cfg" >/dev/null 2>&1 ||
    { haproxy -c -f "$haproxy_cfg" >&2 || true; fail "$haproxy_cfg: haproxy -c failed"; }
fi

# The Dockerfile, instruction by instruction (continuation lines joined,
# comments and parser directives left out).
[ -f Dockerfile ] || fail "Dockerfile is missing"
if ! problems=$(awk '
  function check(line,   word, rest, n, parts) {
    if (line ~ /^[[:space:]]*$/) return
    word = toupper(line); sub(/^[[:space:]]+/, "", word); sub(/[[:space:]].*/, "", word)
    if (word !~ /^(FROM|RUN|CMD|LABEL|EXPOSE|ENV|ADD|COPY|ENTRYPOINT|VOLUME|USER|WORKDIR|ARG|ONBUILD|STOPSIGNAL|HEALTHCHECK|SHELL)$/) {
      print "unknown instruction: " line; bad = 1; return
    }
    rest = line; sub(/^[[:space:]]*[A-Za-z]+[[:space:]]*/, "", rest)
    if (word == "FROM") {
      stages++; user = ""; health = ""; copied = 0; start = ""
      n = split(rest, parts, /[[:space:]]+/)
      if (n >= 3 && toupper(parts[n-1]) == "AS") named[parts[n]] = 1
    } else if (word == "USER") {
      user = rest
    } else if (word == "HEALTHCHECK") {
      health = rest
    } else if (word == "ENTRYPOINT" || word == "CMD") {
      start = start " " rest
    } else if (word == "COPY" && match(rest, /--from=[^[:space:]]+/)) {
      from = substr(rest, RSTART + 7, RLENGTH - 7)
      if (!(from in named)) { print "COPY --from=" from ": no such stage"; bad = 1 }
      if (rest ~ /sightline/) copied = 1
    }
  }
  /^[[:space:]]*#/ { next }
  {
    l = $0
    if (l ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, "", l); acc = acc l " "; continued = 1; next }
    check(acc l); acc = ""; continued = 0
  }
  END {
    if (acc != "") check(acc)
    if (stages < 2) { print "expected a build stage and a runtime stage"; bad = 1 }
    if (!copied) { print "the final stage does not copy the sightline binary from a build stage"; bad = 1 }
    if (user == "" || user ~ /^(root|0)(:|$)/) { print "the final stage does not switch to a non-root USER"; bad = 1 }
    if (health !~ /\/ready/) { print "the final stage has no HEALTHCHECK on /ready"; bad = 1 }
    if (start !~ /sightline/) { print "the final stage does not start sightline"; bad = 1 }
    exit bad
  }
' Dockerfile); then
  printf '%s\n' "$problems" >&2
  fail "Dockerfile failed its checks"
fi

echo "check-compose: ${files[0]}, ${files[1]}, $haproxy_cfg and Dockerfile pass (${compose[*]}; the image was not built)"
