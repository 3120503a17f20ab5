"""The scheduler: intervals, hanging targets, bounded concurrency, and what it tells the kit."""

from __future__ import annotations

import asyncio
import time

from hc.health import Health, Status
from hc.watcher import Watcher
from tests.conftest import free_port
from tests.watcher_fixtures import metric, until, watch


def checks(watcher: Watcher, name: str, kind: str = "tcp") -> float:
    return metric(watcher, "hc_target_check_seconds_count", target=name, kind=kind) or 0


def test_hanging_targets_never_delay_the_others(silent_port: int) -> None:
    refused = free_port()
    hanging = [f"http://127.0.0.1:{silent_port}/{n},name=hang{n},interval=0.2,timeout=5"
               for n in range(3)]

    async def scenario(watcher: Watcher, health: Health) -> None:
        await asyncio.sleep(2.0)
        assert checks(watcher, "quick") >= 8  # every 0.2 s, while three checks hang
        assert checks(watcher, "hang0", "http") == 0

    watch([*hanging, f"tcp://127.0.0.1:{refused},name=quick,interval=0.2"], scenario,
          jitter=0, max_concurrency=4)


def test_at_most_max_concurrency_checks_run_at_once(silent_port: int) -> None:
    hanging = [f"http://127.0.0.1:{silent_port}/{n},name=hang{n},interval=0.1,timeout=0.5"
               for n in range(4)]

    async def scenario(watcher: Watcher, health: Health) -> None:
        await asyncio.sleep(1.2)
        finished = sum(checks(watcher, f"hang{n}", "http") for n in range(4))
        assert 2 <= finished <= 4  # two slots, each held 0.5 s per check: at most 2 x 2 done

    watch(hanging, scenario, jitter=0, max_concurrency=2)


def test_checks_follow_each_targets_interval() -> None:
    port = free_port()

    async def scenario(watcher: Watcher, health: Health) -> None:
        started = time.monotonic()
        await until(lambda: checks(watcher, "slow") >= 3, "three checks of slow")
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed <= 1.6  # at 0, 0.5 and 1.0 s
        assert 9 <= checks(watcher, "fast") <= 13  # every 0.1 s

    watch([f"tcp://127.0.0.1:{port},name=slow,interval=0.5",
           f"tcp://127.0.0.1:{port},name=fast,interval=0.1"], scenario, jitter=0)


def test_readiness_waits_for_the_first_round(silent_port: int) -> None:
    async def scenario(watcher: Watcher, health: Health) -> None:
        kit = asyncio.create_task(health.run())
        await asyncio.sleep(0.3)
        report = health.report("readyz")
        assert report.status is Status.FAIL  # the hanging target has no result yet
        lines = {line.name: line.result for line in report.lines}
        assert lines["started"].output.startswith("first round of checks not done")
        await until(lambda: health.report("readyz").status is Status.WARN, "readiness")
        kit.cancel()

    watch([f"http://127.0.0.1:{silent_port}/,name=slow,timeout=1",
           f"tcp://127.0.0.1:{silent_port},name=quick"], scenario, jitter=0)


def test_a_failing_target_fails_readiness_only_when_critical() -> None:
    port = free_port()

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: all(s.last is not None for s in watcher.states), "both checked")
        lines = {line.name: line.result for line in health.report("readyz").lines}
        assert lines["target:must"].status is Status.FAIL
        assert lines["target:nice"].status is Status.WARN
        assert lines["target:nice"].output == "connection refused"
        assert health.report("livez").status is Status.PASS
        assert "heartbeat:scheduler" in health.names("livez")

    watch([f"tcp://127.0.0.1:{port},name=must,critical", f"tcp://127.0.0.1:{port},name=nice"],
          scenario)
