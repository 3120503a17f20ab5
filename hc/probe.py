"""`hc healthcheck`: probe the own service over HTTP and through its state snapshot.

Exit 0 when healthy and 1 when unhealthy for any reason, bad usage included (Docker reserves 2).
Standard library only, and never more than `--timeout` seconds: a watchdog thread ends the
process with exit 1 should anything (a DNS lookup, a stuck read) outlast the deadline, so Docker
never has to SIGKILL the probe and leave its extraction dirs and orphans behind.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

from hc import exits, state
from hc.config import PROBE, ConfigError, Settings, load, options_for, probe_address

MAX_RESPONSE = 64 * 1024
"""Bytes of response the probe reads at most; a larger answer is itself a failure."""
OUTPUT_LIMIT = 4096
"""Docker keeps 4096 bytes of a probe's output in `docker inspect`; we never print more."""
ENDPOINT_OF_MODE = {"live": "livez", "ready": "readyz", "startup": "startupz"}
STALE_FACTOR = 3.0


@dataclass
class Verdict:
    """What the probe found: healthy or not, why, and the details `--verbose` prints."""

    healthy: bool = True
    reasons: list[str] = field(default_factory=list)
    url: str = ""
    http_status: int | None = None
    elapsed: float = 0.0
    state_age: float | None = None
    lines: list[str] = field(default_factory=list)
    body: dict[str, Any] | None = None

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
    if settings.uds:
        return f"http+unix://{settings.uds}{path}", "localhost", 0, settings.uds, path
    host = probe_address(settings.host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{settings.port}{path}", host, settings.port, "", path


def _connect(host: str, port: int, uds: str, deadline: float) -> socket.socket:
    remaining = deadline - time.monotonic()
    if uds:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        sock.connect(uds)
        return sock
    # No proxy is ever consulted: the probe talks straight to the address it was given.
    return socket.create_connection((host, port), timeout=remaining)


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
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _die(self.prog, message)


def _die(prog: str, message: str) -> NoReturn:
    sys.stderr.write(f"{prog}: {message}\n")
    sys.exit(exits.FAILURE)


def parse_flags(argv: list[str], command: str = PROBE) -> dict[str, Any]:
    """Flags of `command` given on the command line, from the option table Typer's help is
    built from, without Typer (bad usage: one line, exit 1)."""
    parser = _Parser(prog=f"hc {command}", add_help=False, allow_abbrev=False)
    for option in options_for(command):
        if option.kind is bool:
            parser.add_argument(option.flag, dest=option.name,
                                action=argparse.BooleanOptionalAction, default=None)
        else:
            action = "append" if option.repeated else "store"
            parser.add_argument(option.flag, dest=option.name, action=action, default=None)
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}


def start_watchdog(seconds: float) -> None:
    """End the process with exit 1 once `seconds` have passed, whatever the main thread does."""
    def expire() -> None:
        os.write(2, f"unhealthy: probe ran past its {seconds:g}s timeout\n".encode())
        os._exit(exits.FAILURE)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


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
    try:
        settings = load(PROBE, parse_flags(argv))
    except ConfigError as exc:
        _die(f"hc {PROBE}", f"config error: {exc}")
    return run(settings)

