"""The scheduler: runs each target's check on its own interval and keeps what it found.

One loop keeps a heap of due times and starts each check as its own task, bounded by the
target's timeout and by a semaphore (`max_concurrency`): a slow or hanging target holds one slot
for at most its timeout and never delays the loop. A target whose previous check is still
running skips that round rather than piling up checks. Every target's first check is due at
start (readiness waits for that first round: delaying it would delay readiness by up to `jitter`
of the longest interval); each next due time is the previous one plus the interval, moved at
random by up to `jitter` of it, so targets added together do not stay in lockstep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hc.health import Status
from hc.watcher._model import Details, Observation, Prober, Target, failed

log = logging.getLogger("hc.watcher")

BEAT_PERIOD = 0.5
"""The loop wakes (and heartbeats) at least this often, even with nothing due."""


@dataclass
class TargetState:
    """What is known of one target; read by the health checks, /targets and /metrics."""

    target: Target
    last: Observation | None = None
    checked_at: float | None = None
    """Wall-clock time of the last result."""
    consecutive_failures: int = 0
    failures: int = 0
    """Failed checks since the watcher started."""
    details: Details | None = None
    """What the prober knew after the last check, for kinds that report more (e.g. a Redis
    node's role)."""
    running: bool = False


OnResult = Callable[[TargetState, float, float], Awaitable[None]]
"""Called after each check with (state, duration, lateness) in seconds."""


class Scheduler:
    """Runs the probers of `jobs` until cancelled."""

    def __init__(self, jobs: Sequence[tuple[TargetState, Prober]], *, max_concurrency: int,
                 jitter: float, on_result: OnResult, beat: Callable[[], None]) -> None:
        self.jobs = list(jobs)
        self.jitter = jitter
        self._on_result, self._beat = on_result, beat
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random()  # noqa: S311 (spreads load; nothing secret)

    async def run(self) -> None:
        now = time.monotonic()
        heap = [(now, index) for index in range(len(self.jobs))]
        try:
            while True:
                self._beat()
                wait = heap[0][0] - time.monotonic() if heap else BEAT_PERIOD
                if wait > 0:
                    await asyncio.sleep(min(wait, BEAT_PERIOD))
                    continue
                due, index = heap[0]
                heapq.heapreplace(heap, (self._next(due, index), index))
                self._start(index, due)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _next(self, due: float, index: int) -> float:
        interval = self.jobs[index][0].target.interval
        step = interval * (1 + self._random.uniform(-self.jitter, self.jitter))
        return max(due + step, time.monotonic())  # after a stall: no burst of catch-up rounds

    def _start(self, index: int, due: float) -> None:
        state, prober = self.jobs[index]
        if state.running:
            log.debug("target %s: previous check still running, round skipped",
                      state.target.name, extra=_fields(state.target))
            return
        state.running = True
        task = asyncio.create_task(self._check(state, prober, due),
                                   name=f"hc-target-{state.target.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, state: TargetState, prober: Prober, due: float) -> None:
        try:
            async with self._slots:
                started = time.monotonic()
                observation = await _observe(state.target, prober)
                duration = time.monotonic() - started
            self._record(state, observation)
            state.details = prober.details()
            await self._on_result(state, duration, started - due)
        finally:
            state.running = False

    def _record(self, state: TargetState, observation: Observation) -> None:
        target = state.target
        observation = dataclasses.replace(observation, output=target.scrub(observation.output))
        previous = state.last
        state.last, state.checked_at = observation, time.time()
        failing = observation.status is Status.FAIL
        state.consecutive_failures = state.consecutive_failures + 1 if failing else 0
        state.failures += failing
        if previous is None and observation.status is Status.PASS:
            log.debug("target %s (%s) passes", target.name, target.shown,
                      extra=_fields(target, observation))
        elif previous is None or previous.status is not observation.status:
            _log_change(target, observation)


async def _observe(target: Target, prober: Prober) -> Observation:
    """One check bounded by the target's timeout; never raises."""
    try:
        async with asyncio.timeout(target.timeout):
            return await prober.check()
    except TimeoutError:
        return Observation(Status.FAIL, f"no answer within {target.timeout:g}s")
    except Exception as exc:  # a prober's bug must not stop the watcher
        log.error("target %s: check raised %s", target.name, type(exc).__name__,
                  extra=_fields(target))
        return failed(exc)


def _fields(target: Target, observation: Observation | None = None) -> dict[str, str]:
    """The fields of a log line about `target` (see hc.lifecycle's JSON log format)."""
    if observation is None:
        return {"target": target.name}
    return {"target": target.name, "status": observation.status.value,
            "reason": observation.output}


def _log_change(target: Target, observation: Observation) -> None:
    status = observation.status
    if status is Status.PASS:
        log.info("target %s (%s) passes again", target.name, target.shown,
                 extra=_fields(target, observation))
        return
    weight = "critical" if target.critical else "non-critical"
    word = "fails" if status is Status.FAIL else "warns"
    log.warning("target %s (%s, %s) %s: %s", target.name, target.shown, weight, word,
                observation.output, extra=_fields(target, observation))
