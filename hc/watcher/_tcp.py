"""tcp:// targets: can a connection be opened, and how long does it take."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

from hc.health import Status
from hc.watcher._model import Observation, failed
from hc.watcher._targets import Target


class TcpProber:
    """Opens and closes a connection per check; the connect time is the latency."""

    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.url)
        self.host, self.port = parts.hostname or "", parts.port or 0

    async def check(self) -> Observation:
        started = time.monotonic()
        try:
            _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            return failed(exc)
        latency = time.monotonic() - started
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return Observation(Status.PASS, f"connected in {latency * 1000:.1f} ms", latency)

    async def close(self) -> None:
        """Nothing to close: no connection outlives a check."""
