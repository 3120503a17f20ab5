"""Listening sockets and the uvicorn server, bound by us so that errors are ours to word."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import stat
from collections.abc import Generator

import uvicorn

from hc.server._app import PROBE_PATHS
from hc.server.types import ASGIApp


class ListenError(OSError):
    """The address cannot be bound; the message is one line."""


def bind(host: str, port: int, uds: str = "", *, reuse_port: bool = False) -> socket.socket:
    """A listening socket on host:port (`::` is dual-stack), shared with other processes of
    the same user with `reuse_port`, or on the unix socket `uds`."""
    if uds:
        return bind_unix(uds)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    except UnicodeError:  # IDNA refused the host name
        raise ListenError(f"cannot listen on {host}:{port}: invalid host name") from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address, family=family, backlog=256, reuse_port=reuse_port,
                                    dualstack_ipv6=family == socket.AF_INET6 and host == "::")
    except OSError as exc:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"cannot listen on {shown}: {reason}") from None


def bind_unix(path: str) -> socket.socket:
    """A listening unix socket at `path`, replacing a stale one from an earlier run but never
    one another process still listens on."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            if _answers(path):
                raise ListenError(f"cannot listen on unix socket {path}: another process "
                                  "listens on it")
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(256)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)  # "AF_UNIX path too long" has no strerror
        raise ListenError(f"cannot listen on unix socket {path}: {reason}") from None
    return sock


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


class _NoProbeLogs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        path = args[2] if isinstance(args, tuple) and len(args) > 2 else ""
        return not str(path).split("?", 1)[0].startswith(PROBE_PATHS)


class Server(uvicorn.Server):
    """uvicorn without its signal handling: hc's lifecycle owns SIGTERM/SIGINT.

    uvicorn re-raises a caught signal after shutdown; the process would then die *by* the
    signal, which a bootloader running as PID 1 reports as exit 2 instead of 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def make_server(app: ASGIApp, *, access_log: bool, shutdown_timeout: float) -> Server:
    config = uvicorn.Config(
        app, log_config=None, access_log=access_log, lifespan="auto",
        timeout_graceful_shutdown=math.ceil(shutdown_timeout), server_header=False,
        proxy_headers=False,
    )
    logging.getLogger("uvicorn.access").addFilter(_NoProbeLogs())
    return Server(config)
