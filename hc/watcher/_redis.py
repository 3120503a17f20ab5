"""redis://, rediss:// and unix:// targets: PING latency and replication state, over one
persistent connection per target (a `Node`: kept open across the server's `timeout`,
reconnects counted)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from redis.asyncio import Redis

from hc.config import Option
from hc.health import Status
from hc.watcher._kind import CA_FILE, Kind, Shared, host_problem, url_words
from hc.watcher._model import Observation, Prober, Sample, Series, Target, Unusable, describe
from hc.watcher._node import ERRORS, RECONNECTS, TCP_KEEPALIVE, FileCredentials, Node, problem
from hc.watcher._password import BOTH_PASSWORDS, PASSWORD_FILE
from hc.watcher._replication import (
    CONNECTED_REPLICAS,
    LAG,
    LIMIT_KEYS,
    Limits,
    Replication,
    judge,
    limit_defaults,
    replication,
)

log = logging.getLogger("hc.watcher")

EXPECTED_ROLE = Option("role", str, "", "The role the node must have: primary or replica; a "
                       "node in the other fails (critical) or warns.", frozenset(),
                       choices=("primary", "replica"))

ROLE = Series("hc_redis_role", "1 for the role the Redis target has, 0 for the other.",
              ("role",))
LINK = Series("hc_redis_primary_link_up", "1 when the Redis replica's link to its primary is "
              "up.")
LAST_IO = Series("hc_redis_primary_last_io_seconds", "Seconds since the Redis replica last "
                 "heard from its primary.")
ROLE_CHANGES = Series("hc_redis_role_changes", "Role changes (failovers) of the Redis target "
                      "seen since the watcher started.", counter=True)


@dataclass(frozen=True)
class RedisDetails:
    """The node's last replication state seen (kept while it does not answer), and the role
    changes and reconnects seen since the watcher started."""

    replication: Replication | None = None
    current: bool = False
    """Whether the last check saw `replication` (False: the node did not answer)."""
    role_changes: int = 0
    reconnects: int = 0

    def samples(self) -> Iterator[Sample]:
        yield ROLE_CHANGES, (), self.role_changes
        yield RECONNECTS, (), self.reconnects
        state = self.replication
        if state is None or not self.current:
            return  # nothing current to report
        for role in ("primary", "replica"):
            yield ROLE, (role,), float(state.role == role)
        if state.role == "primary":
            yield CONNECTED_REPLICAS, (), state.replicas
            if state.lag_bytes is not None:
                yield LAG, (), state.lag_bytes
        else:
            yield LINK, (), float(bool(state.link_up))
            if state.last_io_seconds is not None:
                yield LAST_IO, (), state.last_io_seconds

    def as_dict(self) -> dict[str, Any]:
        seen = asdict(self.replication) if self.replication else {"role": None}
        return {**seen, "current": self.current, "role_changes": self.role_changes,
                "reconnects": self.reconnects}


class RedisProber(Prober):
    """PING, then `INFO replication`; notices role changes (failovers) between checks."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.limits = Limits.of(target.options)
        self.expected: str = target.options["role"]
        self.seen = RedisDetails()
        options: dict[str, Any] = {}
        if not target.url.lower().startswith("unix:"):
            options.update(socket_keepalive=True, socket_keepalive_options=TCP_KEEPALIVE)
        ca_file = target.options["ca_file"]
        if ca_file and target.url.lower().startswith("rediss:"):
            options["ssl_ca_certs"] = ca_file
        url = target.url
        self.has_password = bool(target.secrets or target.options["password_file"])
        if target.options["password_file"]:
            url, username = _without_userinfo(url)
            options["credential_provider"] = FileCredentials(target.options["password_file"],
                                                             username)

        def make(**common: Any) -> Redis:
            return Redis.from_url(url, **common, **options)

        self.node = Node(make, label=f"target {target.name}", timeout=target.timeout)

    async def check(self) -> Observation:
        self.seen = replace(self.seen, current=False)
        try:
            latency = await self.node.ping()
            state = replication(await self.node.info("replication"))
        except ERRORS as exc:
            return Observation(Status.FAIL, problem(exc, self.has_password))
        finally:
            self.seen = replace(self.seen, reconnects=self.node.reconnects)
        self._note_role(state)
        status, words = judge(state, self.limits)
        words = f"{state.role}, {words}" if state.role else words
        if self.expected and state.role != self.expected:
            status, words = Status.FAIL, f"expected {self.expected}, is {words}"
        return Observation(status, f"{words}; PING {latency * 1000:.1f} ms", latency)

    def details(self) -> RedisDetails:
        return self.seen

    def _note_role(self, state: Replication) -> None:
        changes = self.seen.role_changes
        before = self.seen.replication
        if before is not None and before.role != state.role:
            changes += 1
            log.warning("target %s: role changed from %s to %s (failover)", self.target.name,
                        before.role, state.role, extra={"target": self.target.name})
        self.seen = replace(self.seen, replication=state, current=True, role_changes=changes)

    async def close(self) -> None:
        await self.node.close()


def _without_userinfo(url: str) -> tuple[str, str]:
    """The URL without its userinfo, and the username it held: redis-py takes no username or
    password beside a credential provider."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl(), \
        unquote(parts.username or "")


def _prober(target: Target, shared: Shared) -> Prober:
    if target.secrets and target.options["password_file"]:
        return Unusable(BOTH_PASSWORDS)
    try:
        return RedisProber(target)
    except ValueError as exc:  # redis-py's own URL checks, e.g. ?db=x
        return Unusable(describe(exc))


def _url_problem(parts: SplitResult) -> str:
    if parts.scheme.lower() == "unix":
        return "" if parts.path else "unix:// needs a socket path"
    problem = host_problem(parts)
    if not problem and not re.fullmatch(r"/?|/\d+", parts.path):
        return f"bad database {parts.path!r}; expected /0, /1, ..."
    return problem


def _name_words(parts: SplitResult) -> list[str]:
    if parts.scheme.lower() == "unix":
        return ["unix", parts.path.rstrip("/").rpartition("/")[2]]
    return url_words(parts)


REDIS = Kind("redis", ("redis", "rediss", "unix"), _prober,
             keys=(EXPECTED_ROLE, *LIMIT_KEYS, CA_FILE, PASSWORD_FILE), defaults=limit_defaults,
             url_problem=_url_problem, name_words=_name_words,
             series=(ROLE, CONNECTED_REPLICAS, LAG, LINK, LAST_IO, ROLE_CHANGES, RECONNECTS))
