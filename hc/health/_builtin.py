"""Built-in checks: event-loop lag and resident memory (heartbeats live in the registry)."""

from __future__ import annotations

import asyncio
import collections
import os
import resource
import time

from hc.health._model import Result, Status


class LoopLag:
    """Measures how late the event loop wakes a sleeping task; run `monitor()` as a task."""

    def __init__(self, warn: float, fail: float, period: float = 0.25, window: int = 8) -> None:
        self.warn, self.fail, self.period = warn, fail, period
        self._samples: collections.deque[float] = collections.deque(maxlen=window)

    async def monitor(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            self._samples.append(max(0.0, time.monotonic() - before - self.period))

    @property
    def lag(self) -> float:
        """The worst lag seen over the last few periods (seconds)."""
        return max(self._samples, default=0.0)

    def check(self) -> Result:
        lag = self.lag
        observed = round(lag, 4)
        if self.fail and lag >= self.fail:
            return Result(Status.FAIL, f"event loop {lag:.3f}s late (fail at {self.fail:g}s)",
                          observed, "s")
        if self.warn and lag >= self.warn:
            return Result(Status.WARN, f"event loop {lag:.3f}s late (warn at {self.warn:g}s)",
                          observed, "s")
        return Result(Status.PASS, observed=observed, unit="s")


def rss_bytes() -> int:
    """Current resident set size: /proc/self/statm on Linux, the peak elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MemoryLimit:
    """Warns or fails when resident memory passes a limit (0 turns a limit off)."""

    def __init__(self, warn_bytes: int, fail_bytes: int) -> None:
        self.warn, self.fail = warn_bytes, fail_bytes

    def check(self) -> Result:
        used = rss_bytes()
        mib = round(used / 2**20, 1)
        if self.fail and used >= self.fail:
            return Result(Status.FAIL, f"rss {mib} MiB >= {self.fail / 2**20:g} MiB", mib, "MiB")
        if self.warn and used >= self.warn:
            return Result(Status.WARN, f"rss {mib} MiB >= {self.warn / 2**20:g} MiB", mib, "MiB")
        return Result(Status.PASS, observed=mib, unit="MiB")
