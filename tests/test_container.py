"""The `hc:dev` scratch image under a real Docker engine (scripts/image.sh builds it).

Containers run with `--network none` (the probe inside reaches the container's own loopback) and
are removed by the fixture, whatever the test's outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hc import exits
from tests.cgroup import oom_kills
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
    swarm_tasks,
    wait_for,
    wait_health,
)

FAST_HEALTH = ["--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "2",
               "--health-start-period", "0s"]

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session", autouse=True)
def _engine_and_image() -> None:
    require_engine_and_image()


Run = Callable[..., str]


@pytest.fixture
def run_container() -> Iterator[Run]:
    """Start a detached container of the image; returns its name; removed at teardown."""
    names: list[str] = []

    def start(*options: str, command: tuple[str, ...] = ()) -> str:
        name = f"hc-test-{uuid.uuid4().hex[:10]}"
        names.append(name)
        docker("run", "-d", "--name", name, "--network", "none", *options, IMAGE, *command)
        return name

    yield start
    for name in names:
        docker("rm", "-f", name, check=False)


def init_pid(name: str) -> int:
    """The host PID of the container's PID 1: the service itself (the launcher execs it), or
    Docker's init with `--init`."""
    return int(docker("inspect", "-f", "{{.State.Pid}}", name).stdout)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def service_python_pid(name: str) -> int:
    """The service's Python process, seen from the host: the deepest first descendant of
    PID 1 (PID 1 itself without `--init`)."""
    pid = init_pid(name)
    while below := children(pid):
        pid = below[0]
    return pid


def test_image_becomes_healthy_in_dockers_own_state(run_container: Run) -> None:
    name = run_container(*FAST_HEALTH)
    wait_health(name, "healthy")


def test_image_healthcheck_defaults_become_healthy(run_container: Run) -> None:
    name = run_container()
    health = json.loads(docker("inspect", "-f", "{{json .Config.Healthcheck}}", name).stdout)
    assert health["Test"][:2] == ["CMD", "/hc"]
    wait_health(name, "healthy", seconds=60)


def test_stopped_service_turns_unhealthy_and_recovers_on_sigcont(run_container: Run) -> None:
    name = run_container(*FAST_HEALTH)
    wait_health(name, "healthy")
    python = service_python_pid(name)
    os.kill(python, signal.SIGSTOP)
    try:
        wait_health(name, "unhealthy", seconds=30)
    finally:
        os.kill(python, signal.SIGCONT)
    wait_health(name, "healthy", seconds=30)
    log = state(name)["Health"]["Log"]
    assert any(entry["ExitCode"] == exits.FAILURE for entry in log)
    assert all(entry["ExitCode"] in (exits.OK, exits.FAILURE) for entry in log)


def test_the_service_is_pid_1_and_alone(run_container: Run) -> None:
    name = run_container(*FAST_HEALTH)
    wait_health(name, "healthy")
    pid = init_pid(name)

    assert Path(f"/proc/{pid}/comm").read_text().strip() == "hc"
    assert children(pid) == []
    assert Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:2] == ["/hc", "serve"]


def test_exec_verbose_shows_per_check_lines(run_container: Run) -> None:
    name = run_container(*FAST_HEALTH)
    wait_health(name, "healthy")
    out = docker("exec", name, "/hc", "healthcheck", "--verbose").stdout
    assert "http: 200" in out
    assert "[+]started ok" in out
    assert "[+]draining ok" in out
    assert len(out.encode()) <= 4096


@pytest.mark.parametrize("how", [("stop", "-t", "10"), ("kill", "-s", "INT")])
def test_stop_drains_and_exits_0_within_2s(run_container: Run, how: tuple[str, ...]) -> None:
    name = run_container(*FAST_HEALTH)
    wait_health(name, "healthy")
    started = time.monotonic()
    docker(*how, name)
    wait_for(lambda: not state(name)["Running"], 10, f"{name} to stop")
    elapsed = time.monotonic() - started
    assert state(name)["ExitCode"] == exits.OK, docker("logs", name).stderr
    assert elapsed < 2.0 + 0.5, f"stop took {elapsed:.2f}s"
    assert "Child exited for unknown reason" not in docker("logs", name).stderr


def test_bad_config_exits_78_with_one_line_in_logs(run_container: Run) -> None:
    name = run_container("-e", "HC_PORT=eighty")
    wait_for(lambda: not state(name)["Running"], 30, f"{name} to exit")
    assert state(name)["ExitCode"] == exits.CONFIG
    logs = docker("logs", name)
    lines = (logs.stdout + logs.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "HC_PORT" in lines[0]
    assert "Traceback" not in lines[0]


def test_read_only_root_with_tmpfs_tmp_is_healthy(run_container: Run) -> None:
    name = run_container("--read-only", "--tmpfs", "/tmp:exec,mode=1777", *FAST_HEALTH)
    wait_health(name, "healthy")


def test_any_non_root_user_is_healthy(run_container: Run) -> None:
    name = run_container("--user", "12345:12345", *FAST_HEALTH)
    wait_health(name, "healthy")
    uids = {line.split()[1] for line in
            docker("top", name, "-eo", "pid,uid").stdout.splitlines()[1:]}
    assert uids == {"12345"}


def _container_tmp(name: str) -> list[str]:
    return sorted(os.listdir(f"/proc/{init_pid(name)}/root/tmp"))


def _kill_probes_by_docker(name: str, count: int) -> None:
    """Let Docker's 1 s health timeout SIGKILL `count` probes stuck on a stopped service."""
    python = service_python_pid(name)
    os.kill(python, signal.SIGSTOP)
    try:
        wait_for(lambda: sum(1 for e in state(name)["Health"]["Log"]
                             if e["ExitCode"] not in (exits.OK, exits.FAILURE)) >= 1,
                 60, "a probe killed by Docker's timeout")
        wait_for(lambda: int(docker("inspect", "-f", "{{.State.Health.FailingStreak}}",
                                    name).stdout) >= count, 120, f"{count} probes killed")
    finally:
        os.kill(python, signal.SIGCONT)


PROBE_KILLED = ["--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1000",
                "-e", "HC_TIMEOUT=20"]


@pytest.mark.parametrize("init", [False, True], ids=["no-init", "init"])
def test_probes_killed_by_docker_leave_no_zombie_and_no_file(run_container: Run,
                                                             init: bool) -> None:
    """A probe is one process that writes nothing: when Docker SIGKILLs it (here: its own
    deadline set above Docker's), nothing of it stays, with or without an init process."""
    name = run_container(*PROBE_KILLED, *(["--init"] if init else []))
    wait_health(name, "healthy")
    baseline = _container_tmp(name)
    _kill_probes_by_docker(name, 5)
    time.sleep(2)

    assert _zombies(name) == 0
    assert _container_tmp(name) == baseline


def test_probe_ends_itself_before_dockers_timeout(run_container: Run) -> None:
    """With the image's own timings (probe 3 s < Docker 5 s), a hung service makes probes fail
    with exit 1 from the probe itself: none is killed, so no zombie, no leftover dirs."""
    name = run_container("--health-interval", "1s", "--health-retries", "2")
    wait_health(name, "healthy", seconds=60)
    baseline = _container_tmp(name)
    python = service_python_pid(name)
    os.kill(python, signal.SIGSTOP)
    try:
        wait_for(lambda: int(docker("inspect", "-f", "{{.State.Health.FailingStreak}}",
                                    name).stdout) >= 4, 60, "four failed probes")
    finally:
        os.kill(python, signal.SIGCONT)
    codes = [e["ExitCode"] for e in state(name)["Health"]["Log"]]
    assert set(codes) <= {exits.OK, exits.FAILURE}, codes
    assert _zombies(name) == 0
    # Probes keep running every second; between two of them /tmp is back to what it was.
    wait_for(lambda: _container_tmp(name) == baseline, 15, "/tmp without probe leftovers")


def _zombies(name: str) -> int:
    """Zombies in the container's PID namespace (`docker top` does not list them)."""
    namespace = os.readlink(f"/proc/{init_pid(name)}/ns/pid")
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != namespace:
                continue
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        count += stat.rsplit(")", 1)[1].split()[0] == "Z"
    return count


def test_stays_healthy_for_60s_under_a_64_mib_memory_limit(run_container: Run) -> None:
    name = run_container("--memory", "64m", "--memory-swap", "64m", *FAST_HEALTH)
    wait_health(name, "healthy", seconds=30)
    healthy_since = nanoseconds(state(name)["Health"]["Log"][-1]["Start"])
    probes: dict[int, int] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = state(name)
        assert current["Health"]["Status"] == "healthy", current["Health"]
        probes.update((nanoseconds(e["Start"]), e["ExitCode"])
                      for e in current["Health"]["Log"])
        time.sleep(2)

    later = {start: code for start, code in probes.items() if start >= healthy_since}
    assert len(later) >= 50, f"only {len(later)} probes seen in 60 s"
    assert set(later.values()) == {exits.OK}, later
    assert not state(name)["OOMKilled"]
    assert oom_kills(init_pid(name)) == 0


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
def test_stop_right_after_start_exits_0(run_container: Run, delay: float) -> None:
    """Even while the first run unpacks and Python starts, `docker stop` ends in exit 0."""
    name = run_container()
    time.sleep(delay)
    docker("kill", "-s", "TERM", name)
    wait_for(lambda: not state(name)["Running"], 15, f"{name} to stop")

    assert state(name)["ExitCode"] == exits.OK, docker("logs", name).stderr


@pytest.mark.parametrize(("options", "message"), [
    (("--read-only",), "hc: cannot create a dir in /tmp: Read-only file system (set TMPDIR"),
    (("--read-only", "--tmpfs", "/tmp:noexec,mode=1777"), "(is the temp dir mounted noexec?"),
], ids=["read-only-without-tmp", "noexec-tmp"])
def test_an_unusable_tmp_fails_at_start_in_one_line(run_container: Run, options: tuple[str, ...],
                                                    message: str) -> None:
    name = run_container(*options)
    wait_for(lambda: not state(name)["Running"], 15, f"{name} to exit")

    assert state(name)["ExitCode"] == exits.FAILURE
    logs = docker("logs", name)
    lines = (logs.stdout + logs.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("hc: ")
    assert message in lines[0]


def test_a_probe_by_another_user_uses_its_own_cache(run_container: Run) -> None:
    name = run_container(*FAST_HEALTH)
    wait_health(name, "healthy")

    probe = docker("exec", "--user", "0", name, "/hc", "healthcheck", "--state-dir",
                   "/dev/shm/hc-65534", check=False)

    assert probe.returncode == exits.OK, probe.stderr
    assert [entry.split("-")[1] for entry in _container_tmp(name)] == ["0", "65534"]


def test_swarm_replaces_a_task_whose_healthcheck_fails() -> None:
    service = f"hc-test-{uuid.uuid4().hex[:10]}"
    stopped = 0
    with single_node_swarm():
        try:
            port = free_port()
            docker("service", "create", "--detach", "--name", service, "--network", "host",
                   "--env", f"HC_PORT={port}", "--health-interval", "1s", "--health-retries",
                   "2", "--health-timeout", "5s", IMAGE)
            wait_for(lambda: bool(swarm_container(service)), 60, "the first task's container")
            first = swarm_container(service)
            wait_health(first, "healthy")
            first_task = swarm_tasks(service)[0][0]
            stopped = service_python_pid(first)
            os.kill(stopped, signal.SIGSTOP)
            wait_for(lambda: any(t[0] != first_task and t[2].startswith("Running")
                                 for t in swarm_tasks(service)), 90, "a replacement task")
            wait_for(lambda: swarm_container(service) not in ("", first), 30, "its container")
            wait_health(swarm_container(service), "healthy")
        finally:
            if stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(stopped, signal.SIGCONT)
            remove_service(service)
