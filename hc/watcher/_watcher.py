"""The watcher: targets, probers and scheduler joined to the health kit and the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from hc.config import ConfigError, Settings
from hc.health import PENDING, CheckFn, Health, Pending, Result, Status
from hc.server import PLAIN_JSON, ASGIApp, Receive, Scope, Send, allows, header, respond
from hc.watcher._kind import Shared
from hc.watcher._metrics import Metrics
from hc.watcher._model import Prober, Target, Unusable
from hc.watcher._scheduler import BEAT_PERIOD, Scheduler, TargetState
from hc.watcher._targets import KINDS, parse_targets

log = logging.getLogger("hc.watcher")

CLOSE_TIMEOUT = 2.0
"""Seconds closing the connections may take at shutdown."""


class Watcher:
    """Watches `targets` and reports into `health`.

    Registers, on construction, a readiness check per target (`target:<name>`; pending until
    its first result, so readiness waits for the first round; a failing critical target fails,
    a failing non-critical one warns) and the heartbeat of the scheduler loop. The checks only
    read what the scheduler found: the kit never probes a target itself. Run `run()` as a task;
    it closes every connection when cancelled.
    """

    def __init__(self, health: Health, targets: Sequence[Target], *, max_concurrency: int = 32,
                 jitter: float = 0.1, heartbeat_max_age: float = 10.0) -> None:
        self.health = health
        self.states = [TargetState(t) for t in targets]
        self._shared = Shared()
        probers = [self._prober(t) for t in targets]
        in_use = [KINDS[t.kind] for t in targets if t.kind]
        self.metrics = Metrics(self.states, [s for kind in in_use for s in kind.series])
        for state in self.states:
            health.add(check_name(state.target), _target_check(state), tags=("ready",),
                       threaded=False, kind=state.target.kind or "target",
                       log_failures=False)  # the scheduler logs each change, with the URL
        beat = health.heartbeat("scheduler", max_age=heartbeat_max_age)
        self.scheduler = Scheduler(list(zip(self.states, probers, strict=True)),
                                   max_concurrency=max_concurrency, jitter=jitter,
                                   on_result=self._on_result, beat=beat.beat)

    @classmethod
    def from_settings(cls, health: Health, settings: Settings) -> Watcher:
        """The watcher of `hc serve`. Raises ConfigError for a malformed target, or a heartbeat
        max age its loop could not keep."""
        if settings.heartbeat_max_age < 2 * BEAT_PERIOD:
            raise ConfigError("heartbeat_max_age", settings.heartbeat_max_age,
                              settings.sources.get("heartbeat_max_age", "default"),
                              f"expected at least {2 * BEAT_PERIOD:g}: the watcher's loop beats "
                              f"every {BEAT_PERIOD:g} s")
        return cls(health, parse_targets(settings), max_concurrency=settings.max_concurrency,
                   jitter=settings.jitter, heartbeat_max_age=settings.heartbeat_max_age)

    def _prober(self, target: Target) -> Prober:
        if target.error:
            return Unusable(target.error)
        return KINDS[target.kind].prober(target, self._shared)

    def routes(self) -> dict[str, ASGIApp]:
        """`/metrics` (Prometheus text) and `/targets` (JSON), for HealthApp(routes=...)."""
        return {"/metrics": self.metrics_app, "/targets": self.targets_app}

    async def run(self) -> None:
        """Check the targets until cancelled, then close their connections."""
        critical = sum(s.target.critical for s in self.states)
        log.info("watching %d targets (%d critical)", len(self.states), critical)
        try:
            await self.scheduler.run()
        finally:
            await self.close()

    async def close(self) -> None:
        """Close every connection; one that fails to close, or to a hung server that never
        reads what is still to be sent, does not keep the others open or the process up."""
        closing = [prober.close() for _, prober in self.scheduler.jobs]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(*closing, self._shared.close(), return_exceptions=True)

    async def _on_result(self, state: TargetState, duration: float, lateness: float) -> None:
        self.metrics.observe(state, duration, lateness)
        await self.health.run_check(check_name(state.target))

    # -- HTTP --------------------------------------------------------------------------------
    async def metrics_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/metrics: the Prometheus text (or OpenMetrics, by the Accept header)."""
        if await allows(scope, send):
            body, content_type = self.metrics.render(header(scope, b"accept"))
            await respond(scope, send, 200, body, content_type)

    async def targets_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/targets: every target's settings and last result as JSON."""
        if await allows(scope, send):
            body = json.dumps({"targets": [as_dict(s) for s in self.states]}, indent=1) + "\n"
            await respond(scope, send, 200, body.encode(), PLAIN_JSON)


def check_name(target: Target) -> str:
    """The health check of a target: `target:<name>`."""
    return f"target:{target.name}"


def _target_check(state: TargetState) -> CheckFn:
    def check() -> Result | Pending:
        last = state.last
        if last is None:
            return PENDING
        status = last.status
        if status is Status.FAIL and not state.target.critical:
            status = Status.WARN
        latency = None if last.latency is None else round(last.latency, 4)
        return Result(status, last.output, latency, "s")
    return check


def as_dict(state: TargetState) -> dict[str, Any]:
    """A target as plain data for /targets: settings and last result, never a password."""
    target, last = state.target, state.last
    item: dict[str, Any] = {
        "name": target.name, "kind": target.kind or None, "url": target.shown,
        "critical": target.critical, "interval": target.interval, "timeout": target.timeout,
        "options": dict(target.options),
        "status": last.status.value if last else "pending",
        "output": last.output if last else "",
        "latency_seconds": last.latency if last else None,
        "consecutive_failures": state.consecutive_failures, "failures": state.failures,
        "checked_at": state.checked_at,
    }
    if state.details is not None:
        item[target.kind] = _scrubbed(state.details.as_dict(), target)
    return item


def _scrubbed(value: Any, target: Target) -> Any:
    """`value` with the target's passwords hidden in every string: details quote errors, as
    outputs do."""
    if isinstance(value, str):
        return target.scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item, target) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, target) for item in value]
    return value
