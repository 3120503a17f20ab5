"""HTTP and TCP targets: statuses and TLS verification (refusing and hanging servers: see
test_watcher_kinds.py)."""

from __future__ import annotations

import base64
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hc.health import Health, Status
from hc.watcher import Watcher
from tests.conftest import Listen, read_request_head
from tests.watcher_fixtures import WATCH_FAST, Tls, output, status, until, watch

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BIG = 10 * 2**20
"""A body hc must not download: 10 MiB."""
CHUNK = 16 * 1024


def run(targets: list[str]) -> Watcher:
    """Watch `targets` until each was checked once; the watcher, for its results."""
    seen: list[Watcher] = []

    async def scenario(watcher: Watcher, health: Health) -> None:
        seen.append(watcher)
        await until(lambda: all(s.last is not None for s in watcher.states), "every check")

    watch(targets, scenario, **WATCH_FAST)
    return seen[0]


Body = Callable[[], Iterator[bytes]]


@dataclass
class Connection:
    """What a test server sent on one connection."""

    sent: int = 0
    """Body bytes, all requests together."""
    ended: threading.Event = field(default_factory=threading.Event)
    """Set once a body was sent in full or the client went away."""


@dataclass
class BodyServer:
    """An HTTP/1.1 server on 127.0.0.1 answering each request with `head`, then the chunks of
    a fresh `body()`, on keep-alive connections. Its send buffer is small, so what it counts
    as sent is close to what the client read."""

    port: int = 0
    requests: int = 0
    connections: list[Connection] = field(default_factory=list)


def _answer(server: BodyServer, conn: socket.socket, head: bytes, body: Body) -> None:
    seen = Connection()
    server.connections.append(seen)
    try:
        while read_request_head(conn):
            server.requests += 1
            conn.sendall(head)
            for chunk in body():
                conn.sendall(chunk)
                seen.sent += len(chunk)
            seen.ended.set()
    finally:
        seen.ended.set()


@pytest.fixture
def body_server(listen: Listen) -> Callable[[bytes, Body], BodyServer]:
    """`body_server(head, body) -> BodyServer`, stopped when the test ends."""

    def start(head: bytes, body: Body) -> BodyServer:
        server = BodyServer()
        server.port = listen(lambda conn: _answer(server, conn, head, body), sndbuf=CHUNK)
        return server

    return start


def latency(watcher: Watcher, name: str) -> float:
    last = next(s.last for s in watcher.states if s.target.name == name)
    assert last is not None and last.latency is not None
    return last.latency


def test_an_http_target_passes_on_2xx_and_fails_on_500(
        raw_server: Callable[[bytes], int]) -> None:
    good, bad = raw_server(OK), raw_server(ERROR)
    watcher = run([f"http://127.0.0.1:{good}/healthz,name=good",
                   f"http://127.0.0.1:{bad}/,name=bad",
                   f"http://127.0.0.1:{bad}/,name=expected,expect=500"])
    assert status(watcher, "good") is Status.PASS
    assert output(watcher, "good").startswith("HTTP 200 in ")
    assert (status(watcher, "bad"), output(watcher, "bad")) == \
        (Status.FAIL, "HTTP 500, expected 200-299")
    assert status(watcher, "expected") is Status.PASS


def test_a_tcp_target_that_accepts_passes_with_its_connect_time(silent_port: int) -> None:
    watcher = run([f"tcp://127.0.0.1:{silent_port},name=db"])
    assert status(watcher, "db") is Status.PASS
    last = watcher.states[0].last
    assert last is not None and last.latency is not None and last.latency < 1


@pytest.fixture
def https_port(tls: Tls) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with the certificate of `tls`: its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_https_verifies_certificates_unless_given_the_ca(https_port: int, tls: Tls) -> None:
    port, cert = https_port, tls.ca
    watcher = run([f"https://127.0.0.1:{port}/,name=default",
                   f"https://127.0.0.1:{port}/,name=own-ca,ca_file={cert}",
                   f"https://127.0.0.1:{port}/,name=no-ca,ca_file={cert}.missing"])
    assert status(watcher, "default") is Status.FAIL
    assert output(watcher, "default").startswith("TLS certificate not trusted")
    assert status(watcher, "own-ca") is Status.PASS, output(watcher, "own-ca")
    assert output(watcher, "no-ca") == f"cannot use ca_file {cert}.missing: no such file"


def test_an_endless_stream_passes_on_its_status_line_at_once(
        body_server: Callable[[bytes, Body], BodyServer]) -> None:
    def events() -> Iterator[bytes]:
        while True:  # server-sent events, one chunk every 50 ms, never the last one
            yield b"c\r\ndata: tick\n\n\r\n"
            time.sleep(0.05)

    server = body_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n", events)
    watcher = run([f"http://127.0.0.1:{server.port}/events,name=sse"])

    assert status(watcher, "sse") is Status.PASS, output(watcher, "sse")
    assert latency(watcher, "sse") < 1


def test_a_large_body_is_not_downloaded(body_server: Callable[[bytes, Body], BodyServer]) -> None:
    server = body_server(f"HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n".encode(),
                         lambda: (bytes(CHUNK) for _ in range(BIG // CHUNK)))
    watcher = run([f"http://127.0.0.1:{server.port}/big,name=big"])

    assert status(watcher, "big") is Status.PASS, output(watcher, "big")
    assert server.connections[0].ended.wait(5)
    assert server.connections[0].sent < BIG // 10


def test_a_short_body_is_read_and_its_connection_kept(
        body_server: Callable[[bytes, Body], BodyServer]) -> None:
    server = body_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", lambda: iter([b"ok"]))

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: server.requests >= 3, "three checks")

    watch([f"http://127.0.0.1:{server.port}/,name=web,interval=0.1"], scenario, **WATCH_FAST)
    assert len(server.connections) == 1


@pytest.fixture
def basic_auth_port() -> Iterator[tuple[int, list[str]]]:
    """(port, [password]): an HTTP server on 127.0.0.1 answering 200 to `GET /` with basic auth
    as `admin` and the password in the list (change it to rotate), 401 otherwise."""
    expected = ["first-Password-0"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = base64.b64encode(f"admin:{expected[0]}".encode()).decode()
            ok = self.headers.get("Authorization") == f"Basic {token}"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], expected
    server.shutdown()
    server.server_close()


def test_an_http_target_sends_basic_auth_with_the_password_file_read_at_each_request(
        basic_auth_port: tuple[int, list[str]], tmp_path: Path) -> None:
    port, expected = basic_auth_port
    secret = tmp_path / "password"
    secret.write_text(expected[0] + "\n")
    url = f"http://admin@127.0.0.1:{port}/,name=web,interval=0.2,password_file={secret}"

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "web") is Status.PASS, "a pass with the file's")
        expected[0] = "second-Password-1"  # the server's password changes...
        await until(lambda: status(watcher, "web") is Status.FAIL, "a 401")
        assert output(watcher, "web") == "HTTP 401, expected 200-299"
        secret.write_text(expected[0])  # ...and then the secret: no restart
        await until(lambda: status(watcher, "web") is Status.PASS, "a pass with the new one")

    watch([url], scenario, **WATCH_FAST)
