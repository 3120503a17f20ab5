"""The registry: checks run in the background, endpoints read cached results.

An endpoint's cost therefore does not grow with the number or the slowness of checks, and a check
that raises or hangs becomes a failed result, never a crashed or blocked server.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from hc.endpoints import ENDPOINTS, TAGS
from hc.health._model import CHECK_OUTPUT_LIMIT, Line, Pending, Report, Result, Status

if TYPE_CHECKING:
    from hc.state import BeatState, CheckState, HealthState

CheckReturn: TypeAlias = Result | Status | bool | Pending | None
CheckFn: TypeAlias = Callable[[], CheckReturn | Awaitable[CheckReturn]]

log = logging.getLogger("hc.health")



class Heartbeat:
    """A loop or thread says it is alive with `beat()`; stale after `max_age` seconds."""

    def __init__(self, name: str, max_age: float) -> None:
        self.name = name
        self.max_age = max_age
        self.last = time.monotonic()

    def beat(self) -> None:
        """Record that the loop made progress (cheap and thread-safe)."""
        self.last = time.monotonic()

    @property
    def age(self) -> float:
        return time.monotonic() - self.last

    def check(self) -> Result:
        age = self.age
        if age > self.max_age:
            return Result(Status.FAIL, f"last beat {age:.1f}s ago (max {self.max_age:g}s)",
                          round(age, 3), "s")
        return Result(Status.PASS, observed=round(age, 3), unit="s")


@dataclass
class _Check:
    name: str
    fn: CheckFn
    tags: frozenset[str]
    interval: float
    timeout: float
    threaded: bool
    kind: str
    log_failures: bool
    result: Result = field(default_factory=lambda: Result(Status.PASS, "pending"))
    time: float | None = None
    wall: float | None = None
    busy: asyncio.Future[Any] | None = None
    busy_since: float = 0.0


def _as_result(value: object) -> Result | None:
    """The Result a check's return value means; None while the check is pending."""
    if isinstance(value, Pending):
        return None
    if isinstance(value, Result):
        return value
    if isinstance(value, Status):
        return Result(value)
    if value is None or value is True:
        return Result(Status.PASS)
    if value is False:
        return Result(Status.FAIL)
    raise TypeError(f"a check returned {type(value).__name__}; expected Result, Status or bool")


class Health:
    """Registry of checks and heartbeats, with their cached results.

    >>> health = Health()
    >>> @health.check("db", tags=("ready",))
    ... async def db() -> bool: return True
    >>> worker = health.heartbeat("worker", max_age=10)   # then worker.beat() in its loop
    """

    def __init__(self, *, interval: float = 2.0, timeout: float = 1.0) -> None:
        self.interval = interval
        self.timeout = timeout
        self.draining = False
        self.started_at = time.time()
        self._checks: dict[str, _Check] = {}
        self._heartbeats: dict[str, Heartbeat] = {}
        self._listeners: list[Callable[[], None]] = []

    # -- registering -------------------------------------------------------------------------
    def add(self, name: str, fn: CheckFn, *, tags: Iterable[str] = ("live", "ready"),
            interval: float | None = None, timeout: float | None = None,
            threaded: bool = True, kind: str = "", log_failures: bool = True) -> None:
        """Register `fn` as check `name`. A plain function runs in a thread (it may block)
        unless `threaded=False`; a coroutine function runs on the event loop. The kit logs
        each change to failing unless `log_failures=False` (the check's owner logs it)."""
        tag_set = frozenset(tags)
        unknown = tag_set - set(TAGS)
        if unknown or not tag_set:
            raise ValueError(f"check {name!r}: tags must be among {', '.join(TAGS)}")
        if name in self._checks:
            raise ValueError(f"check {name!r} is already registered")
        if not name or any(c in name for c in "/?# \n"):
            raise ValueError(f"check name {name!r} must be non-empty without / ? # or spaces")
        self._checks[name] = _Check(
            name, fn, tag_set, interval or self.interval, timeout or self.timeout,
            threaded and not inspect.iscoroutinefunction(fn), kind, log_failures)

    def check(self, name: str | None = None, **options: Any) -> Callable[[CheckFn], CheckFn]:
        """Decorator form of `add`; the name defaults to the function's name."""
        def register(fn: CheckFn) -> CheckFn:
            self.add(name or fn.__name__, fn, **options)
            return fn
        return register

    def heartbeat(self, name: str, *, max_age: float,
                  tags: Iterable[str] = ("live", "ready")) -> Heartbeat:
        """A heartbeat for a loop or thread, checked as `heartbeat:<name>`."""
        beat = Heartbeat(name, max_age)
        self.add(f"heartbeat:{name}", beat.check, tags=tags, threaded=False, kind="heartbeat")
        self._heartbeats[name] = beat
        return beat

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the event loop) whenever a status or draining changes."""
        self._listeners.append(listener)

    def drain(self) -> None:
        """From now on readiness fails: the service is shutting down."""
        if not self.draining:
            self.draining = True
            self._changed()

    # -- running -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Run every check on its own schedule until cancelled."""
        tasks = [asyncio.create_task(self._loop(c), name=f"hc-check-{c.name}")
                 for c in self._checks.values()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, check: _Check) -> None:
        while True:
            await self.run_check(check.name)
            await asyncio.sleep(check.interval)

    async def run_check(self, name: str) -> Result:
        """Run one check now, bounded by its timeout, and cache its result (a pending check
        keeps none: it returns the placeholder)."""
        check = self._checks[name]
        started = time.monotonic()
        result: Result | None
        if check.busy is not None and not check.busy.done():
            result = Result(Status.FAIL, f"still running after {started - check.busy_since:.1f}s")
        else:
            result = await self._invoke(check)
        if result is None:
            return check.result
        self._store(check, result)
        return result

    async def _invoke(self, check: _Check) -> Result | None:
        try:
            if check.threaded:
                check.busy = _in_thread(check.fn, check.name)
                check.busy_since = time.monotonic()
                value = await asyncio.wait_for(asyncio.shield(check.busy), check.timeout)
            else:
                value = check.fn()
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, check.timeout)
            return _as_result(value)
        except TimeoutError:
            return Result(Status.FAIL, f"timed out after {check.timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The message may hold secrets (a DSN, a token): log it, show only the type.
            output = f"raised {type(exc).__name__}"
            # Once per streak, not on every run: a broken dependency must not flood the log.
            level = logging.DEBUG if check.result.output == output else logging.WARNING
            log.log(level, "check %s raised %s: %s", check.name, type(exc).__name__, exc,
                    extra={"check": check.name})
            return Result(Status.FAIL, output)

    def _store(self, check: _Check, result: Result) -> None:
        changed = check.time is None or result.status is not check.result.status
        check.result, check.time, check.wall = result, time.monotonic(), time.time()
        if changed:
            if not result.status.ok and check.log_failures:
                log.warning("check %s failed: %s", check.name, result.output or "no output",
                            extra={"check": check.name, "status": result.status.value,
                                   "reason": result.output})
            self._changed()

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # -- reading -----------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """True once every check has a result (the first round is done)."""
        return all(c.time is not None for c in self._checks.values())

    def names(self, endpoint: str = "healthz") -> list[str]:
        tag = ENDPOINTS[endpoint]
        return [c.name for c in self._checks.values() if tag is None or tag in c.tags]

    def report(self, endpoint: str = "healthz", *, exclude: Iterable[str] = (),
               only: str | None = None) -> Report:
        """The cached health behind `/<endpoint>`; `only` narrows it to one check."""
        tag = ENDPOINTS[endpoint]
        skip = set(exclude)
        lines = [
            Line(c.name, c.result, c.time, c.wall, c.kind)
            for c in self._checks.values()
            if (tag is None or tag in c.tags) and c.name not in skip
            and (only is None or c.name == only)
        ]
        if only is None and tag != "live":
            if "started" not in skip:
                lines.insert(0, self._started_line())
            if tag in (None, "ready") and "draining" not in skip:
                lines.insert(0, self._draining_line())
        status = Status.worst([x.result.status for x in lines if not x.pending])
        return Report(endpoint, status, lines)

    def _started_line(self) -> Line:
        now = time.monotonic()
        if self.started:
            return Line("started", Result(Status.PASS), now, time.time())
        return Line("started", Result(Status.FAIL, "first round of checks not done"), now,
                    time.time())

    def _draining_line(self) -> Line:
        now = time.monotonic()
        if self.draining:
            return Line("draining", Result(Status.FAIL, "shutting down"), now, time.time())
        return Line("draining", Result(Status.PASS), now, time.time())

    def snapshot(self) -> HealthState:
        """Plain data for the state file (hc.state's schema): no outputs of exceptions, no
        secrets."""
        checks: dict[str, CheckState] = {
            c.name: {"status": c.result.status.value, "tags": sorted(c.tags), "time": c.time,
                     "output": c.result.output[:CHECK_OUTPUT_LIMIT],
                     "pending": c.time is None}
            for c in self._checks.values()
        }
        heartbeats: dict[str, BeatState] = {h.name: {"last": h.last, "max_age": h.max_age}
                                            for h in self._heartbeats.values()}
        return {
            "pid": os.getpid(),
            "started": self.started_at,
            "first_round_done": self.started,
            "draining": self.draining,
            "status": self.report("healthz").status.value,
            "checks": checks,
            "heartbeats": heartbeats,
        }


def _in_thread(fn: CheckFn, name: str) -> asyncio.Future[Any]:
    """Run a blocking check in a daemon thread: a hung check must not hold up process exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: object, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        value: object = None
        error: BaseException | None = None
        try:
            value = fn()
        except BaseException as exc:  # handed to the awaiting task, which logs it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while we ran
            loop.call_soon_threadsafe(settle, value, error)

    # A late result of a timed-out run is not awaited by anyone: consume it quietly.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    threading.Thread(target=work, name=f"hc-check-{name}", daemon=True).start()
    return future
