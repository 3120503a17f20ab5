"""One persistent connection to a Redis server (a data node or a sentinel) that survives the
server's `timeout`, with its reconnects counted.

The server closes a connection idle for longer than its `timeout` setting, and redis-py only
finds out at the next command. So at every connect the node reads that setting (`CONFIG GET
timeout`; when refused, as by a sentinel or an ACL without CONFIG, it assumes `FALLBACK_IDLE`)
and, while the connection is open, PINGs it whenever it has been idle for half of it. TCP
keepalive covers NATs and firewalls that drop idle flows without a word. A connection found
closed anyway is reopened once, at once: that is a reconnect, counted and logged, and the PING
latency a check reports is timed on the open connection, never across a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from hc.watcher._model import Series, describe
from hc.watcher._password import PasswordFileError, read_password

log = logging.getLogger("hc.watcher")

CLIENT_NAME = "hc-watcher"
"""The name of hc's connections in the server's CLIENT LIST."""
FALLBACK_IDLE = 1.0
"""Seconds a connection may idle when the server's `timeout` cannot be read: Sentinel PINGs
the servers it monitors as often."""
LOOK_AGAIN = 1.0
"""Seconds between looks of the keepalive task when nothing needs a PING."""
TCP_KEEPALIVE = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}
"""Socket options of TCP connections: a dead peer is found in about a minute."""
ERRORS = (RedisError, OSError)
"""What a command on a node may raise for a problem of the node (not of hc)."""

RECONNECTS = Series("hc_redis_reconnects", "Connections to the target's Redis servers "
                    "reopened after a first one (closed by the server or the network).",
                    counter=True)


class UnreadablePassword(RedisError):
    """The password file could not be read at a connect. A RedisError, so that redis-py drops
    the connection it opened rather than keep it unauthenticated."""


class FileCredentials(CredentialProvider):
    """Redis credentials whose password is read from a file at every connect: a rotated
    secret is used from the next reconnect on."""

    def __init__(self, path: str, username: str = "") -> None:
        self.path, self.username = path, username

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        try:
            password = read_password(self.path)
        except PasswordFileError as exc:
            raise UnreadablePassword(str(exc)) from None
        return (self.username, password) if self.username else (password,)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        return self.get_credentials()


class Node:
    """A Redis client with one connection, made by `make(**options)` (e.g. Redis.from_url),
    kept open between checks. `label` names it in log lines; a keepalive PING may take at most
    `timeout` seconds."""

    def __init__(self, make: Callable[..., Redis], *, label: str, timeout: float) -> None:
        self.label, self.timeout = label, timeout
        self.connects = 0
        self.idle_limit: float | None = None
        """Seconds after which an idle connection is PINGed; None: the server never closes
        idle connections."""
        self._used = time.monotonic()
        self._keeper: asyncio.Task[None] | None = None
        # No socket timeouts: callers bound every command, and redis-py drops a connection
        # whose command was cancelled.
        self.client: Redis = make(
            single_connection_client=True, retry=Retry(NoBackoff(), 1),
            redis_connect_func=self._connected, client_name=CLIENT_NAME,
            decode_responses=True)

    @property
    def reconnects(self) -> int:
        """Connections opened after the first one."""
        return max(0, self.connects - 1)

    async def command(self, *args: str | int) -> Any:
        """Run one command; raises one of ERRORS."""
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keepalive(),
                                               name=f"hc-keepalive {self.label}")
        try:
            return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            self._used = time.monotonic()

    async def ping(self) -> float:
        """Seconds a PING took on the open connection (opened first if it was not)."""
        connects = self.connects
        started = time.monotonic()
        await self.command("PING")
        if self.connects != connects:  # (re)connected on the way: time a PING alone
            started = time.monotonic()
            await self.command("PING")
        return time.monotonic() - started

    async def info(self, section: str) -> dict[str, Any]:
        """`INFO <section>`, parsed."""
        info: dict[str, Any] = await self.command("INFO", section)
        return info

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        await self.client.aclose()

    async def _connected(self, connection: AbstractConnection) -> None:
        await connection.on_connect()
        self.idle_limit = await _idle_limit(connection)
        self.connects += 1
        if self.connects > 1:
            log.info("%s: reconnected", self.label)

    def _open(self) -> bool:
        connection = self.client.connection
        return connection is not None and connection.is_connected

    async def _keepalive(self) -> None:
        while True:
            limit = self.idle_limit
            if limit is None or not self._open():
                await asyncio.sleep(LOOK_AGAIN)
                continue
            wait = self._used + limit - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            # A failed PING is the next check's to report.
            with contextlib.suppress(*ERRORS, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await self.command("PING")


async def _idle_limit(connection: AbstractConnection) -> float | None:
    """Half the server's `timeout`; None when it is 0 (off), FALLBACK_IDLE when unknown."""
    try:
        await connection.send_command("CONFIG", "GET", "timeout")
        reply = await connection.read_response()
    except ResponseError:
        return FALLBACK_IDLE
    try:  # ["timeout", "300"] (RESP2) or {"timeout": "300"} (RESP3)
        pairs = dict(zip(reply[::2], reply[1::2], strict=True)) \
            if isinstance(reply, list) else reply
        seconds = int(pairs["timeout"])
    except (KeyError, TypeError, ValueError):
        return FALLBACK_IDLE
    return seconds / 2 if seconds > 0 else None


def problem(exc: BaseException, has_password: bool) -> str:
    """One line for what a command on a node raised."""
    if isinstance(exc, UnreadablePassword):
        return str(exc)
    auth = isinstance(exc, AuthenticationError) or \
        (isinstance(exc, ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS")))
    if auth and not has_password:
        return ("authentication required: the server wants a password; give it in the URL or "
                "in password_file")
    if auth:
        return f"authentication failed: {' '.join(str(exc).split())}"
    if isinstance(exc, ResponseError):
        return "server error: " + describe(exc)
    return describe(exc)
