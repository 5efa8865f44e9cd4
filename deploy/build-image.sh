#!/usr/bin/env bash
# Builds the `ferrocache` image with no registry at all: the release binary and the four
# shared libraries it links (glibc's, taken from this machine), in an image FROM scratch.
# Usage: deploy/build-image.sh [tag]   (default ferrocache:latest)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-ferrocache:latest}
cargo build --release -q -p ferrocache
bin="${CARGO_TARGET_DIR:-target}/release/ferrocache"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/data" "$root/tmp" "$root/etc"
# Debug info stays in target/; the image gets a stripped copy.
objcopy --strip-debug "$bin" "$root/ferrocache"
for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
cp deploy/Dockerfile "$ctx/Dockerfile"
docker build -q -t "$TAG" "$ctx" >/dev/null
echo "built $TAG: $(docker image inspect "$TAG" --format '{{.Size}}' | awk '{ printf "%.1f MB", $1 / 1e6 }')"
