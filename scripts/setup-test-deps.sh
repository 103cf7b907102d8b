#!/usr/bin/env bash
# Installs what the tests need, outside the clone, and links it in:
#   - the npm packages of tests/sdk (the published MentraOS SDK) into
#     $SIGHTLINE_CACHE/npm/<hash of package.json and lock>, linked as
#     tests/sdk/node_modules;
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
