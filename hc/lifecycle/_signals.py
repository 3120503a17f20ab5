"""SIGTERM and SIGINT: drain, then stop the server; a second signal skips the drain, a third
stops waiting for in-flight requests."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from hc.health import Health
from hc.server import Server

log = logging.getLogger("hc.lifecycle")


SAME_SIGNAL_WINDOW = 0.5
"""Seconds within which a repeat of a signal counts as the same request: a terminal's Ctrl-C
(or a group kill) reaches hc directly *and* forwarded by any wrapper in its process group (an
init such as `docker run --init`'s tini, a supervisor)."""


def handle_signals(loop: asyncio.AbstractEventLoop, server: Server, health: Health,
                   drain_delay: float) -> None:
    """SIGTERM/SIGINT drain `health` for `drain_delay` seconds, then stop `server`; a repeat
    within SAME_SIGNAL_WINDOW counts once."""
    last: dict[int, float] = {}

    def on_signal(signum: int) -> None:
        now = time.monotonic()
        if now - last.get(signum, -SAME_SIGNAL_WINDOW) < SAME_SIGNAL_WINDOW:
            return
        last[signum] = now
        name = signal.Signals(signum).name
        if not health.draining:
            log.info("%s: draining for %gs, then closing the listener", name, drain_delay)
            health.drain()
            loop.call_later(drain_delay, _stop, server)
        elif not server.should_exit:
            log.info("%s again: skipping the rest of the drain", name)
            _stop(server)
        else:
            log.warning("%s again: not waiting for in-flight requests", name)
            server.force_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def _stop(server: Server) -> None:
    server.should_exit = True
