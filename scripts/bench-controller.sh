#!/usr/bin/env bash
# The controller benchmark of the README: the release binary against the API emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
venv="$(bash scripts/venv.sh)"
"$venv/bin/python" benches/controller.py
