#!/usr/bin/env bash
# The whole check, as CI runs it: dependencies, lint, types, the static binary and the scratch
# image under a real Docker engine, then every test. Exits non-zero on any failure, including a
# run that collects no tests (pytest exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "dependencies"
scripts/deps.sh

step "lint and types"
ruff check hc tests scripts examples build/launcher
mypy
scripts/lint-dockerfile.sh

step "docker engine"
scripts/docker-engine.sh

step "static binary and image"
scripts/image.sh

step "tests"
python3 -m pytest -p no:cacheprovider "$@"
step "done"
