#!/usr/bin/env bash
# Builds the rolegate container image and proves it is self-contained, with no registry and no
# container runtime:
#   1. a statically linked rolegate (glibc, -C target-feature=+crt-static) into target/image/;
#   2. the image FROM scratch (Containerfile) with Debian's buildah, vfs storage kept under
#      target/image/ (installed from apt when missing), tagged <repository>:<Cargo.toml version>,
#      the tag the chart's `image:` defaults to (its appVersion);
#   3. saved as an OCI archive and a docker archive (`kind load image-archive`, `podman load`);
#   4. its layers unpacked and its entrypoint run by chroot as the image's user, from the image's
#      own filesystem: `--version`, `check` on the shipped examples bind-mounted in, `run --help`.
# Prints the image size. Incremental: a second run rebuilds only what changed.
#
#   ROLEGATE_IMAGE_PROFILE  cargo profile of the binary: release (default; the published image)
#                           or dev (a debug build, quicker to compile; what ./scripts/test uses)
#   ROLEGATE_IMAGE_REPO     image repository (default ghcr.io/rolegate/rolegate)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

profile="${ROLEGATE_IMAGE_PROFILE:-release}"
repository="${ROLEGATE_IMAGE_REPO:-ghcr.io/rolegate/rolegate}"
triple=x86_64-unknown-linux-gnu
out="$repo/target/image"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
app_version="$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' charts/rolegate/Chart.yaml)"
if [ "$version" != "$app_version" ]; then
  echo "Cargo.toml version $version differs from the chart's appVersion $app_version: the chart would name another image" >&2
  exit 1
fi
tag="$repository:$version"

echo "-- static rolegate ($profile)"
# RUSTFLAGS reach only the target's crates with --target (build scripts and proc macros stay
# dynamic), so the host's target/ cache is untouched.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --profile "$profile" \
  --target "$triple" --target-dir "$out" --bin rolegate
case "$profile" in dev) dir=debug ;; *) dir="$profile" ;; esac
binary="$out/$triple/$dir/rolegate"
if readelf --program-headers "$binary" | grep -q INTERP; then
  echo "$binary is dynamically linked (it has a program interpreter)" >&2
  exit 1
fi

if ! command -v buildah >/dev/null; then
  echo "-- installing buildah (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends buildah >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends buildah >/dev/null; }
fi
buildah=(buildah --root "$out/storage" --runroot "$out/run" --storage-driver vfs)

echo "-- image $tag"
context="$out/context"
rm -rf "$context"
mkdir -p "$context"
cp "$binary" "$context/rolegate"
strip "$context/rolegate" 2>/dev/null || true  # the debug build's symbols are half its size
"${buildah[@]}" build --quiet --layers=false --build-arg "VERSION=$version" -f Containerfile -t "$tag" "$context" >/dev/null
archive="$out/rolegate-$version.oci.tar"
docker_archive="$out/rolegate-$version.docker.tar"
layout="$out/oci"
rm -rf "$layout" "$archive" "$docker_archive"
"${buildah[@]}" push --quiet "$tag" "oci:$layout:$version"
"${buildah[@]}" push --quiet "$tag" "oci-archive:$archive:$tag"
"${buildah[@]}" push --quiet "$tag" "docker-archive:$docker_archive:$tag"

echo "-- unpacking the image's layers"
rootfs="$out/rootfs"
rm -rf "$rootfs"
# Prints the image config's user, then its entrypoint and default command, one word a line.
python3 - "$layout" "$version" "$rootfs" > "$out/config.txt" <<'EOF'
import json, pathlib, sys, tarfile
layout, ref, rootfs = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
blob = lambda d: layout / 'blobs' / d.split(':')[0] / d.split(':')[1]
index = json.loads((layout / 'index.json').read_text())
entry = next(m for m in index['manifests'] if m.get('annotations', {}).get('org.opencontainers.image.ref.name') == ref)
manifest = json.loads(blob(entry['digest']).read_text())
config = json.loads(blob(manifest['config']['digest']).read_text())['config']
rootfs.mkdir(parents=True)
for layer in manifest['layers']:
    with tarfile.open(blob(layer['digest'])) as t:  # gzip or plain, by content
        t.extractall(rootfs, filter='tar')
size = sum(l['size'] for l in manifest['layers']) + manifest['config']['size']
print(config.get('User', ''))
print(size)
for word in config.get('Entrypoint', []) + config.get('Cmd', []):
    print(word)
EOF
user="$(sed -n 1p "$out/config.txt")"
size="$(sed -n 2p "$out/config.txt")"
mapfile -t entrypoint < <(sed -n '3p' "$out/config.txt")
default_cmd="$(sed -n '4,$p' "$out/config.txt" | tr '\n' ' ')"
if [ "$user" != "65532:65532" ] || [ "${entrypoint[0]}" != /rolegate ] || [ "$default_cmd" != "run " ]; then
  echo "unexpected image config: user '$user', entrypoint '${entrypoint[*]}', cmd '$default_cmd'" >&2
  exit 1
fi
echo "   $(find "$rootfs" -mindepth 1 | sed "s|^$rootfs||" | tr '\n' ' ')"

echo "-- the entrypoint, from the image's own filesystem, as user $user"
mkdir -p "$rootfs/examples"
# A mount namespace of our own: the bind mount of the examples disappears with the command.
in_image() {
  unshare --mount -- sh -c 'mount --bind -o ro "$1" "$2/examples" && shift 2 && exec "$@"' \
    sh "$repo/examples" "$rootfs" chroot --userspec="$user" "$rootfs" "${entrypoint[@]}" "$@"
}
in_image --version
in_image check /examples/tenant
in_image check /examples/agency
# The broken example's findings exit 1 (not 2: the files were read).
status=0
in_image check /examples/broken/head >/dev/null 2>&1 || status=$?
if [ "$status" != 1 ]; then
  echo "check on the broken example inside the image exited $status, not 1" >&2
  exit 1
fi
help="$(in_image run --help)"
grep -q -- '--log-format' <<<"$help" || { echo "rolegate run --help inside the image lacks --log-format" >&2; exit 1; }
head -n 1 <<<"$help"

echo "-- image $tag ($profile binary): $((size / 1024)) KiB compressed ($(du -k "$rootfs/rolegate" | cut -f1) KiB unpacked)"
echo "   $archive"
echo "   $docker_archive   (kind load image-archive <this file>)"
