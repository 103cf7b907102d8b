#!/usr/bin/env bash
# Installs what the tests need, outside the clone, and links it in:
#   - the npm packages of tests/sdk (the published MentraOS SDK) into
#     $SIGHTLINE_CACHE/npm/<hash of package.json and lock>, linked as
#     tests/sdk/node_modules.
# Safe to run again: a cache that is already complete is reused.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"

command -v node >/dev/null || { echo "setup: node is required (Node 20)" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup: npm is required" >&2; exit 1; }

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
