#!/usr/bin/env bash
# Starts a local Docker engine for image builds and container tests, unless one already answers.
# The engine gets no bridge and no iptables rules: containers here run with --network none or host.
# Idempotent: exits 0 at once when `docker info` works.
set -euo pipefail

log=${HC_DOCKERD_LOG:-/tmp/hc-dockerd.log}
wait_seconds=${HC_DOCKERD_WAIT:-60}

die() { echo "docker-engine: $*" >&2; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }

engine_answers && exit 0

if ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "dockerd is missing and installing docker.io needs root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q docker.io >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q docker.io >/dev/null; } \
        || die "apt-get install docker.io failed"
fi
command -v docker >/dev/null 2>&1 || die "docker CLI is missing (apt-get install docker.io)"

echo "docker-engine: starting dockerd (log: $log)"
setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false >>"$log" 2>&1 </dev/null &
dockerd_pid=$!

for _ in $(seq "$wait_seconds"); do
    engine_answers && { echo "docker-engine: ready (dockerd pid $dockerd_pid)"; exit 0; }
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 1
done

echo "docker-engine: dockerd did not answer within ${wait_seconds}s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
