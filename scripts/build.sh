#!/usr/bin/env bash
# Build the single-file binary dist/hc and prove it runs. PyInstaller (build/spec/hc.spec) builds
# hc as a onedir tree; build/launcher/pack.py adds the part of glibc it needs and appends the
# tree to the static launcher (build/launcher/launcher.c, built with musl), so the one file runs
# alone in a FROM scratch image. Re-runnable; every run rebuilds from the current sources, and
# dist/hc is replaced only by a binary that passed the smoke test.
#
# The venv is made from Debian's /usr/bin/python3 on purpose: the bundle carries the build
# machine's glibc and Debian's libpython, which (unlike a pyenv build) has no absolute RUNPATH
# that could make the binary load a library from the host it runs on.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=build/venv
work=build/work
onedir=build/pyinstaller/hc
binary=dist/hc
candidate=$work/hc

die() { echo "build: $*" >&2; exit 1; }
step() { echo "build: $*"; }

# System packages: Debian's Python with venv and headers, patchelf for the bootloader, musl for
# the static launcher.
need=()
[ -x /usr/bin/python3 ] || need+=(python3)
dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
dpkg -s python3-dev >/dev/null 2>&1 || need+=(python3-dev)
command -v patchelf >/dev/null || need+=(patchelf)
command -v musl-gcc >/dev/null || need+=(musl-tools)
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
        "pyinstaller>=6.10,<7" >"$work/pip.log" 2>&1; then
    grep -v '^WARNING: Location' "$work/pip.log" | tail -n 15 >&2
    die "pip install of hc or pyinstaller into $venv failed (log: $work/pip.log)"
fi

step "PyInstaller build/spec/hc.spec -> $onedir"
"$venv/bin/pyinstaller" --noconfirm --clean --log-level ERROR \
    --workpath "$work/pyinstaller" --distpath "$(dirname "$onedir")" build/spec/hc.spec \
    || die "PyInstaller failed (see above; missing modules: $work/pyinstaller/hc/warn-hc.txt)"

step "launcher (musl, static)"
musl-gcc -static -Os -s -Wall -Wextra -Werror -o "$work/launcher" build/launcher/launcher.c \
    || die "cannot compile build/launcher/launcher.c"

step "pack $onedir -> $candidate"
"$venv/bin/python" build/launcher/pack.py "$onedir" "$work/launcher" "$candidate" \
    || die "pack failed (see above)"

# Smoke test in a private TMPDIR (the binary's cache goes there): version and help (Typer), then
# serve with a target of every kind (the failing ones still import and run their code), probe
# until healthy, read /metrics, SIGTERM -> exit 0, and the temp dir holds the one cache dir.
step "smoke test"
smoke=$(mktemp -d)
serve_pid=
cleanup() {
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then kill -KILL "$serve_pid"; fi
    rm -rf "$smoke"
}
trap cleanup EXIT
chmod 1777 "$smoke"
export TMPDIR=$smoke HC_STATE_DIR=$smoke/state

"$candidate" --version >/dev/null || die "hc --version failed"
"$candidate" --help >/dev/null || die "hc --help failed"
"$candidate" serve --help >/dev/null || die "hc serve --help failed"

free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
closed=$(free_port)
"$candidate" serve --host 127.0.0.1 --port "$port" \
    --target "tcp://127.0.0.1:$port" --target "http://127.0.0.1:$port/livez" \
    --target "https://127.0.0.1:$closed/" --target "redis://127.0.0.1:$closed" \
    --target "rediss://127.0.0.1:$closed" >"$smoke/serve.log" 2>&1 &
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
"$candidate" healthcheck --url "http://127.0.0.1:$port/metrics" >"$smoke/probe.log" 2>&1 \
    || { cat "$smoke/probe.log" >&2; die "GET /metrics failed"; }
if grep -q Traceback "$smoke/serve.log"; then
    tail -n 20 "$smoke/serve.log" >&2
    die "hc serve logged a traceback (a module left out of the bundle?)"
fi

kill -TERM "$serve_pid"
status=0
wait "$serve_pid" || status=$?
serve_pid=
if [ "$status" -ne 0 ]; then
    tail -n 5 "$smoke/serve.log" >&2
    die "hc serve exited $status on SIGTERM, want 0"
fi
left=$(find "$smoke" -mindepth 1 -maxdepth 1 ! -name state ! -name '*.log' -printf '%f\n')
case "$left" in
    "hc-$(id -u)-"*) [ "$(echo "$left" | wc -l)" -eq 1 ] || die "more than the cache dir in TMPDIR: $left" ;;
    *) die "TMPDIR holds '$left', want exactly the cache dir hc-$(id -u)-<id>" ;;
esac

mkdir -p dist
mv -f "$candidate" "$binary"
size=$(stat -c %s "$binary")
echo "build: ok: $binary $((size / 1024 / 1024)) MiB ($size bytes)"
