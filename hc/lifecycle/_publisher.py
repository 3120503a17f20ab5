"""The state snapshot the probe reads, written by the service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from hc import state
from hc.health import Health

log = logging.getLogger("hc.lifecycle")


class Publisher:
    """Writes the state snapshot every `interval` seconds and soon after every change."""

    def __init__(self, health: Health, path: str, interval: float) -> None:
        self.health, self.path, self.interval = health, path, interval
        self._wake = asyncio.Event()

    def soon(self) -> None:
        """Write at once (a status changed)."""
        self._wake.set()

    def write(self) -> None:
        """Write the snapshot now; a failure is logged, never raised."""
        try:
            state.write(self.path, self.health.snapshot(), time.monotonic(), self.interval)
        except state.StateError as exc:
            log.error("%s", exc)

    async def run(self) -> None:
        """Write until cancelled."""
        while True:
            self.write()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
