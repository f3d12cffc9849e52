#!/usr/bin/env bash
# The webhook benchmark of the README: installs wrk (Debian) if missing, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }
fi
cargo bench --bench webhook
