"""Fixtures of the watcher tests: real `redis-server` processes, and the watcher run in-process.

    def test_x(redis_server):
        primary = redis_server(password="pw")
        replica = redis_server("--replicaof", "127.0.0.1", str(primary.port), password="pw")

Each server gets a free loopback port, its own tmp dir, `--save '' --appendonly no`, and is
ended by its PID when the test ends (SIGCONT first, in case the test stopped it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from hc.config import SERVE, load
from hc.health import Health, Status
from hc.watcher import Watcher
from hc.watcher._scheduler import TargetState
from tests.conftest import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class Server:
    """A server subprocess listening on 127.0.0.1:`port`, ended by its PID."""

    proc: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        """End the server by its PID (SIGTERM, SIGKILL after 10 s) and wait for it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL the server by its PID: it ends at once, as in a crash."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


@dataclass
class RedisServer(Server):
    """A `redis-server` subprocess on 127.0.0.1."""

    password: str
    directory: Path

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password or None, socket_timeout=5,
                           decode_responses=True)

    def command(self, *args: str | int | bytes) -> Any:
        with self.client() as client:
            return client.execute_command(*args)

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as client:
            return dict(client.info(section))


RedisFactory = Callable[..., RedisServer]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll `condition` every 50 ms until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisFactory]:
    """`redis_server(*args, password="", port=None)`: start a server, wait until it answers."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    started: list[RedisServer] = []

    def start(*args: str, password: str = "", port: int | None = None) -> RedisServer:
        port = port or free_port()
        directory = tmp_path / f"redis-{port}-{len(started)}"
        directory.mkdir()
        command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(directory), "--daemonize", "no",
                   "--logfile", str(directory / "redis.log")]
        if password:
            command += ["--requirepass", password, "--masterauth", password]
        proc = subprocess.Popen([*command, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(proc, port, password, directory)
        started.append(server)
        wait_for(lambda: bool(server.command("PING")), f"redis-server on port {port}")
        return server

    yield start
    for server in started:
        server.stop()


HttpFactory = Callable[..., Server]


def accepts(port: int) -> bool:
    """Whether 127.0.0.1:`port` accepts a connection (raises OSError when refused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpFactory]:
    """`http_server(port=None)`: Python's `http.server` as a subprocess on 127.0.0.1, answering
    200 to `GET /`; waits until it accepts connections."""
    started: list[Server] = []

    def start(port: int | None = None) -> Server:
        port = port or free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
             str(tmp_path), str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        server = Server(proc, port)
        started.append(server)
        wait_for(lambda: accepts(port), f"http.server on port {port}")
        return server

    yield start
    for server in started:
        server.stop()


def metrics_of(watcher: Watcher) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the watcher's /metrics, parsed by prometheus-client's own parser:
    {(sample name, sorted labels): value}."""
    body, _ = watcher.metrics.render("")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def families_of(watcher: Watcher) -> set[str]:
    """The names of the metric families on the watcher's /metrics (counters without _total)."""
    body, _ = watcher.metrics.render("")
    return {family.name for family in text_string_to_metric_families(body.decode())}


def state(watcher: Watcher, name: str) -> TargetState:
    """The scheduler's state of the target called `name`."""
    (found,) = [s for s in watcher.states if s.target.name == name]
    return found


def status(watcher: Watcher, name: str) -> Status | None:
    """The status of the target's last check (None before the first)."""
    last = state(watcher, name).last
    return None if last is None else last.status


def output(watcher: Watcher, name: str) -> str:
    last = state(watcher, name).last
    return "" if last is None else last.output


def metric(watcher: Watcher, name: str, **labels: str) -> float | None:
    """One sample of the watcher's /metrics, or None when it is absent."""
    return metrics_of(watcher).get((name, tuple(sorted(labels.items()))))


Scenario = Callable[[Watcher, Health], Awaitable[None]]


def watch(targets: list[str], scenario: Scenario, **settings: Any) -> None:
    """Run a watcher of `targets` in-process (settings as in `hc serve`, e.g. jitter="0") while
    `scenario(watcher, health)` runs; stop and close it afterwards."""
    flags = {"target": targets, **{k: str(v) for k, v in settings.items()}}
    config = load(SERVE, flags, env={})

    async def main() -> None:
        health = Health(interval=config.check_interval, timeout=config.check_timeout)
        watcher = Watcher.from_settings(health, config)
        task = asyncio.create_task(watcher.run())
        try:
            await scenario(watcher, health)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll `condition` every 50 ms on the event loop; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
