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
from hc.config import PROBE, ConfigError, Settings, UsageError, load, parse_flags, probe_address

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

MAX_RESPONSE = 64 * 1024
"""Bytes of response the probe reads at most; a larger answer is itself a failure."""
OUTPUT_LIMIT = 4096
"""Docker keeps 4096 bytes of a probe's output in `docker inspect`; we never print more."""
ENDPOINT_OF_MODE = {"live": "livez", "ready": "readyz", "startup": "startupz"}
STALE_FACTOR = 3.0


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
    endpoint = ENDPOINT_OF_MODE[settings.mode]
    if settings.url:
        from urllib.parse import urlsplit  # only for --url: it costs the default probe ~1 ms

        usage = f"--url {settings.url!r}: expected http://host[:port]/path"
        try:
            parts = urlsplit(settings.url)
            port = parts.port or 80
        except ValueError:  # a port out of range or a broken IPv6 literal
            raise ProbeError(usage) from None
        if parts.scheme != "http" or not parts.hostname:
            raise ProbeError(usage)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return settings.url, parts.hostname, port, "", path
    path = f"/{endpoint}?verbose"
    uds = settings.uds
    if not uds and settings.reuse_port:  # the port may lead to another process: not ours
        uds = state.socket_for(settings.state_dir, settings.port)
    if uds:
        return f"http+unix://{uds}{path}", "localhost", 0, uds, path
    host = probe_address(settings.host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{settings.port}{path}", host, settings.port, "", path


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
def judge_state(snapshot: dict[str, Any], mode: str, verdict: Verdict) -> None:
    """Fail the verdict on a stale snapshot, a dead writer, a stale heartbeat, draining
    (ready only) or a failed check tagged for `mode`."""
    now = time.monotonic()
    written = float(snapshot.get("written", 0.0))
    interval = float(snapshot.get("interval", 2.0))
    verdict.state_age = now - written
    if verdict.state_age > STALE_FACTOR * interval + 1.0:
        verdict.fail(f"state snapshot is {verdict.state_age:.1f}s old (service loop stuck?)")
    pid = int(snapshot.get("pid", 0))
    if pid and not _alive(pid):
        verdict.fail(f"state snapshot was written by pid {pid}, which is gone")
    if mode == "ready" and snapshot.get("draining"):
        verdict.fail("service is draining (shutting down)")
    if mode != "live" and not snapshot.get("first_round_done", False):
        verdict.fail("service has not finished its first round of checks")
    for name, beat in sorted(snapshot.get("heartbeats", {}).items()):
        age = now - float(beat.get("last", 0.0))
        limit = float(beat.get("max_age", 0.0))
        tags = snapshot.get("checks", {}).get(f"heartbeat:{name}", {}).get("tags", [mode])
        if mode in tags and limit and age > limit:
            verdict.fail(f"heartbeat {name} last beat {age:.1f}s ago (max {limit:g}s)")
    for name, check in sorted(snapshot.get("checks", {}).items()):
        if mode in check.get("tags", []) and check.get("status") == "fail" \
                and not check.get("pending") and not name.startswith("heartbeat:"):
            output = check.get("output") or "failed"
            verdict.fail(f"check {name} failed: {output}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the probe -------------------------------------------------------------------------------
def probe(settings: Settings) -> Verdict:
    """Run both halves of the probe within `settings.timeout` seconds."""
    started = time.monotonic()
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
        verdict.url = verdict.url or _target_url(settings)
        verdict.fail(str(exc))
    if not settings.url:
        path = state.path_for(settings.state_dir, settings.port, settings.uds)
        try:
            judge_state(state.read(path), settings.mode, verdict)
        except state.StateError as exc:
            verdict.fail(str(exc))
        except (AttributeError, TypeError, ValueError):  # JSON, but not a snapshot's shapes
            verdict.fail(f"state snapshot {path} has an unknown format")
    verdict.elapsed = time.monotonic() - started
    return verdict


def _target_url(settings: Settings) -> str:
    try:
        return _target(settings)[0]
    except ProbeError:
        return settings.url


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
    if len(data) < OUTPUT_LIMIT:
        return text
    note = f"\n... (output cut to {OUTPUT_LIMIT} bytes)"
    room = OUTPUT_LIMIT - 1 - len(note.encode())
    return data[:room].decode("utf-8", "ignore").rsplit("\n", 1)[0] + note


def _fit_json(body: dict[str, Any]) -> str:
    """JSON that Docker keeps whole: a cut document would not parse, so when too long the
    per-check details go and the output is shortened instead."""
    text = json.dumps(body, separators=(",", ":"))  # ASCII (ensure_ascii): a char is a byte
    if len(text) < OUTPUT_LIMIT:
        return text
    output = str(body.get("output", ""))
    slim = {"status": body["status"], "output": output, "checks": {}}
    text = json.dumps(slim, separators=(",", ":"))
    if len(text) >= OUTPUT_LIMIT:  # each character cut from the output saves a byte or more
        slim["output"] = output[:len(output) - (len(text) - OUTPUT_LIMIT) - 5] + " ..."
        text = json.dumps(slim, separators=(",", ":"))
    return text


# -- command line (fast path: no Typer) ------------------------------------------------------
def _die(prog: str, message: str) -> NoReturn:
    sys.stderr.write(f"{prog}: {message}\n")
    sys.exit(exits.FAILURE)


def start_watchdog(seconds: float) -> None:
    """End the process with exit 1 once `seconds` have passed, whatever the main thread does.

    A bare `_thread` thread, not `threading`: it needs no joining at exit, and `threading`
    would add ~1 ms to every probe.
    """
    def expire() -> None:
        time.sleep(seconds)
        os.write(2, f"unhealthy: probe ran past its {seconds:g}s timeout\n".encode())
        os._exit(exits.FAILURE)

    _thread.start_new_thread(expire, ())


def run(settings: Settings) -> int:
    """Probe with loaded settings, print the result, return the exit code."""
    start_watchdog(settings.timeout + 0.2)
    verdict = probe(settings)
    output = render(verdict, settings)
    if output:
        stream = sys.stdout if verdict.healthy or settings.json else sys.stderr
        stream.write(output + "\n")
        stream.flush()
    return exits.OK if verdict.healthy else exits.FAILURE


def main(argv: list[str]) -> int:
    """Entry of the fast path: parse flags, load config, probe. Never raises for user error."""
    prog = f"hc {PROBE}"
    try:
        settings = load(PROBE, parse_flags(argv, PROBE))
    except UsageError as exc:
        _die(prog, f"{exc} (see {prog} --help)")
    except ConfigError as exc:
        _die(prog, f"config error: {exc}")
    return run(settings)
