"""Shared fixtures: free ports, `hc serve` (or a test app) as a real subprocess, tiny servers.

    def test_x(hc_serve):
        service = hc_serve("--drain-delay", "1.5")        # waits until /readyz answers 200
        assert service.healthcheck().returncode == exits.OK
        assert service.stop() == exits.OK                  # SIGTERM, wait, exit code

Every process a test starts is ended by its PID when the test ends (SIGCONT first, in case the
test stopped it); nothing is ever killed by name.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hc import state
from hc.config import probe_address

HC = [sys.executable, "-m", "hc"]
"""The `hc` command, independent of PATH."""
ROOT = Path(__file__).resolve().parent.parent
"""The checkout under test: its `hc` is the one every started process imports."""
APPS = Path(__file__).parent / "apps"
"""Small services built on the kit, run as `python tests/apps/<name>.py [serve flags]`."""
FAST = {"HC_CHECK_INTERVAL": "0.2", "HC_STATE_INTERVAL": "0.2"}
"""Short intervals given to every started service (as env, so flags still override them)."""
START_TIMEOUT = 15.0
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test runner's environment without HC_* settings or proxies, plus `extra`; ROOT
    first on PYTHONPATH, so that a script (a test app, the example) imports the hc under test
    rather than whichever one is installed."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HC_") and k.lower() not in _PROXY_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_hc(*args: str, env: dict[str, str] | None = None,
           timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run `hc ARGS` to completion in a clean environment; output captured as text."""
    return subprocess.run([*HC, *args], env=clean_env(env), capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


@dataclass
class Service:
    """A running `hc serve` (or test app) subprocess and the address it listens on."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    state_dir: Path
    log_path: Path
    uds: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        """Where a client connects: the listen host with wildcards mapped to loopback."""
        return probe_address(self.host)

    def request(self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                timeout: float = 5.0) -> Response:
        """One HTTP request to the service (over the unix socket when it has one)."""
        conn: http.client.HTTPConnection
        if self.uds:
            conn = _UnixConnection(self.uds, timeout)
        else:
            conn = http.client.HTTPConnection(self.address, self.port, timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            answer = conn.getresponse()
            body = answer.read()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, body)
        finally:
            conn.close()

    def get(self, path: str, *, headers: dict[str, str] | None = None) -> Response:
        return self.request(path, headers=headers)

    def probe_args(self) -> list[str]:
        """`hc healthcheck` flags that point the probe at this service."""
        where = ["--uds", self.uds] if self.uds else ["--host", self.host,
                                                      "--port", str(self.port)]
        return [*where, "--state-dir", str(self.state_dir)]

    def healthcheck(self, *args: str, env: dict[str, str] | None = None,
                    timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """Run `hc healthcheck` against this service; `args` come last and may override."""
        return run_hc("healthcheck", *self.probe_args(), *args, env=env, timeout=timeout)

    def wait_until(self, condition: Callable[[], bool], what: str,
                   timeout: float = START_TIMEOUT, poll: float = 0.05) -> None:
        """Poll `condition` until true; fail (with the log) on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if condition():
                    return
            if self.proc.poll() is not None:
                pytest.fail(f"service exited with {self.proc.returncode} while waiting for "
                            f"{what}:\n{self.log()}")
            time.sleep(poll)
        pytest.fail(f"timed out after {timeout:g}s waiting for {what}:\n{self.log()}")

    def state_file(self) -> Path:
        """The service's state snapshot (it may not exist yet)."""
        return Path(state.path_for(str(self.state_dir), self.host, self.port, self.uds))

    def wait_ready(self, path: str = "/readyz", timeout: float = START_TIMEOUT) -> None:
        """Until `path` answers 200 and the state snapshot exists."""
        self.wait_until(lambda: self.get(path).status == 200 and self.state_file().exists(),
                        f"{path} to answer 200", timeout)

    def send(self, signum: int) -> None:
        """Send a signal to the service's process."""
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        """The exit code once the process has ended (fails the test after `timeout`)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"service still running {timeout:g}s later:\n{self.log()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `signum` (SIGTERM) and return the exit code."""
        if self.proc.poll() is None:
            self.send(signum)
        return self.wait(timeout)

    def log(self) -> str:
        """Everything the service wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """End the process by its PID, whatever state it is in."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)


ServeFactory = Callable[..., Service]


@pytest.fixture
def hc_serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """Start `hc serve` (or `app=NAME` from tests/apps) and wait until it is ready.

    `hc_serve(*args, env=None, app=None, host="127.0.0.1", port=None, uds="", state_dir=None,
    wait="/readyz", address_flags=True)`: the factory adds `--host`, `--port` (a free one
    unless given), `--state-dir` (a fresh dir under tmp_path unless given) and `--uds` when
    set, then `args`. With
    `address_flags=False` it adds none of them and the caller supplies them some other way
    (file, env) while still telling the factory `port` and `state_dir`. `wait=None` returns at
    once; `wait="/livez"` waits for liveness only. `FAST` intervals are set in the env.
    """
    started: list[Service] = []

    def start(*args: str, env: dict[str, str] | None = None, app: str | None = None,
              host: str = "127.0.0.1", port: int | None = None, uds: str = "",
              state_dir: Path | None = None, wait: str | None = "/readyz",
              address_flags: bool = True) -> Service:
        number = len(started)
        port = port or free_port(probe_address(host))
        state_dir = state_dir or tmp_path / f"state-{number}"
        flags: list[str] = []
        if address_flags:
            flags = ["--host", host, "--port", str(port), "--state-dir", str(state_dir)]
            if uds:
                flags += ["--uds", uds]
        command = [sys.executable, str(APPS / f"{app}.py")] if app else [*HC, "serve"]
        merged = clean_env({**FAST, **(env or {})})
        log_path = tmp_path / f"service-{number}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([*command, *flags, *args], env=merged, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        service = Service(proc, host, port, state_dir, log_path, uds, merged)
        started.append(service)
        if wait:
            service.wait_ready(wait)
        return service

    yield start
    for service in started:
        service.kill()


Listen = Callable[..., int]


def read_request_head(conn: socket.socket) -> bool:
    """Read one HTTP request head from `conn`; False when the client closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    return True


@pytest.fixture
def listen() -> Iterator[Listen]:
    """`listen(handle, sndbuf=0) -> port`: a TCP server on 127.0.0.1 that runs `handle(conn)`
    in a thread of its own for each connection, then closes it; a send buffer of `sndbuf`
    bytes when given. Stopped when the test ends."""
    listeners: list[socket.socket] = []

    def serve(listener: socket.socket, handle: Callable[[socket.socket], None]) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed at teardown
            threading.Thread(target=_handled, args=(conn, handle), daemon=True).start()

    def start(handle: Callable[[socket.socket], None], sndbuf: int = 0) -> int:
        listener = socket.socket()
        if sndbuf:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)  # conns inherit it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listeners.append(listener)
        threading.Thread(target=serve, args=(listener, handle), daemon=True).start()
        port: int = listener.getsockname()[1]
        return port

    yield start
    for listener in listeners:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def _handled(conn: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    with conn, contextlib.suppress(OSError):
        conn.settimeout(10)
        handle(conn)


RawServer = Callable[[bytes], int]


@pytest.fixture
def raw_server(listen: Listen) -> RawServer:
    """`raw_server(reply) -> port`: a TCP server on 127.0.0.1 that reads the request head,
    sends `reply` verbatim and closes: for answers no real HTTP server would give."""

    def answer(conn: socket.socket, reply: bytes) -> None:
        read_request_head(conn)
        conn.sendall(reply)

    return lambda reply: listen(lambda conn: answer(conn, reply))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port with a listening socket that never accept()s: connects succeed, nothing answers."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    port: int = listener.getsockname()[1]
    yield port
    listener.close()


# -- watcher (issue 4): real redis-server processes; see tests/watcher_fixtures.py -------------
from tests.watcher_fixtures import (  # noqa: E402, F401
    http_server,
    redis_server,
    sentinel_server,
    tls,
)
