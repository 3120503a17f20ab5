"""sentinel:// (or redis+sentinel://) targets: a Redis primary found through Sentinel, its
replicas, and the sentinels themselves.

    sentinel://[[user]:password@]host[:port][,host[:port]...]/<master-name>[?password=...]

The userinfo logs in at the sentinels (the hosts the URL names); `?password=` (and
`?username=`), or the target's `password_file`, at the primary and its replicas. Each check

1. asks every sentinel, at once: `SENTINEL MASTER` (address, flags, config epoch),
   `SENTINEL REPLICAS` and `SENTINEL CKQUORUM` (could a failover be authorised now);
2. takes as the primary the address given by the sentinel with the newest config epoch, the one
   Sentinel itself trusts (so during a failover it moves once, when the first sentinel learns
   the new primary), and notes sentinels that disagree;
3. checks that primary (PING, role, replicas, lag) and every replica the sentinels list (role,
   link, last I/O), at once. A replica that answers as a primary is a second primary.

Each step may take `STEP` of the target's timeout. A change of primary between checks is a
failover, logged and counted. The target fails when no sentinel answers, the quorum is lost,
the primary is down or not a primary, or there are two primaries; a missing sentinel, a
disagreement or a replica that is down, stale or lagging is a warning (clients still reach the
primary).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from hc.health import Status
from hc.watcher._kind import Kind, Shared
from hc.watcher._model import Observation, Prober, Sample, Series, Target, Unusable
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

DEFAULT_PORT = 26379
STEP = 0.45
"""The share of the target's timeout that asking the sentinels, then checking the nodes, may
each take: a hung sentinel or replica costs its own answer, not the whole check."""

SENTINELS = Series("hc_redis_sentinels", "Sentinels listed in the sentinel:// URL.")
SENTINELS_UP = Series("hc_redis_sentinels_up", "Listed sentinels that answered the last "
                      "check.")
QUORUM_OK = Series("hc_redis_sentinel_quorum_ok", "1 when a sentinel says a failover could be "
                   "authorised now (SENTINEL CKQUORUM), 0 when none does.")
AGREE = Series("hc_redis_sentinels_agree", "1 when every answering sentinel names the same "
               "primary.")
PRIMARY = Series("hc_redis_primary", "1 for the address of the primary the sentinels name.",
                 ("address",))
PRIMARIES = Series("hc_redis_primaries", "Nodes of the sentinel target that answer as a "
                   "primary: more than 1 is a split.")
REPLICA_UP = Series("hc_redis_replica_up", "1 when a replica the sentinels list answered.",
                    ("replica",))
REPLICA_LINK = Series("hc_redis_replica_link_up", "1 when the replica's link to its primary is "
                      "up.", ("replica",))
REPLICA_LAST_IO = Series("hc_redis_replica_last_io_seconds", "Seconds since the replica last "
                         "heard from its primary.", ("replica",))
REPLICA_LAG = Series("hc_redis_replica_lag_bytes", "The primary's offset minus the offset the "
                     "replica acknowledged.", ("replica",))
FAILOVERS = Series("hc_redis_failovers", "Changes of the primary the sentinels name, seen "
                   "since the watcher started.", counter=True)

Address = tuple[str, int]


def show(address: Address) -> str:
    """`host:port`, `[v6]:port`."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Login:
    """A username and a password, or a file holding the password; empty ones are not sent."""

    username: str = ""
    password: str = ""
    password_file: str = ""

    @property
    def has_password(self) -> bool:
        """Whether a password is given, in the URL or as a file."""
        return bool(self.password or self.password_file)

    def options(self) -> dict[str, Any]:
        """redis-py's options for this login."""
        if self.password_file:
            return {"credential_provider": FileCredentials(self.password_file, self.username)}
        return {"username": self.username or None, "password": self.password or None}


@dataclass(frozen=True)
class SentinelUrl:
    """A sentinel:// URL taken apart."""

    sentinels: tuple[Address, ...]
    master: str
    login: Login = Login()
    """At the sentinels."""
    data_login: Login = Login()
    """At the primary and its replicas."""


def parse_url(url: str) -> SentinelUrl:
    """The parts of a sentinel:// URL. Raises ValueError saying what is wrong."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    master = unquote(parts.path.strip("/"))
    if not master or "/" in master:
        raise ValueError(f"{parts.scheme}:// needs the master's name, as in "
                         f"{parts.scheme}://host:{DEFAULT_PORT}/mymaster")
    user, _, password = userinfo.partition(":")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return SentinelUrl(tuple(_host(h, parts.scheme) for h in hosts.split(",")), master,
                       Login(unquote(user), unquote(password)),
                       Login(query.get("username", ""), query.get("password", "")))


def _host(text: str, scheme: str) -> Address:
    host = urlsplit(f"//{text.strip()}")
    try:
        port = host.port or DEFAULT_PORT
    except ValueError:
        port = 0
    if not host.hostname or not port:
        raise ValueError(f"bad sentinel address {text.strip()!r}; expected host[:port], as in "
                         f"{scheme}://10.0.0.1:26379,10.0.0.2:26379/mymaster")
    return host.hostname, port


@dataclass(frozen=True)
class View:
    """What one sentinel said, or why it said nothing."""

    sentinel: str
    error: str = ""
    primary: Address | None = None
    """None when it does not know the master."""
    epoch: int = -1
    quorum: str = ""
    """Its answer to CKQUORUM: `OK ...` or `NOQUORUM ...`."""
    quorum_ok: bool = False
    replicas: tuple[Address, ...] = ()


@dataclass(frozen=True)
class NodeSeen:
    """What one data node said, or why it said nothing."""

    address: str
    state: Replication | None = None
    error: str = ""
    latency: float | None = None


@dataclass(frozen=True)
class SentinelDetails:
    """The sentinels' view and the nodes' state at the last check (`current`: it finished),
    with the failovers and reconnects seen since the watcher started."""

    sentinels: int
    current: bool = False
    sentinels_up: int = 0
    quorum_ok: bool = False
    agree: bool = False
    primary: NodeSeen | None = None
    replicas: tuple[NodeSeen, ...] = ()
    failovers: int = 0
    reconnects: int = 0

    def samples(self) -> Iterator[Sample]:
        yield FAILOVERS, (), self.failovers
        yield RECONNECTS, (), self.reconnects
        if not self.current:
            return
        yield SENTINELS, (), self.sentinels
        yield SENTINELS_UP, (), self.sentinels_up
        yield QUORUM_OK, (), float(self.quorum_ok)
        yield AGREE, (), float(self.agree)
        if self.primary is None:
            return
        yield PRIMARY, (self.primary.address,), 1.0
        nodes = (self.primary, *self.replicas)
        yield PRIMARIES, (), sum(n.state is not None and n.state.role == "primary" for n in nodes)
        yield from _primary_samples(self.primary.state)
        for replica in self.replicas:
            yield from _replica_samples(replica)

    def as_dict(self) -> dict[str, Any]:
        def node(seen: NodeSeen | None) -> dict[str, Any] | None:
            if seen is None:
                return None
            state = seen.state
            return {"address": seen.address, "error": seen.error,
                    "role": state.role if state else None}

        return {"current": self.current, "sentinels": self.sentinels,
                "sentinels_up": self.sentinels_up, "quorum_ok": self.quorum_ok,
                "agree": self.agree, "primary": node(self.primary),
                "replicas": [node(r) for r in self.replicas], "failovers": self.failovers,
                "reconnects": self.reconnects}


def _primary_samples(state: Replication | None) -> Iterator[Sample]:
    if state is None or state.role != "primary":
        return
    yield CONNECTED_REPLICAS, (), state.replicas
    if state.lag_bytes is not None:
        yield LAG, (), state.lag_bytes
    for address, lag in state.replica_lags:
        yield REPLICA_LAG, (address,), lag


def _replica_samples(seen: NodeSeen) -> Iterator[Sample]:
    yield REPLICA_UP, (seen.address,), float(seen.state is not None)
    state = seen.state
    if state is None or state.role != "replica":
        return
    yield REPLICA_LINK, (seen.address,), float(bool(state.link_up))
    if state.last_io_seconds is not None:
        yield REPLICA_LAST_IO, (seen.address,), state.last_io_seconds


class SentinelProber(Prober):
    """Asks the sentinels for the primary, then checks it and its replicas; follows failovers.
    Keeps one Node per sentinel and per data node it has seen in the last check."""

    def __init__(self, target: Target, url: SentinelUrl) -> None:
        self.target, self.url = target, url
        self.limits = Limits.of(target.options)
        self.step = target.timeout * STEP
        self.sentinels = {show(a): self._node(a, url.login, "sentinel") for a in url.sentinels}
        self.nodes: dict[str, Node] = {}
        self.primary = ""
        """The address of the primary at the last check that found one."""
        self.seen = SentinelDetails(len(self.sentinels))
        self._retired_reconnects = 0

    def _node(self, address: Address, login: Login, what: str) -> Node:
        host, port = address

        def make(**common: Any) -> Redis:
            return Redis(host=host, port=port, socket_keepalive=True,
                         socket_keepalive_options=TCP_KEEPALIVE, **login.options(), **common)

        label = f"target {self.target.name}: {what} {show(address)}"
        return Node(make, label=label, timeout=self.target.timeout)

    async def check(self) -> Observation:
        self.seen = SentinelDetails(len(self.sentinels), failovers=self.seen.failovers,
                                    reconnects=self.seen.reconnects)
        try:
            views = await asyncio.gather(*(self._ask(a, n) for a, n in self.sentinels.items()))
            return await self._check_nodes(views)
        finally:
            self.seen = replace(self.seen, reconnects=self._reconnects())

    def details(self) -> SentinelDetails:
        return self.seen

    async def close(self) -> None:
        nodes = [*self.sentinels.values(), *self.nodes.values()]
        await asyncio.gather(*(node.close() for node in nodes), return_exceptions=True)

    # -- step 1: the sentinels ----------------------------------------------------------------
    async def _ask(self, address: str, node: Node) -> View:
        try:
            async with asyncio.timeout(self.step):
                return await self._view(address, node)
        except TimeoutError:
            return View(address, f"no answer within {self.step:g}s")
        except ERRORS as exc:
            return View(address, problem(exc, self.url.login.has_password))

    async def _view(self, address: str, node: Node) -> View:
        name = self.url.master
        try:
            master = _pairs(await node.command("SENTINEL", "MASTER", name))
        except ResponseError as exc:
            if "no such master" in str(exc).lower():
                return View(address)
            raise
        replicas = [_pairs(r) for r in await node.command("SENTINEL", "REPLICAS", name)]
        try:
            quorum, quorum_ok = str(await node.command("SENTINEL", "CKQUORUM", name)), True
        except ResponseError as exc:
            quorum, quorum_ok = str(exc), False
        return View(address, primary=_address(master), epoch=int(master.get("config-epoch", 0)),
                    quorum=quorum, quorum_ok=quorum_ok,
                    replicas=tuple(_address(r) for r in replicas))

    # -- step 2 and 3: the primary and its replicas ----------------------------------------------
    async def _check_nodes(self, views: list[View]) -> Observation:
        up = [v for v in views if not v.error]
        named = [v for v in up if v.primary]
        self.seen = replace(self.seen, current=True, sentinels_up=len(up),
                             quorum_ok=any(v.quorum_ok for v in up),
                             agree=len({v.primary for v in named}) == 1)
        if not named:
            return self._no_primary(views, len(up))
        chosen = max(named, key=lambda v: v.epoch)
        primary = show(chosen.primary) if chosen.primary else ""
        self._follow(primary)
        replicas = sorted({show(a) for v in named if v.primary == chosen.primary
                           for a in v.replicas} - {primary})
        await self._keep_nodes([primary, *replicas])
        seen = await asyncio.gather(*(self._visit(a) for a in [primary, *replicas]))
        self.seen = replace(self.seen, primary=seen[0], replicas=tuple(seen[1:]))
        findings = [*self._sentinel_findings(views, named), *self._node_findings(seen)]
        return _observation(findings, self._summary(seen[0]), seen[0].latency)

    def _no_primary(self, views: list[View], up: int) -> Observation:
        if up:
            return Observation(Status.FAIL, f"no sentinel knows master {self.url.master!r} "
                                            f"({up} of {len(views)} answer)")
        first = views[0]
        return Observation(Status.FAIL, f"no sentinel answers ({len(views)} listed; "
                                        f"{first.sentinel}: {first.error})")

    def _follow(self, primary: str) -> None:
        if self.primary and primary != self.primary:
            log.warning("target %s: failover: the sentinels' primary moved from %s to %s",
                        self.target.name, self.primary, primary, extra={"target": self.target.name})
            self.seen = replace(self.seen, failovers=self.seen.failovers + 1)
        self.primary = primary

    async def _keep_nodes(self, addresses: list[str]) -> None:
        """Nodes for `addresses`; nodes of addresses gone from the topology are closed."""
        retired = [self.nodes.pop(a) for a in set(self.nodes) - set(addresses)]
        self._retired_reconnects += sum(node.reconnects for node in retired)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.step):
                await asyncio.gather(*(n.close() for n in retired), return_exceptions=True)
        for address in addresses:
            if address not in self.nodes:
                host, _, port = address.rpartition(":")
                self.nodes[address] = self._node((host.strip("[]"), int(port)),
                                                 self.url.data_login, "node")

    async def _visit(self, address: str) -> NodeSeen:
        node = self.nodes[address]
        try:
            async with asyncio.timeout(self.step):
                latency = await node.ping()
                state = replication(await node.info("replication"))
        except TimeoutError:
            return NodeSeen(address, error=f"no answer within {self.step:g}s")
        except ERRORS as exc:
            return NodeSeen(address, error=problem(exc, self.url.data_login.has_password))
        return NodeSeen(address, state, latency=latency)

    def _sentinel_findings(self, views: list[View],
                           named: list[View]) -> Iterator[tuple[Status, str]]:
        up = [v for v in views if not v.error]
        if not any(v.quorum_ok for v in up):
            yield Status.FAIL, f"sentinel quorum lost: {named[0].quorum}"
        down = [v for v in views if v.error]
        if down:
            yield Status.WARN, (f"{len(up)} of {len(views)} sentinels answer ("
                                + "; ".join(f"{v.sentinel}: {v.error}" for v in down) + ")")
        primaries = sorted({show(v.primary) for v in named if v.primary})
        if len(primaries) > 1:
            said = {p: sum(1 for v in named if v.primary and show(v.primary) == p)
                    for p in primaries}
            yield Status.WARN, "sentinels disagree on the primary: " + ", ".join(
                f"{p} ({n})" for p, n in said.items())

    def _node_findings(self, seen: list[NodeSeen]) -> Iterator[tuple[Status, str]]:
        primary, *replicas = seen
        if primary.state is None:
            yield Status.FAIL, f"primary {primary.address}: {primary.error}"
        elif primary.state.role != "primary":
            yield Status.FAIL, (f"primary {primary.address} (the sentinels') answers as "
                                f"{primary.state.role or 'no data node'}")
        else:
            status, words = judge(primary.state, self.limits)
            if status is not Status.PASS:
                yield status, f"primary {primary.address}: {words}"
        serving = primary.state is not None and primary.state.role == "primary"
        for replica in replicas:
            yield from self._replica_finding(primary.address if serving else "", replica)

    def _replica_finding(self, primary: str,
                         replica: NodeSeen) -> Iterator[tuple[Status, str]]:
        """How a replica stands; `primary` is the sentinels' primary if it serves as one."""
        if replica.state is None:
            yield Status.WARN, f"replica {replica.address}: {replica.error}"
        elif replica.state.role == "primary" and primary:
            yield Status.FAIL, (f"two primaries: {primary} (the sentinels') and "
                                f"{replica.address}")
        elif replica.state.role == "primary":  # promoted, the sentinels not yet switched
            yield Status.WARN, f"replica {replica.address} answers as primary (failover?)"
        else:
            status, words = judge(replica.state, self.limits)
            if status is not Status.PASS:  # a degraded replica: the primary still serves
                yield Status.WARN, f"replica {replica.address}: {words}"

    def _summary(self, primary: NodeSeen) -> str:
        seen = self.seen
        sentinels = f"{seen.sentinels_up}/{seen.sentinels} sentinels"
        if primary.state is None or primary.state.role != "primary" or primary.latency is None:
            return sentinels  # the findings say what is wrong with the primary
        _, words = judge(primary.state, Limits())
        return (f"primary {primary.address}, {words}, {sentinels}; "
                f"PING {primary.latency * 1000:.1f} ms")

    def _reconnects(self) -> int:
        nodes = [*self.sentinels.values(), *self.nodes.values()]
        return self._retired_reconnects + sum(node.reconnects for node in nodes)


def _observation(findings: Iterable[tuple[Status, str]], summary: str,
                 latency: float | None) -> Observation:
    """The worst finding's status; the findings, worst first, then the summary."""
    order = (Status.FAIL, Status.WARN, Status.PASS)
    found = sorted(findings, key=lambda f: order.index(f[0]))
    status = Status.worst([s for s, _ in found])
    return Observation(status, "; ".join([*(words for _, words in found), summary]), latency)


def _pairs(reply: Any) -> dict[str, str]:
    """A flat [key, value, ...] reply as a dict."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return dict(zip(map(str, reply[::2]), map(str, reply[1::2]), strict=True))


def _address(fields: dict[str, str]) -> Address:
    return fields.get("ip", ""), int(fields.get("port", 0))


def _url_problem(parts: SplitResult) -> str:
    try:
        parse_url(parts.geturl())
    except ValueError as exc:
        return str(exc)
    return ""


def _name_words(parts: SplitResult) -> list[str]:
    return ["sentinel", unquote(parts.path.strip("/"))]


def _prober(target: Target, shared: Shared) -> Prober:
    url = parse_url(target.url)
    password_file: str = target.options["password_file"]
    if password_file and url.data_login.password:
        return Unusable(BOTH_PASSWORDS)
    if password_file:
        url = replace(url, data_login=replace(url.data_login, password_file=password_file))
    return SentinelProber(target, url)


SENTINEL = Kind(
    "sentinel", ("sentinel", "redis+sentinel"), _prober, keys=(*LIMIT_KEYS, PASSWORD_FILE),
    defaults=limit_defaults, url_problem=_url_problem, name_words=_name_words, host_list=True,
    series=(SENTINELS, SENTINELS_UP, QUORUM_OK, AGREE, PRIMARY, PRIMARIES, CONNECTED_REPLICAS,
            LAG, REPLICA_UP, REPLICA_LINK, REPLICA_LAST_IO, REPLICA_LAG, FAILOVERS,
            RECONNECTS))
