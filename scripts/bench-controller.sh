#!/usr/bin/env bash
# The controller benchmark of the README: the release binary against the API emulator, once per
# size given (accounts; default: $ROLEGATE_BENCH_ACCOUNTS or 1000), e.g. `bench-controller.sh 1000 3000 10000`.
# `--sync` first: the chart's configuration (webhook + controller in one process) during a GitOps
# sync instead of a cold start over an existing tree (benches/sync.py; ROLEGATE_BENCH_BINARIES=a,b
# and ROLEGATE_BENCH_ROUNDS=2 compare two builds A, B, A, B).
set -euo pipefail
cd "$(dirname "$0")/.."
bench=benches/controller.py
if [ "${1:-}" = "--sync" ]; then
  bench=benches/sync.py
  shift
fi
cargo build --release --quiet
venv="$(bash scripts/venv.sh)"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=("${ROLEGATE_BENCH_ACCOUNTS:-1000}")
for n in "${sizes[@]}"; do
  echo "== $n accounts"
  ROLEGATE_BENCH_ACCOUNTS="$n" "$venv/bin/python" "$bench"
done
