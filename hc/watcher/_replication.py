"""A Redis node's replication state (`INFO replication`), how it is judged and the metric
series it feeds: shared by redis:// targets and the nodes behind sentinel:// targets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hc.config import Option, Settings, seconds
from hc.health import Status
from hc.watcher._model import Series

ROLES = {"master": "primary", "slave": "replica"}
_REPLICA_KEY = re.compile(r"slave\d+")

LAG_WARN = Option("lag_warn", int, 0, "Replication lag (bytes) at which a primary warns; 0: "
                  "off.", frozenset(), minimum=0)
LAG_FAIL = Option("lag_fail", int, 0, "Replication lag (bytes) at which a primary fails; 0: "
                  "off.", frozenset(), minimum=0)
LAST_IO_WARN = seconds("last_io_warn", 20.0, "Seconds without I/O from its primary at which a "
                       "replica warns (its primary PINGs it every 10 s by default); 0: off.",
                       frozenset())
LAST_IO_FAIL = seconds("last_io_fail", 0.0, "Seconds without I/O from its primary at which a "
                       "replica fails; 0: off (the replica itself declares the link down after "
                       "its repl-timeout, 60 s by default, and fails then).", frozenset())
LIMIT_KEYS = (LAG_WARN, LAG_FAIL, LAST_IO_WARN, LAST_IO_FAIL)
"""The target keys of the thresholds, for every kind that checks Redis nodes."""


def limit_defaults(settings: Settings) -> dict[str, Any]:
    """The lag thresholds a target without lag_warn= / lag_fail= takes: `--redis-lag-warn`
    and `--redis-lag-fail` (`Kind.defaults` of every kind that checks Redis nodes)."""
    return {"lag_warn": settings.redis_lag_warn, "lag_fail": settings.redis_lag_fail}

CONNECTED_REPLICAS = Series("hc_redis_connected_replicas", "Replicas linked to the Redis "
                            "primary.")
LAG = Series("hc_redis_replication_lag_bytes", "The Redis primary's offset minus the lowest "
             "offset a linked replica acknowledged.")


@dataclass(frozen=True)
class Replication:
    """What `INFO replication` said. Lag is known on a primary (offsets its replicas
    acknowledged); link and last I/O on a replica."""

    role: str
    """primary or replica; empty when the server has none (a sentinel)."""
    replicas: int = 0
    """Replicas linked to a primary (state online)."""
    lag_bytes: int | None = None
    """A primary's offset minus the lowest offset a linked replica acknowledged."""
    replica_lags: tuple[tuple[str, int], ...] = ()
    """A primary's offset minus what each linked replica (`ip:port`) acknowledged."""
    link_up: bool | None = None
    """A replica's `master_link_status`."""
    last_io_seconds: float | None = None
    """Seconds since a replica last heard from its primary."""


@dataclass(frozen=True)
class Limits:
    """Thresholds of a target's Redis nodes; 0 turns one off."""

    lag_warn: int = 0
    lag_fail: int = 0
    last_io_warn: float = 0.0
    last_io_fail: float = 0.0

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Limits:
        """The thresholds among a target's options."""
        return cls(**{key.name: options[key.name] for key in LIMIT_KEYS})


def replication(info: dict[str, Any]) -> Replication:
    """The replication state in a parsed `INFO replication`."""
    role = ROLES.get(str(info.get("role")), str(info.get("role", "")))
    if role == "replica":
        last_io = float(info.get("master_last_io_seconds_ago", -1))
        return Replication(role, link_up=info.get("master_link_status") == "up",
                           last_io_seconds=last_io if last_io >= 0 else None)
    offset = int(info.get("master_repl_offset", 0))
    lags = tuple((f"{r.get('ip')}:{r.get('port')}", max(0, offset - int(r.get("offset", 0))))
                 for k, r in info.items() if _REPLICA_KEY.fullmatch(k)
                 and isinstance(r, dict) and r.get("state") == "online")
    return Replication(role, replicas=len(lags), replica_lags=lags,
                       lag_bytes=max((lag for _, lag in lags), default=None))


def judge(state: Replication, limits: Limits) -> tuple[Status, str]:
    """Pass, warn or fail by the state and the thresholds, with the words that say why (the
    role aside)."""
    if state.role == "replica":
        return _judge_replica(state, limits)
    if state.role != "primary":  # a sentinel answers INFO replication with nothing
        return Status.FAIL, ("no role in INFO replication: a sentinel? (watched as "
                             "sentinel://host:port/<master-name>)")
    words = f"{state.replicas} replica(s)"
    if state.lag_bytes is None:
        return Status.PASS, words
    words += f", lag {state.lag_bytes} bytes"
    return _against(state.lag_bytes, limits.lag_warn, limits.lag_fail, words, "")


def _judge_replica(state: Replication, limits: Limits) -> tuple[Status, str]:
    last_io = state.last_io_seconds
    io = "" if last_io is None else f", last I/O {last_io:g}s ago"
    if not state.link_up:
        return Status.FAIL, f"link to primary down{io}"
    words = f"link up{io}"
    if last_io is None:
        return Status.PASS, words
    return _against(last_io, limits.last_io_warn, limits.last_io_fail, words, "s")


def _against(value: float, warn: float, fail: float, words: str,
             unit: str) -> tuple[Status, str]:
    """Fail at `fail`, warn at `warn` (each 0: off)."""
    if fail and value >= fail:
        return Status.FAIL, f"{words} (fail at {_number(fail)}{unit})"
    if warn and value >= warn:
        return Status.WARN, f"{words} (warn at {_number(warn)}{unit})"
    return Status.PASS, words


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
