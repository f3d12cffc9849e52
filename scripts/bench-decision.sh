#!/usr/bin/env bash
# The decision API benchmark of the README: installs oha (into .tools) if missing, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .tools/bin/oha ] && ! command -v oha >/dev/null; then
  # Without --locked oha does not build on rustc 1.95.
  cargo install oha --locked --root .tools --quiet
fi
cargo bench --bench decision
