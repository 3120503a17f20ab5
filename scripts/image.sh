#!/usr/bin/env bash
# Build the hc:dev scratch image (Dockerfile.scratch): builds dist/hc with scripts/build.sh
# (skipped with HC_SKIP_BUILD=1), lays out its root filesystem in build/rootfs/, then runs the
# legacy builder, which needs no base image to pull. Needs a running engine: scripts/docker-engine.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${HC_IMAGE:-hc:dev}
binary=dist/hc
rootfs=build/rootfs
ca_bundle=/etc/ssl/certs/ca-certificates.crt

die() { echo "image: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/docker-engine.sh"

if [ "${HC_SKIP_BUILD:-0}" != 1 ]; then
    scripts/build.sh
fi
[ -x "$binary" ] || die "$binary is missing: run scripts/build.sh"

if [ ! -f "$ca_bundle" ]; then
    [ "$(id -u)" -eq 0 ] || die "$ca_bundle is missing: apt-get install ca-certificates"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates; } \
        >/dev/null || die "apt-get install ca-certificates failed"
fi

# The image's whole filesystem. Modes are set here because COPY keeps them.
rm -rf "$rootfs"
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp"
install -m 0755 "$binary" "$rootfs/hc"
chmod 1777 "$rootfs/tmp"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$rootfs/etc/group"
install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

# Label values, each from where it is defined.
version=$("$binary" --version | awk '{print $NF}')
source_url=$(git remote get-url origin 2>/dev/null || true)
project() {
    /usr/bin/python3 -c 'import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
value = project[sys.argv[1]]
print(value["text"] if isinstance(value, dict) else value)' "$1"
}
description=$(project description) || die "cannot read the description from pyproject.toml"
license=$(project license) || die "cannot read the license from pyproject.toml"

echo "image: docker build -f Dockerfile.scratch -t $image (version $version)"
# The legacy builder: BuildKit would want its own frontend image, which cannot be pulled here.
previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
log=build/work/docker-build.log
mkdir -p "$(dirname "$log")"
if ! DOCKER_BUILDKIT=0 docker build -f Dockerfile.scratch -t "$image" \
        --build-arg DESCRIPTION="$description" --build-arg LICENSE="$license" \
        --build-arg VERSION="$version" --build-arg SOURCE="$source_url" . >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "docker build failed (log: $log)"
fi

# Drop the image this one replaces (it stays while a container still uses it).
current=$(docker image inspect -f '{{.Id}}' "$image")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
fi

size=$(docker image inspect -f '{{.Size}}' "$image")
echo "image: ok: $image $((size / 1024 / 1024)) MiB ($size bytes)"
