"""The deploy files under a real Docker engine: deploy/stack.yml on a single-node swarm (a
Swarm secret, rolling updates that roll back by themselves, the drain of a replaced task) and
deploy/compose.yml with Debian's docker-compose (start-up order, a rotated secret file).

Everything runs on the host's network with kernel-assigned free ports, against real
redis-server processes with a password. The swarm is made once for the module and always
left; each test removes the stacks, secrets, compose projects and containers it made. The
deploy files hold production timings; tests shorten them through the variables the files
read (HEALTH_INTERVAL and the like), never by editing the files.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hc import exits
from tests.conftest import free_port
from tests.engine import (
    IMAGE,
    docker,
    nanoseconds,
    remove_service,
    require_engine_and_image,
    single_node_swarm,
    state,
    swarm_container,
    wait_for,
    wait_health,
)
from tests.watcher_fixtures import RedisFactory, RedisServer

DEPLOY = Path(__file__).parent.parent / "deploy"
PASSWORD = "pw-Deploy-5e0b"  # noqa: S105 (the test servers' password)
FAST = {"HEALTH_INTERVAL": "1s", "HEALTH_START_PERIOD": "2s", "UPDATE_MONITOR": "5s",
        "ROLLBACK_MONITOR": "5s"}
"""The deploy files' timings, shortened for tests."""
UPDATE_ENDS = ("completed", "paused", "rollback_completed", "rollback_paused")
"""The states a service's update ends in (`.UpdateStatus.State`)."""

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module", autouse=True)
def _engine_and_image() -> None:
    require_engine_and_image()


def deploy_env(**values: str) -> dict[str, str]:
    """The environment the docker CLI interpolates the deploy files with."""
    return {**os.environ, "HC_IMAGE": IMAGE, **FAST, **values}


def hc_connections(server: RedisServer) -> int:
    """hc's connections to `server` (CLIENT LIST, name hc-watcher): each one logged in."""
    listing = server.command("CLIENT", "LIST")
    return sum("name=hc-watcher" in line.split() for line in listing.splitlines())


def targets(port: int) -> dict[str, dict[str, Any]]:
    """GET /targets of the hc on the host's `port`, by name."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/targets")
        body = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return {t["name"]: t for t in body["targets"]}


def health_log(container: str) -> list[dict[str, Any]]:
    """The last probes Docker ran (it keeps five): Start, End, ExitCode, Output."""
    log: list[dict[str, Any]] = state(container)["Health"]["Log"]
    return log


# -- Swarm: deploy/stack.yml -------------------------------------------------------------------
@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    """This engine as a single-node swarm for the module's tests; always left at the end."""
    with single_node_swarm():
        yield


@dataclass
class Stack:
    """A deployed deploy/stack.yml: its hc service and the Redis it watches."""

    name: str
    redis: RedisServer

    @property
    def service(self) -> str:
        return f"{self.name}_hc"

    def update_status(self) -> str:
        return docker("service", "inspect", "-f",
                      "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                      self.service).stdout.strip()

    def wait_update(self, meanwhile: Callable[[], None]) -> str:
        """Call `meanwhile` every 0.25 s until the update ends; its final state."""
        deadline = time.monotonic() + 90
        while (status := self.update_status()) not in UPDATE_ENDS:
            assert time.monotonic() < deadline, f"update still {status} after 90 s"
            meanwhile()
            time.sleep(0.25)
        return status

    def running_container(self) -> str:
        """The service's one running container, once it is healthy."""
        wait_for(lambda: bool(swarm_container(self.service)), 60, "the task's container")
        container = swarm_container(self.service)
        wait_health(container, "healthy", seconds=60)
        return container


@pytest.fixture
def stack(swarm: None, redis_server: RedisFactory) -> Iterator[Stack]:
    """deploy/stack.yml deployed as a fresh stack watching a redis-server with a password
    given as a Swarm secret; the stack, its containers and the secret removed afterwards."""
    name = f"hc-test-{uuid.uuid4().hex[:8]}"
    secret = f"{name}-redis-password"
    server = redis_server(password=PASSWORD)
    port = free_port()
    docker("secret", "create", secret, "-", input=PASSWORD)
    try:
        docker("stack", "deploy", "-c", str(DEPLOY / "stack.yml"), name, env=deploy_env(
            HC_PORT=str(port), REDIS_ADDRESS=f"127.0.0.1:{server.port}",
            REDIS_PASSWORD_SECRET=secret))
        yield Stack(name, server)
    finally:
        docker("stack", "rm", name, check=False)
        remove_service(f"{name}_hc")
        docker("secret", "rm", secret, check=False)


def test_stack_deploy_becomes_healthy_reading_the_redis_password_from_a_swarm_secret(
        stack: Stack) -> None:
    container = stack.running_container()

    verbose = docker("exec", container, "/hc", "healthcheck", "--verbose").stdout
    assert "[+]target:redis ok" in verbose
    assert docker("service", "ps", stack.service, "--format",
                  "{{.CurrentState}}").stdout.startswith("Running")
    assert hc_connections(stack.redis) >= 1  # logged in with the secret's password
    shown = [docker("service", "inspect", stack.service).stdout,
             docker("inspect", container).stdout,
             docker("exec", container, "/hc", "config").stdout]
    assert [text for text in shown if PASSWORD in text] == []


def test_a_rolling_update_that_never_becomes_ready_is_rolled_back_while_the_old_task_serves(
        stack: Stack) -> None:
    old = stack.running_container()
    down = f"tcp://127.0.0.1:{free_port()},name=down,critical"
    docker("service", "update", "--detach", "--env-add", f"HC_TARGET={down}", stack.service)

    probes: list[int] = []

    def probe_the_old_task() -> None:
        probe = docker("exec", old, "/hc", "healthcheck", check=False)
        assert probe.returncode == exits.OK, probe.stderr  # the old task serves throughout
        probes.append(probe.returncode)

    assert stack.wait_update(probe_the_old_task) == "rollback_completed"
    assert swarm_container(stack.service) == old
    assert health_log(old)[-1]["ExitCode"] == exits.OK
    assert len(probes) >= 5
    spec = docker("service", "inspect", "-f", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
                  stack.service).stdout
    assert "name=down" not in spec
    new = [c for c in docker("ps", "-aq", "--filter",
                             f"label=com.docker.swarm.service.name={stack.service}")
           .stdout.split() if c != old]
    outputs = " ".join(e["Output"] for c in new for e in health_log(c))
    assert "check target:down failed: connection refused" in outputs  # why it never was ready


def test_a_rolling_update_starts_the_new_task_first_and_the_old_one_drains_and_exits_0(
        stack: Stack) -> None:
    old = stack.running_container()
    docker("service", "update", "--detach", "--env-add", "HC_LOG_LEVEL=debug", stack.service)

    healthy_at: list[int] = []  # the passing probes of the new task, as Docker timed them

    def note_the_new_tasks_probes() -> None:
        new = swarm_container(stack.service)
        if new and new != old:
            healthy_at.extend(nanoseconds(e["End"]) for e in health_log(new)
                              if e["ExitCode"] == exits.OK)

    assert stack.wait_update(note_the_new_tasks_probes) == "completed"
    assert not state(old)["Running"]
    assert state(old)["ExitCode"] == exits.OK
    logs = docker("logs", "--timestamps", old)
    lines = (logs.stdout + logs.stderr).splitlines()
    (sigterm,) = [line.split()[0] for line in lines if "SIGTERM: draining" in line]
    assert any("stopped cleanly" in line for line in lines)
    assert healthy_at and min(healthy_at) < nanoseconds(sigterm)  # start-first
    wait_health(swarm_container(stack.service), "healthy")


# -- Compose: deploy/compose.yml ----------------------------------------------------------------
@dataclass
class Project:
    """A docker-compose project of deploy/compose.yml."""

    name: str
    env: dict[str, str]
    port: int
    secret: Path

    def compose(self, *args: str, timeout: float = 120) -> str:
        docker_compose = shutil.which("docker-compose")
        if docker_compose is None:
            pytest.fail("docker-compose is missing: apt-get install docker-compose")
        done = subprocess.run([docker_compose, "-p", self.name, "-f",
                               str(DEPLOY / "compose.yml"), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def container(self, service: str) -> str:
        return f"{self.name}_{service}_1"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A compose project (not started) with a password file readable by the image's user;
    taken down, containers removed, afterwards."""
    name = f"hctest{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "redis_password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    port = free_port()
    env = deploy_env(HC_PORT=str(port), APP_PORT=str(free_port()), APP_IMAGE=IMAGE,
                     REDIS_PASSWORD_FILE=str(secret))
    made = Project(name, env, port, secret)
    try:
        yield made
    finally:
        try:
            with contextlib.suppress(AssertionError):
                made.compose("down", "--remove-orphans")
        finally:  # whatever `down` left, or failed to take down, goes here
            label = f"label=com.docker.compose.project={name}"
            left = docker("ps", "-aq", "--filter", label).stdout.split()
            if left:
                docker("rm", "-f", *left, check=False)


def test_compose_starts_the_app_only_once_hc_is_healthy(project: Project,
                                                        redis_server: RedisFactory) -> None:
    port = free_port()
    project.env["REDIS_ADDRESS"] = f"127.0.0.1:{port}"
    late = threading.Timer(3.0, redis_server, kwargs={"password": PASSWORD, "port": port})
    late.start()  # hc cannot be ready before its critical Redis is up, 3 s from now
    started = time.time_ns()
    try:
        project.compose("up", "-d")
    finally:
        late.join()

    hc, app = project.container("hc"), project.container("app")
    events = docker("events", "--since", str(started // 10**9), "--until",
                    str(time.time_ns() // 10**9 + 1), "--filter", f"container={hc}",
                    "--filter", "event=health_status", "--format",
                    "{{.TimeNano}} {{.Status}}").stdout.splitlines()
    healthy = [int(line.split()[0]) for line in events if line.endswith("healthy")
               and "unhealthy" not in line]
    created = nanoseconds(docker("inspect", "-f", "{{.Created}}", app).stdout.strip())
    assert healthy, events
    assert started + 3 * 10**9 < healthy[0] < created  # Redis up, then hc healthy, then app
    assert nanoseconds(str(state(app)["StartedAt"])) > healthy[0]
    wait_health(app, "healthy")


def test_compose_secret_rotated_in_place_is_read_at_the_next_reconnect(
        project: Project, redis_server: RedisFactory) -> None:
    server = redis_server(password=PASSWORD)
    project.env["REDIS_ADDRESS"] = f"127.0.0.1:{server.port}"
    project.compose("up", "-d")
    wait_health(project.container("hc"), "healthy")
    rotated = f"rotated-{PASSWORD}"

    server.command("CONFIG", "SET", "requirepass", rotated)
    server.password = rotated
    server.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    wait_for(lambda: targets(project.port)["redis"]["status"] == "fail", 30,
             "the old password refused at the reconnect")
    assert targets(project.port)["redis"]["output"].startswith("authentication failed")
    project.secret.write_text(rotated + "\n")  # in place: the bind mount keeps the inode

    wait_for(lambda: targets(project.port)["redis"]["status"] == "pass", 30,
             "a pass with the rotated password")
    assert hc_connections(server) >= 1
