"""`hc healthcheck`: probe the own service over HTTP and through its state snapshot.

Exit 0 when healthy and 1 when unhealthy for any reason, bad usage included (Docker reserves 2).
Never more than `--timeout` seconds: a watchdog thread ends the process with exit 1 should
anything (a DNS lookup, a stuck read) outlast the deadline, so Docker never has to SIGKILL it.

Docker runs this every few seconds for a container's whole life, so its imports are a budget:
the standard library's `os`, `signal`, `socket`, `json` and what they pull in, nothing else on
the default path (tests/test_probe.py holds the allow-list).
"""

from __future__ import annotations

import _thread
import json
import os
import socket
import sys
import time

from hc import exits, state
from hc.config import (
    PROBE,
    ConfigError,
    Settings,
    UsageError,
    load,
    parse_flags,
    probe_address,
    redact_url,
)
from hc.endpoints import ENDPOINT_OF_TAG

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from hc.state import Snapshot

MAX_RESPONSE = 64 * 1024
"""Bytes of response the probe reads at most; a larger answer is itself a failure."""
DOCKER_OUTPUT_LIMIT = 4096
"""Docker keeps 4096 bytes of a probe's output in `docker inspect`; we never print more."""
STALE_FACTOR = 3.0
"""A snapshot older than this many write intervals (plus a second) means the service is stuck."""
WATCHDOG_GRACE = 0.1
"""Seconds past `--timeout` after which the watchdog ends a probe stuck where no deadline
reaches (a DNS lookup): the documented bound of a probe is its timeout plus this."""


class Verdict:
    """What the probe found: healthy or not, why, and the details `--verbose` prints."""

    __slots__ = ("body", "elapsed", "healthy", "http_status", "lines", "reasons", "state_age",
                 "url")

    def __init__(self, url: str = "") -> None:
        self.healthy = True
        self.reasons: list[str] = []
        self.url = url
        self.http_status: int | None = None
        self.elapsed = 0.0
        self.state_age: float | None = None
        self.lines: list[str] = []
        self.body: dict[str, Any] | None = None

    def fail(self, reason: str) -> None:
        self.healthy = False
        self.reasons.append(reason)


class ProbeError(Exception):
    """The HTTP exchange failed; the message is one line."""


# -- HTTP ------------------------------------------------------------------------------------
def _target(settings: Settings) -> tuple[str, str, int, str, str]:
    """(url shown, host, port, unix socket, path) of the endpoint to probe."""
    endpoint = ENDPOINT_OF_TAG[settings.mode]
    if settings.url:
        host, port, path = parse_url(settings)
        return settings.url, host, port, "", path
    path = f"/{endpoint}?verbose"
    uds = settings.uds
    if not uds and settings.reuse_port:  # the port may lead to another process: not ours
        uds = state.socket_for(settings.state_dir, settings.host, settings.port)
    if uds:
        return f"http+unix://{uds}{path}", "localhost", 0, uds, path
    host = probe_address(settings.host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{settings.port}{path}", host, settings.port, "", path


def parse_url(settings: Settings) -> tuple[str, int, str]:
    """(host, port, path and query) of `--url`; raises ConfigError naming where it came from:
    http:// only (the probe speaks plain HTTP/1.0), and no credentials, which it never sends."""
    from urllib.parse import urlsplit  # only for --url: it costs the default probe ~1 ms

    def refuse(expected: str) -> ConfigError:
        return ConfigError("url", redact_url(settings.url), settings.sources.get("url", "default"),
                           expected)

    try:
        parts = urlsplit(settings.url)
        port = parts.port or 80
    except ValueError:  # a port out of range or a broken IPv6 literal
        raise refuse("expected http://host[:port]/path") from None
    if parts.scheme != "http" or not parts.hostname:
        raise refuse("expected http://host[:port]/path")
    if "@" in parts.netloc:
        raise refuse("expected no user or password (the probe sends none)")
    return parts.hostname, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def check_usage(settings: Settings) -> None:
    """Refuse settings that contradict each other: with `--url`, the probe checks that URL as
    given, so a `mode` or `uds` set anywhere would be silently ignored. Raises UsageError."""
    if not settings.url:
        return
    parse_url(settings)
    for name in ("mode", "uds"):
        if name in settings.sources:
            raise UsageError(f"url (from {settings.sources['url']}) and {name} (from "
                             f"{settings.sources[name]}) cannot be combined: a URL is probed "
                             "as given")


def _connect(host: str, port: int, uds: str, deadline: float) -> socket.socket:
    # No proxy is ever consulted: the probe talks straight to the address it was given.
    remaining = deadline - time.monotonic()
    if uds:
        return _open(socket.AF_UNIX, uds, remaining)
    # An address needs no lookup: getaddrinfo would import the IDNA codec (and `re`) to encode
    # it, ~2 ms of every probe of the default 127.0.0.1 or ::1.
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return _open(family, (host, port), remaining)
    return socket.create_connection((host, port), timeout=remaining)


def _open(family: int, address: str | tuple[str, int], timeout: float) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def fetch(settings: Settings, deadline: float, accept: str) -> tuple[int, bytes, str]:
    """GET the endpoint with HTTP/1.0; returns (status, body, url). Raises ProbeError."""
    url, host, port, uds, path = _target(settings)
    request = (f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: hc-healthcheck\r\n"
               f"Accept: {accept}\r\nConnection: close\r\n\r\n").encode()
    try:
        with _connect(host, port, uds, deadline) as sock:
            sock.sendall(request)
            data = _read_all(sock, deadline)
    except TimeoutError:
        raise ProbeError(f"{url}: no answer within the timeout") from None
    except OSError as exc:
        raise ProbeError(f"{url}: {exc.strerror or exc}") from None
    except UnicodeError:  # IDNA refused the host name
        raise ProbeError(f"{url}: invalid host name {host!r}") from None
    return (*_parse(data, url), url)


def _read_all(sock: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(16384)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE:
            raise ProbeError(f"response larger than {MAX_RESPONSE} bytes")
        chunks.append(chunk)


def _parse(data: bytes, url: str) -> tuple[int, bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") \
            or not status_line[1].isdigit() or len(status_line[1]) != 3:
        raise ProbeError(f"{url}: not an HTTP response")
    return int(status_line[1]), body


# -- state snapshot --------------------------------------------------------------------------
def judge_state(snapshot: Snapshot, mode: str, verdict: Verdict) -> None:
    """Fail the verdict on a stale snapshot, a dead writer, a stale heartbeat, draining
    (ready only) or a failed check tagged for `mode`.

    A heartbeat's age is judged as of the snapshot's writing (`written - last`), not now: the
    snapshot is up to `interval` old by design, and its own staleness is judged on its own.
    Judged now, a max age near the write interval failed healthy services at random.
    """
    verdict.state_age = time.monotonic() - snapshot["written"]
    if verdict.state_age > STALE_FACTOR * snapshot["interval"] + 1.0:
        verdict.fail(f"state snapshot is {verdict.state_age:.1f}s old (service loop stuck?)")
    pid = snapshot["pid"]
    if pid and not _alive(pid):
        verdict.fail(f"state snapshot was written by pid {pid}, which is gone")
    if mode == "ready" and snapshot["draining"]:
        verdict.fail("service is draining (shutting down)")
    if mode != "live" and not snapshot["first_round_done"]:
        verdict.fail("service has not finished its first round of checks")
    checks = snapshot["checks"]
    for name, beat in sorted(snapshot["heartbeats"].items()):
        age, limit = snapshot["written"] - beat["last"], beat["max_age"]
        tags = checks[f"heartbeat:{name}"]["tags"] if f"heartbeat:{name}" in checks else [mode]
        if mode in tags and limit and age > limit:
            verdict.fail(f"heartbeat {name} last beat {age:.1f}s ago (max {limit:g}s)")
    for name, check in sorted(checks.items()):
        if mode in check["tags"] and check["status"] == "fail" and not check["pending"] \
                and not name.startswith("heartbeat:"):
            verdict.fail(f"check {name} failed: {check['output'] or 'failed'}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the probe -------------------------------------------------------------------------------
def probe(settings: Settings, started: float | None = None) -> Verdict:
    """Run both halves of the probe within `settings.timeout` seconds of `started` (now)."""
    started = time.monotonic() if started is None else started
    deadline = started + settings.timeout
    verdict = Verdict()
    accept = "application/health+json" if settings.json else "text/plain"
    try:
        status, body, verdict.url = fetch(settings, deadline, accept)
        verdict.http_status = status
        if settings.json:
            verdict.body = _json_body(body)
        else:
            verdict.lines = body.decode("utf-8", "replace").splitlines()
        if not 200 <= status < 300:
            verdict.fail(f"{verdict.url} answered HTTP {status}")
    except ProbeError as exc:
        verdict.url = verdict.url or _target(settings)[0]
        verdict.fail(str(exc))
    if not settings.url:
        path = state.path_for(settings.state_dir, settings.host, settings.port, settings.uds)
        try:
            judge_state(state.read(path), settings.mode, verdict)
        except state.StateError as exc:
            verdict.fail(str(exc))
    verdict.elapsed = time.monotonic() - started
    return verdict


def _json_body(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def render(verdict: Verdict, settings: Settings) -> str:
    """What the probe prints: nothing when healthy (unless asked), else one line."""
    if settings.json:
        body = dict(verdict.body or {})
        body["status"] = "pass" if verdict.healthy else "fail"
        body.setdefault("checks", {})
        if verdict.reasons:
            body["output"] = "; ".join(verdict.reasons)
        return _fit_json(body)
    if not settings.verbose:
        return "" if verdict.healthy else _fit("unhealthy: " + "; ".join(verdict.reasons))
    word = "healthy" if verdict.healthy else "unhealthy"
    head = [f"{word}: {verdict.url}", f"http: {verdict.http_status or 'no answer'}",
            f"time: {verdict.elapsed * 1000:.0f} ms"]
    if verdict.state_age is not None:
        head.append(f"state age: {verdict.state_age:.1f}s")
    head += [f"reason: {r}" for r in verdict.reasons]
    return _fit("\n".join(head + verdict.lines))


def _fit(text: str) -> str:
    """Cut to what Docker keeps (the final newline included), saying how much was cut."""
    data = text.encode()
    if len(data) < DOCKER_OUTPUT_LIMIT:
        return text
    note = f"\n... (output cut to {DOCKER_OUTPUT_LIMIT} bytes)"
    room = DOCKER_OUTPUT_LIMIT - 1 - len(note.encode())
    return data[:room].decode("utf-8", "ignore").rsplit("\n", 1)[0] + note


def _fit_json(body: dict[str, Any]) -> str:
    """JSON that Docker keeps whole: a cut document would not parse, so when too long the
    per-check details go and the output is shortened instead."""
    text = json.dumps(body, separators=(",", ":"))  # ASCII (ensure_ascii): a char is a byte
    if len(text) < DOCKER_OUTPUT_LIMIT:
        return text
    output = str(body.get("output", ""))
    slim = {"status": body["status"], "output": output, "checks": {}}
    text = json.dumps(slim, separators=(",", ":"))
    if len(text) >= DOCKER_OUTPUT_LIMIT:  # each character cut from the output saves a byte or more
        slim["output"] = output[:len(output) - (len(text) - DOCKER_OUTPUT_LIMIT) - 5] + " ..."
        text = json.dumps(slim, separators=(",", ":"))
    return text


# -- command line (fast path: no Typer) ------------------------------------------------------
def _die(prog: str, message: str) -> NoReturn:
    sys.stderr.write(f"{prog}: {message}\n")
    sys.exit(exits.FAILURE)


def start_watchdog(seconds: float, timeout: float) -> None:
    """End the process with exit 1 once `seconds` have passed, whatever the main thread does.

    A bare `_thread` thread, not `threading`: it needs no joining at exit, and `threading`
    would add ~1 ms to every probe.
    """
    def expire() -> None:
        time.sleep(seconds)
        os.write(1, f"unhealthy: probe ran past its {timeout:g}s timeout\n".encode())
        os._exit(exits.FAILURE)

    _thread.start_new_thread(expire, ())


def run(settings: Settings) -> int:
    """Probe with loaded settings, print the result, return the exit code.

    What the probe finds goes to stdout, healthy or not and in every format (plain, --verbose,
    --json), so `hc healthcheck --json | jq` works either way; stderr carries only mistakes in
    the probe's own command line or configuration (`hc healthcheck: ...`).
    """
    started = time.monotonic()
    start_watchdog(settings.timeout + WATCHDOG_GRACE, settings.timeout)
    verdict = probe(settings, started)
    output = render(verdict, settings)
    if output:
        sys.stdout.write(output + "\n")
        sys.stdout.flush()
    return exits.OK if verdict.healthy else exits.FAILURE


def main(argv: list[str]) -> int:
    """Entry of the fast path: parse flags, load config, probe. Never raises for user error."""
    prog = f"hc {PROBE}"
    try:
        settings = load(PROBE, parse_flags(argv, PROBE))
        check_usage(settings)
    except UsageError as exc:
        _die(prog, f"{exc} (see {prog} --help)")
    except ConfigError as exc:
        _die(prog, f"config error: {exc}")
    return run(settings)
