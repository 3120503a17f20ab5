"""Duties of a service that runs as PID 1 (as it does in its image): reaping orphans."""

from __future__ import annotations

import asyncio
import os
import signal


def reap_orphans_as_pid1(loop: asyncio.AbstractEventLoop) -> None:
    """When this process is PID 1, reap every child that exits (orphans are re-parented to it)."""
    if os.getpid() == 1:
        loop.add_signal_handler(signal.SIGCHLD, reap_children)


def reap_children() -> None:
    """As PID 1, collect every exited child so orphans do not pile up as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
