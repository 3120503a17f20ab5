"""Process duties of a service: signals and draining, the state snapshot, PID 1 chores.

SIGTERM/SIGINT -> readiness fails at once (draining) -> after `drain_delay` the listener closes
-> in-flight requests get `shutdown_timeout` -> background work is cancelled -> exit 0, returned
by `run` rather than dying by the signal. A second signal skips the drain (a third forces exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from hc import __version__, exits, state
from hc.config import Settings, redact_url
from hc.health import Health, LoopLag, MemoryLimit
from hc.server import ASGIApp, Server, bind, bind_unix, make_server

log = logging.getLogger("hc.lifecycle")

Task = Callable[[], Coroutine[Any, Any, None]]


class RedactingFormatter(logging.Formatter):
    """Log lines with URL passwords hidden, whatever code produced them."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


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
    snapshot_path = state.path_for(settings.state_dir, settings.port, settings.uds)
    state.prepare(snapshot_path)
    sockets = [bind(settings.host, settings.port, settings.uds,
                    reuse_port=settings.reuse_port)]
    private = ""  # the probe's own way in while other processes share the port
    if settings.reuse_port and not settings.uds:
        private = state.socket_for(settings.state_dir, settings.port)
        sockets.append(bind_unix(private))
    server = make_server(app, access_log=settings.access_log,
                         shutdown_timeout=settings.shutdown_timeout)
    loop = asyncio.get_running_loop()
    publisher = _Publisher(health, snapshot_path, settings.state_interval)
    health.on_change(publisher.soon)
    lag = add_builtin_checks(health, settings)
    background: list[Coroutine[Any, Any, None]] = [
        health.run(), lag.monitor(), publisher.run(), *(t() for t in tasks)]
    if getattr(sys, "frozen", False) and settings.sweep_age:
        background.append(_sweep_forever(settings.sweep_age, os.path.dirname(sys.executable)))
    running = [asyncio.create_task(c) for c in background]
    _handle_signals(loop, server, health, settings.drain_delay)
    if os.getpid() == 1:
        loop.add_signal_handler(signal.SIGCHLD, reap_children)
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


SAME_SIGNAL_WINDOW = 0.5
"""Seconds within which a repeat of a signal counts as the same request: a terminal's Ctrl-C
(or a group kill) reaches hc directly *and* forwarded by any wrapper in its process group (an
init such as `docker run --init`'s tini, a supervisor)."""


def _handle_signals(loop: asyncio.AbstractEventLoop, server: Server, health: Health,
                    drain_delay: float) -> None:
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


class _Publisher:
    """Writes the state snapshot every `interval` seconds and soon after every change."""

    def __init__(self, health: Health, path: str, interval: float) -> None:
        self.health, self.path, self.interval = health, path, interval
        self._wake = asyncio.Event()

    def soon(self) -> None:
        self._wake.set()

    def write(self) -> None:
        snapshot = self.health.snapshot()
        snapshot["written"] = time.monotonic()
        snapshot["interval"] = self.interval
        try:
            state.write(self.path, snapshot)
        except state.StateError as exc:
            log.error("%s", exc)

    async def run(self) -> None:
        while True:
            self.write()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


def reap_children() -> None:
    """As PID 1, collect every exited child so orphans do not pile up as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def sweep_unpacked_dirs(min_age: float, cache: str) -> list[str]:
    """Remove the single-file binary's dirs beside `cache` (the running build's own cache dir,
    never touched) that nothing uses any more: `.hc-<uid>-*`, left by a run killed while it
    unpacked (or moving a damaged cache aside), and `hc-<uid>-<id>`, caches of other builds.

    A dir counts as in use while any process maps a file from it or runs from it, and dirs
    younger than `min_age` seconds are left alone. Returns the removed paths.
    """
    root = os.path.dirname(cache)
    uid = os.geteuid()
    prefixes = (f"hc-{uid}-", f".hc-{uid}-")
    try:
        names = [n for n in os.listdir(root) if n.startswith(prefixes)]
    except OSError:
        return []
    now = time.time()
    candidates = []
    for name in names:
        path = os.path.join(root, name)
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            if path != cache and info.st_uid == uid and now - info.st_mtime >= min_age:
                candidates.append(path)
    if not candidates:
        return []
    in_use = _paths_in_use()
    removed = []
    for path in candidates:
        if any(p == path or p.startswith(path + "/") for p in in_use):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d unused dirs of the binary from %s", len(removed), root)
    return removed


def _paths_in_use() -> set[str]:
    used: set[str] = set()
    for pid in _pids():
        with contextlib.suppress(OSError):
            used.add(os.readlink(f"/proc/{pid}/exe"))
        with contextlib.suppress(OSError):
            used.add(os.readlink(f"/proc/{pid}/cwd"))
        with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as maps:
            used.update(line.split(None, 5)[5].strip() for line in maps
                        if len(line.split(None, 5)) == 6)
    return used


def _pids() -> Iterable[str]:
    try:
        return [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise


async def _sweep_forever(min_age: float, cache: str) -> None:
    while True:
        await asyncio.to_thread(sweep_unpacked_dirs, min_age, cache)
        await asyncio.sleep(min(60.0, max(1.0, min_age / 2)))
