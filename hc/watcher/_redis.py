"""redis://, rediss:// and unix:// targets: PING latency and replication state.

One persistent connection per target. The server closes connections idle past its `timeout`
setting, and a NAT or firewall may drop them silently; so the connection has TCP keepalive, is
PINGed before use when idle (`health_check_interval`) and is reopened once, at once, when that
PING finds it closed. A second failure is the target's failure.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from hc.health import Status
from hc.watcher._model import Observation, RedisInfo, failed
from hc.watcher._targets import Target

log = logging.getLogger("hc.watcher")

IDLE_PING = 1.0
"""Seconds of idleness after which the connection is PINGed before use (redis-py's
`health_check_interval`): shorter than any sensible server `timeout`."""
KEEPALIVE = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}
ROLES = {"master": "primary", "slave": "replica"}
_REPLICA_KEY = re.compile(r"slave\d+")


class RedisProber:
    """PING, then `INFO replication`; notices role changes (failovers) between checks."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.role = ""
        self.role_changes = 0
        options: dict[str, Any] = {}
        if not target.url.lower().startswith("unix:"):
            options.update(socket_keepalive=True, socket_keepalive_options=KEEPALIVE)
        if target.ca_file and target.url.lower().startswith("rediss:"):
            options["ssl_ca_certs"] = target.ca_file
        # No socket timeouts: the scheduler ends every check at the target's timeout, and
        # redis-py drops a connection whose command was cancelled.
        self.client: Redis = Redis.from_url(
            target.url, single_connection_client=True, health_check_interval=IDLE_PING,
            retry=Retry(NoBackoff(), 1), client_name="hc-watcher", **options)

    async def check(self) -> Observation:
        try:
            started = time.monotonic()
            await self.client.ping()
            latency = time.monotonic() - started
            info: dict[str, Any] = await self.client.info("replication")
        except AuthenticationError as exc:
            return Observation(Status.FAIL, self._auth_failure(exc))
        except ResponseError as exc:
            if str(exc).startswith("NOAUTH"):
                return Observation(Status.FAIL, self._auth_failure(exc))
            return failed(exc, "server error: ")
        except (RedisError, OSError) as exc:
            return failed(exc)
        state = self._replication(info)
        status, words = self._judge(state)
        return Observation(status, f"{words}; PING {latency * 1000:.1f} ms", latency, state)

    def _auth_failure(self, exc: BaseException) -> str:
        if not self.target.secrets:
            return "authentication required: the server wants a password and the URL has none"
        return f"authentication failed: {' '.join(str(exc).split())}"

    def _replication(self, info: dict[str, Any]) -> RedisInfo:
        role = ROLES.get(str(info.get("role")), str(info.get("role")))
        if self.role and role != self.role:
            self.role_changes += 1
            log.warning("target %s: role changed from %s to %s (failover)", self.target.name,
                        self.role, role)
        self.role = role
        if role == "replica":
            last_io = float(info.get("master_last_io_seconds_ago", -1))
            return RedisInfo(role, link_up=info.get("master_link_status") == "up",
                             last_io_seconds=last_io if last_io >= 0 else None,
                             role_changes=self.role_changes)
        offset = int(info.get("master_repl_offset", 0))
        linked = [r for k, r in info.items() if _REPLICA_KEY.fullmatch(k)
                  and isinstance(r, dict) and r.get("state") == "online"]
        lag = max((max(0, offset - int(r.get("offset", 0))) for r in linked), default=None)
        return RedisInfo(role, replicas=len(linked), lag_bytes=lag,
                         role_changes=self.role_changes)

    def _judge(self, state: RedisInfo) -> tuple[Status, str]:
        if state.role == "replica":
            io = "" if state.last_io_seconds is None else \
                f", last I/O {state.last_io_seconds:g}s ago"
            if not state.link_up:
                return Status.FAIL, f"replica, link to primary down{io}"
            return Status.PASS, f"replica, link up{io}"
        words = f"{state.role}, {state.replicas} replica(s)"
        lag = state.lag_bytes
        if lag is None:
            return Status.PASS, words
        words += f", lag {lag} bytes"
        if self.target.lag_fail and lag >= self.target.lag_fail:
            return Status.FAIL, f"{words} (fail at {self.target.lag_fail})"
        if self.target.lag_warn and lag >= self.target.lag_warn:
            return Status.WARN, f"{words} (warn at {self.target.lag_warn})"
        return Status.PASS, words

    async def close(self) -> None:
        await self.client.aclose()
