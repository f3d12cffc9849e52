#!/usr/bin/env bash
# The controller benchmark of the README: the release binary against the API emulator, once per
# size given (accounts; default: $ROLEGATE_BENCH_ACCOUNTS or 1000), e.g. `bench-controller.sh 1000 3000 10000`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
venv="$(bash scripts/venv.sh)"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=("${ROLEGATE_BENCH_ACCOUNTS:-1000}")
for n in "${sizes[@]}"; do
  echo "== $n accounts"
  ROLEGATE_BENCH_ACCOUNTS="$n" "$venv/bin/python" benches/controller.py
done
