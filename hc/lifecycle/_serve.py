"""`serve`: a service's app, health kit and background tasks run until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from hc import __version__, exits, state
from hc.config import Settings
from hc.health import Health, LoopLag, MemoryLimit
from hc.lifecycle._pid1 import reap_orphans_as_pid1
from hc.lifecycle._publisher import Publisher
from hc.lifecycle._signals import handle_signals
from hc.lifecycle._sweeper import sweep_forever
from hc.server import ASGIApp, bind, bind_unix, make_server

log = logging.getLogger("hc.lifecycle")

Task = Callable[[], Coroutine[Any, Any, None]]
"""Background work run beside the server and cancelled at shutdown."""


def add_builtin_checks(health: Health, settings: Settings) -> LoopLag:
    """Event-loop lag and (when limits are set) memory; returns the lag monitor to run."""
    lag = LoopLag(settings.loop_lag_warn, settings.loop_lag_fail)
    health.add("event_loop", lag.check, tags=("live",), threaded=False, kind="system")
    if settings.rss_warn_mb or settings.rss_fail_mb:
        memory = MemoryLimit(settings.rss_warn_mb * 2**20, settings.rss_fail_mb * 2**20)
        health.add("memory", memory.check, tags=("live",), threaded=False, kind="system")
    return lag


async def serve(settings: Settings, health: Health, app: ASGIApp,
                tasks: Sequence[Task] = ()) -> int:
    """Run `app` and the health kit until a signal; return the exit code.

    Raises state.StateError (a config problem) and server.ListenError (a runtime failure).
    """
    snapshot_path = state.path_for(settings.state_dir, settings.host, settings.port, settings.uds)
    state.prepare(snapshot_path)
    sockets = [bind(settings.host, settings.port, settings.uds,
                    reuse_port=settings.reuse_port)]
    private = ""  # the probe's own way in while other processes share the port
    if settings.reuse_port and not settings.uds:
        private = state.socket_for(settings.state_dir, settings.host, settings.port)
        sockets.append(bind_unix(private))
    server = make_server(app, access_log=settings.access_log,
                         shutdown_timeout=settings.shutdown_timeout)
    loop = asyncio.get_running_loop()
    publisher = Publisher(health, snapshot_path, settings.state_interval)
    health.on_change(publisher.soon)
    lag = add_builtin_checks(health, settings)
    background: list[Coroutine[Any, Any, None]] = [
        health.run(), lag.monitor(), publisher.run(), *(t() for t in tasks)]
    if getattr(sys, "frozen", False) and settings.sweep_age:
        background.append(sweep_forever(settings.sweep_age, os.path.dirname(sys.executable)))
    running = [asyncio.create_task(c) for c in background]
    handle_signals(loop, server, health, settings.drain_delay)
    reap_orphans_as_pid1(loop)
    where = settings.uds or f"{settings.host}:{settings.port}"
    if private:
        where += f" (shared with reuse_port; the probe's way in: {private})"
    log.info("hc %s listening on %s (pid %d)", __version__, where, os.getpid())
    try:
        await server.serve(sockets=sockets)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        state.remove(snapshot_path)
        for path in (settings.uds, private):
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    log.info("stopped cleanly")
    return exits.OK
