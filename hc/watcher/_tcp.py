"""tcp:// targets: can a connection be opened, and how long does it take."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import SplitResult, urlsplit

from hc.health import Status
from hc.watcher._kind import Kind, Shared, host_problem
from hc.watcher._model import Observation, Prober, Target, failed


class TcpProber(Prober):
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


def _url_problem(parts: SplitResult) -> str:
    problem = host_problem(parts)
    if not problem and parts.port is None:
        return "tcp:// needs a port, as in tcp://host:port"
    return problem


def _prober(target: Target, shared: Shared) -> Prober:
    return TcpProber(target)


TCP = Kind("tcp", ("tcp",), _prober, url_problem=_url_problem)
