"""Plain data shared by the probers and the scheduler: what one check found."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from hc.health import Status


@dataclass(frozen=True)
class RedisInfo:
    """What `INFO replication` said. Lag is known on a primary (offsets its replicas
    acknowledged); link and last I/O on a replica."""

    role: str
    """primary or replica."""
    replicas: int = 0
    """Replicas linked to a primary (state online)."""
    lag_bytes: int | None = None
    """A primary's offset minus the lowest offset a linked replica acknowledged."""
    link_up: bool | None = None
    """A replica's `master_link_status`."""
    last_io_seconds: float | None = None
    """Seconds since a replica last heard from its primary."""
    role_changes: int = 0
    """Role changes (failovers) seen since the watcher started."""


@dataclass(frozen=True)
class Observation:
    """The outcome of one check. `output` is one line; the scheduler scrubs secrets from it."""

    status: Status
    output: str = ""
    latency: float | None = None
    """Seconds the target took to answer (PING, response, connect); None without an answer."""
    redis: RedisInfo | None = None


class Prober(Protocol):
    """Checks one target; keeps whatever connection it needs between checks."""

    async def check(self) -> Observation: ...

    async def close(self) -> None: ...


def failed(exc: BaseException, prefix: str = "") -> Observation:
    """A failed observation saying in one line what went wrong."""
    return Observation(Status.FAIL, prefix + describe(exc))


def describe(exc: BaseException) -> str:
    """One line for a network error, in the words a person would use.

    Libraries wrap the OS error (httpx three levels deep), so the whole chain is searched.
    """
    chain = list(_chain(exc))
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[cause.errno]
    if any(isinstance(cause, TimeoutError) for cause in chain):
        return "timed out"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


_ERRNO_WORDS = {
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENOENT: "no such file",
    errno.ECONNRESET: "connection reset by the server",
}


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
