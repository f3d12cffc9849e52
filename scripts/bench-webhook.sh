#!/usr/bin/env bash
# The webhook benchmark of the README: installs wrk (Debian) and oha (into .tools) if missing,
# then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }
fi
if [ ! -x .tools/bin/oha ] && ! command -v oha >/dev/null; then
  # Without --locked oha does not build on rustc 1.95.
  cargo install oha --locked --root .tools --quiet
fi
cargo bench --bench webhook
