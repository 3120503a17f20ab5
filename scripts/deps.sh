#!/usr/bin/env bash
# Install what hc's build and tests need on a fresh Debian machine: system packages (only the
# missing ones) and the project with its dev extras. Re-runnable.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v dockerd >/dev/null || need+=(docker.io)
command -v patchelf >/dev/null || need+=(patchelf)
command -v openssl >/dev/null || need+=(openssl)
# Compose v1 (Debian's), for the tests of deploy/compose.yml
command -v docker-compose >/dev/null || need+=(docker-compose)
dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
dpkg -s python3-dev >/dev/null 2>&1 || need+=(python3-dev)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
# musl-gcc, for the static launcher of the single-file binary (scripts/build.sh)
command -v musl-gcc >/dev/null || need+=(musl-tools)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# promtool, for the tests of deploy/prometheus (without the exporters the package recommends)
lean=()
command -v promtool >/dev/null || lean+=(prometheus)
apt_install() {
    echo "deps: apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
if [ $((${#need[@]} + ${#lean[@]})) -gt 0 ]; then
    apt-get update -qq
    [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
    [ ${#lean[@]} -eq 0 ] || apt_install --no-install-recommends "${lean[@]}"
fi

# Debian's own python3 refuses pip installs (PEP 668, "externally managed"); a CI machine
# installs the project into it all the same. Other Pythons ignore the variable.
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
