"""Plain data shared by the kinds of target and the scheduler: a target, what one check found,
the metric series a kind reports, and the base of every prober."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hc.config import redact_url
from hc.health import CHECK_OUTPUT_LIMIT, Status


@dataclass(frozen=True)
class Target:
    """One dependency to watch. `url` may hold a password: show `shown`, pass text through
    `scrub` before it leaves the process."""

    name: str
    kind: str
    """The name of its kind (redis, sentinel, http, tcp); empty when the URL cannot be
    checked (see `error`)."""
    shown: str
    """The URL with its passwords hidden."""
    interval: float
    timeout: float
    critical: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    """The keys of its kind (e.g. `expect` of http, `role` of redis), defaults filled in."""
    error: str = ""
    """Why the URL cannot be checked; the target then fails with this message."""
    url: str = field(default="", repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        """`text` with this target's passwords (plain or URL-encoded) and any URL password
        hidden: for error messages of libraries that may quote what they were given."""
        return scrub(text, self.secrets)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with `secrets` and any URL password hidden."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return redact_url(text)


@dataclass(frozen=True)
class Observation:
    """The outcome of one check. `output` is one line; the scheduler scrubs secrets from it."""

    status: Status
    output: str = ""
    latency: float | None = None
    """Seconds the target took to answer (PING, response, connect); None without an answer."""


@dataclass(frozen=True)
class Series:
    """A metric family a kind reports besides the generic `hc_target_*` ones. The first label
    is always `target`; `labels` are the ones after it."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    counter: bool = False


Sample = tuple[Series, tuple[str, ...], float]
"""One sample of a series: (series, values of its labels after `target`, value)."""


class Details(Protocol):
    """What a kind knows of its target beyond pass/warn/fail (a Redis node's role, the
    sentinels' view): published on /metrics and /targets."""

    def samples(self) -> Iterable[Sample]:
        """The samples of the kind's series for this target."""
        ...

    def as_dict(self) -> dict[str, Any]:
        """The details as plain data for /targets (JSON)."""
        ...


class Prober:
    """Checks one target; keeps whatever connection it needs between checks."""

    async def check(self) -> Observation:
        """One check; may raise (the scheduler turns that into a failed observation) and is
        cancelled at the target's timeout."""
        raise NotImplementedError

    def details(self) -> Details | None:
        """What the prober knows now, read after each check (timed out ones included)."""
        return None

    async def close(self) -> None:
        """Release what the prober holds; nothing by default."""


class Unusable(Prober):
    """The prober of a target that cannot be checked (bad URL, unreadable CA file): it fails,
    saying why."""

    def __init__(self, error: str) -> None:
        self.error = error

    async def check(self) -> Observation:
        return Observation(Status.FAIL, self.error)


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
    return text[:CHECK_OUTPUT_LIMIT]


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
