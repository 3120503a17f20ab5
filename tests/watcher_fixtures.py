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
from typing import Any, TypeVar

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


@dataclass(frozen=True)
class Tls:
    """A CA, a server certificate it signed for 127.0.0.1 with its key, and another CA that
    signed nothing here: made with the openssl CLI."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path


@dataclass
class RedisServer(Server):
    """A `redis-server` subprocess on 127.0.0.1 (TLS only, with `tls`)."""

    password: str
    directory: Path
    tls: Tls | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        tls: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.tls.ca)} if self.tls else {}
        return redis.Redis("127.0.0.1", self.port, password=self.password or None, socket_timeout=5,
                           decode_responses=True, **tls)

    def command(self, *args: str | int | bytes) -> Any:
        with self.client() as client:
            return client.execute_command(*args)

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as client:
            return dict(client.info(section))


RedisFactory = Callable[..., RedisServer]
AnyServer = TypeVar("AnyServer", bound=Server)


def quiet(command: list[str]) -> subprocess.Popen[bytes]:
    """`command` started with no stdin and its output discarded (servers log to files)."""
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def ready(started: list[AnyServer], server: AnyServer, answers: Callable[[], object]) -> AnyServer:
    """`server`, put among those its fixture stops at teardown, once `answers()` is true."""
    started.append(server)
    wait_for(lambda: bool(answers()), f"{type(server).__name__} on port {server.port}")
    return server


WATCH_FAST = {"jitter": 0, "check_interval": 0.1}
"""Settings of the in-process watcher in tests: checks on time, health results at once."""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll `condition` every 50 ms until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """Certificates for TLS tests (made once per session)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    files = Tls(*(directory / name for name in ("ca.pem", "cert.pem", "key.pem", "other.pem")))

    def run(*args: str | Path) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    for ca in (files.ca, files.other_ca):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN=hc test {ca.stem}", "-keyout", ca.with_suffix(".key"), "-out", ca)
    request, extensions = directory / "cert.csr", directory / "cert.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                          "authorityKeyIdentifier=keyid,issuer\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
        files.key, "-out", request)
    run("x509", "-req", "-in", request, "-CA", files.ca, "-CAkey", files.ca.with_suffix(".key"),
        "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", files.cert)
    return files


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisFactory]:
    """`redis_server(*args, password="", port=None, tls=None)`: start a server (TLS only on
    its port with `tls`), wait until it answers."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    started: list[RedisServer] = []

    def start(*args: str, password: str = "", port: int | None = None,
              tls: Tls | None = None) -> RedisServer:
        port = port or free_port()
        directory = tmp_path / f"redis-{port}-{len(started)}"
        directory.mkdir()
        command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(directory), "--daemonize", "no",
                   "--logfile", str(directory / "redis.log")]
        if password:
            command += ["--requirepass", password, "--masterauth", password]
        if tls:
            command += ["--port", "0", "--tls-port", str(port), "--tls-cert-file",
                        str(tls.cert), "--tls-key-file", str(tls.key), "--tls-ca-cert-file",
                        str(tls.ca), "--tls-auth-clients", "no"]
        server = RedisServer(quiet([*command, *args]), port, password, directory, tls)
        return ready(started, server, lambda: server.command("PING"))

    yield start
    for server in started:
        server.stop()


@dataclass
class SentinelServer(Server):
    """A `redis-server --sentinel` subprocess on 127.0.0.1 monitoring `MASTER`."""

    directory: Path
    password: str = ""

    def command(self, *args: str | int) -> Any:
        with redis.Redis("127.0.0.1", self.port, password=self.password or None,
                         socket_timeout=5, decode_responses=True) as client:
            return client.execute_command(*args)

    def master(self) -> dict[str, str]:
        """SENTINEL MASTER, as a dict."""
        reply = self.command("SENTINEL", "MASTER", MASTER)  # redis-py 8 parses it, 5 not
        pairs = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2],
                                                               strict=True))
        return {str(k): str(v) for k, v in pairs.items()}

    def primary_port(self) -> int:
        """The port of the primary this sentinel names."""
        return int(self.master()["port"])


MASTER = "mymaster"
"""The master name the test sentinels monitor."""
SentinelFactory = Callable[..., SentinelServer]


@pytest.fixture
def sentinel_server(tmp_path: Path) -> Iterator[SentinelFactory]:
    """`sentinel_server(primary, quorum=1, password="", port=None)`: a sentinel monitoring
    `primary` as MASTER (with its password), with `password` of its own; waits until it
    answers. Failover timings are short, for tests."""
    started: list[SentinelServer] = []

    def start(primary: RedisServer, *, quorum: int = 1, password: str = "",
              port: int | None = None) -> SentinelServer:
        port = port or free_port()
        directory = tmp_path / f"sentinel-{port}"
        directory.mkdir()
        lines = [f"port {port}", "bind 127.0.0.1", f"dir {directory}",
                 f"logfile {directory / 'sentinel.log'}",
                 f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} {quorum}",
                 f"sentinel down-after-milliseconds {MASTER} 1000",
                 f"sentinel failover-timeout {MASTER} 3000"]
        if primary.password:
            lines.append(f"sentinel auth-pass {MASTER} {primary.password}")
        if password:
            lines += [f"requirepass {password}", f"sentinel sentinel-pass {password}"]
        config = directory / "sentinel.conf"
        config.write_text("\n".join(lines) + "\n")
        sentinel = SentinelServer(quiet([REDIS_SERVER, str(config), "--sentinel"]), port,
                                  directory, password)
        return ready(started, sentinel, lambda: sentinel.command("PING"))

    yield start
    for sentinel in started:
        sentinel.stop()


def settle(sentinels: list[SentinelServer], replicas: int) -> None:
    """Until every sentinel knows the others and `replicas` replicas."""
    def settled(sentinel: SentinelServer) -> bool:
        master = sentinel.master()
        return (int(master["num-other-sentinels"]) == len(sentinels) - 1
                and int(master["num-slaves"]) == replicas)

    wait_for(lambda: all(settled(s) for s in sentinels), "the sentinels to settle", 30)


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
        server = Server(quiet([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                               "--directory", str(tmp_path), str(port)]), port)
        return ready(started, server, lambda: accepts(port))

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
