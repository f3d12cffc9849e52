#!/usr/bin/env bash
# Lints and renders charts/rolegate with every values file under charts/rolegate/ci/ (each
# certificate mode, with and without the webhook), using the real helm v4 binary. The rendered
# objects are checked as Kubernetes types by `cargo test --test chart`.
set -euo pipefail
cd "$(dirname "$0")/.."
helm="$(bash scripts/install-helm.sh)"
chart=charts/rolegate
for values in "$chart"/ci/*-values.yaml; do
  echo "-- $values"
  "$helm" lint --strict "$chart" -f "$values" --namespace rolegate-system --quiet
  objects="$("$helm" template rolegate "$chart" -f "$values" --namespace rolegate-system --include-crds \
    | grep -c '^kind: ')"
  echo "   helm lint ok; helm template renders $objects objects"
done
