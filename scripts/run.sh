#!/usr/bin/env bash
# Build the static binary (dist/hc) and run the service in the foreground: `scripts/run.sh
# [hc serve options]`, e.g. `scripts/run.sh --target redis://127.0.0.1:6379,critical`.
# Stop it with Ctrl-C (it drains and exits 0). Probe it meanwhile with `dist/hc healthcheck --verbose`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec dist/hc serve "$@"
