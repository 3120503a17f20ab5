"""Helpers of the tests that run the image under a real Docker engine (tests/test_container.py,
tests/test_deploy.py): the docker CLI, waiting for states, the image under test.

The image is `$HC_IMAGE` (default hc:dev, what scripts/image.sh builds for CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

IMAGE = os.environ.get("HC_IMAGE", "hc:dev")


def docker(*args: str, timeout: float = 60, check: bool = True, input: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; output captured as text; raises on a non-zero exit with `check`."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=check, input=input, env=env)


def require_engine_and_image() -> None:
    """Without an engine or the image: fail in CI (it must run there), skip elsewhere."""
    try:
        ready = docker("image", "inspect", IMAGE, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ready = False
    if not ready:
        message = f"no Docker engine or no {IMAGE} image: run scripts/docker-engine.sh and " \
                  "scripts/image.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `predicate` every 0.25 s until true; fail the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def health_status(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()


def wait_health(name: str, wanted: str, seconds: float = 30) -> None:
    wait_for(lambda: health_status(name) == wanted, seconds, f"{name} to become {wanted}")


def state(name: str) -> dict[str, Any]:
    """`.State` of a container, as `docker inspect` shows it (JSON of Docker's making, so
    untyped)."""
    data: dict[str, Any] = json.loads(docker("inspect", "-f", "{{json .State}}",
                                                name).stdout)
    return data


def nanoseconds(timestamp: str) -> int:
    """A Docker RFC 3339 time (`2026-11-23T21:04:35.103884551Z`, zeros of the fraction trimmed)
    as nanoseconds since the epoch, to compare with `docker events` times."""
    head, _, fraction = timestamp.rstrip("Z").partition(".")
    seconds = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9])


@contextlib.contextmanager
def single_node_swarm() -> Iterator[None]:
    """A swarm of this engine alone on 127.0.0.1, left (--force) on the way out, whatever
    happened. Skips the test when the engine is already in a swarm: not ours to touch.

    `swarm init` makes the engine create a bridge network of its own, `docker_gwbridge`, which
    `swarm leave` keeps: it is removed too, unless it was there before."""
    if docker("info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive":
        pytest.skip("this engine is already part of a swarm; not touching it")
    had_bridge = _has_network(GW_BRIDGE)
    docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
    try:
        yield
    finally:
        docker("swarm", "leave", "--force", check=False)
        if not had_bridge:
            docker("network", "rm", GW_BRIDGE, check=False)


GW_BRIDGE = "docker_gwbridge"


def _has_network(name: str) -> bool:
    return name in docker("network", "ls", "--format", "{{.Name}}").stdout.split()


def swarm_tasks(service: str) -> list[tuple[str, str, str]]:
    """(task id, desired state, current state) of a Swarm service's tasks, newest first."""
    out = docker("service", "ps", service, "--no-trunc",
                 "--format", "{{.ID}}|{{.DesiredState}}|{{.CurrentState}}").stdout
    return [tuple(line.split("|")[:3]) for line in out.splitlines()]  # type: ignore[misc]


def swarm_container(service: str) -> str:
    """The id of a running container of a Swarm service ("" when none runs)."""
    out = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}").stdout
    return out.split()[0] if out.split() else ""


def remove_service(service: str) -> None:
    """Remove a Swarm service (or a stack, with `docker stack rm` done by the caller) and wait
    until its containers are gone; any left are removed by force."""
    docker("service", "rm", service, check=False)
    label = f"label=com.docker.swarm.service.name={service}"

    def containers() -> list[str]:
        return docker("ps", "-aq", "--filter", label).stdout.split()

    with contextlib.suppress(AssertionError):
        wait_for(lambda: not containers(), 60, f"the containers of {service} to go")
    if left := containers():
        docker("rm", "-f", *left, check=False)
