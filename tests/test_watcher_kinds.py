"""What every kind of target does alike, parametrised over the table of kinds (`KINDS`): each
kind has a real server here, and a kind added to the table without one fails the first test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from hc.health import Health, Status
from hc.watcher import Watcher
from hc.watcher._targets import KINDS
from tests.conftest import free_port
from tests.watcher_fixtures import (
    MASTER,
    WATCH_FAST,
    HttpFactory,
    RedisFactory,
    SentinelFactory,
    Server,
    families_of,
    metric,
    output,
    status,
    until,
    watch,
)


@dataclass
class Case:
    """A target of one kind whose server is not up yet, and how to start that server."""

    url: str
    start: Callable[[], Server]


Cases = Callable[[int], Case]


@pytest.fixture
def cases(redis_server: RedisFactory, http_server: HttpFactory,
          sentinel_server: SentinelFactory) -> dict[str, Cases]:
    """kind -> (port -> Case): the real server each kind is checked against."""
    return {
        "redis": lambda port: Case(f"redis://127.0.0.1:{port}",
                                   lambda: redis_server(port=port)),
        "sentinel": lambda port: Case(f"sentinel://127.0.0.1:{port}/{MASTER}",
                                      lambda: sentinel_server(redis_server(), port=port)),
        "http": lambda port: Case(f"http://127.0.0.1:{port}/", lambda: http_server(port)),
        "tcp": lambda port: Case(f"tcp://127.0.0.1:{port}", lambda: http_server(port)),
    }


def test_every_kind_in_the_table_has_a_server_here(cases: dict[str, Cases]) -> None:
    assert set(cases) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_fails_as_refused_then_passes_once_its_server_is_up(
        kind: str, cases: dict[str, Cases]) -> None:
    case = cases[kind](free_port())

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "it") is Status.FAIL, "a failure")
        assert "connection refused" in output(watcher, "it")
        case.start()
        await until(lambda: status(watcher, "it") is Status.PASS, "the target passing")

    watch([f"{case.url},name=it,interval=0.2"], scenario, **WATCH_FAST)


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"tcp"}))  # a stopped process's kernel
def test_every_talking_kind_fails_at_its_timeout_while_the_server_hangs(   # still accepts
        kind: str, cases: dict[str, Cases]) -> None:
    case = cases[kind](free_port())
    server = case.start()

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "it") is Status.PASS, "a first pass")
        server.pause()
        await until(lambda: status(watcher, "it") is Status.FAIL, "a failure")
        assert "no answer within 0." in output(watcher, "it")
        server.resume()
        await until(lambda: status(watcher, "it") is Status.PASS, "the target passing")

    watch([f"{case.url},name=it,interval=0.2,timeout=0.3"], scenario, **WATCH_FAST)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_publishes_the_series_it_declares(kind: str,
                                                     cases: dict[str, Cases]) -> None:
    case = cases[kind](free_port())
    case.start()

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "it") is Status.PASS, "a pass")
        assert metric(watcher, "hc_target_up", target="it", kind=kind) == 1
        assert {s.name for s in KINDS[kind].series} <= families_of(watcher)

    watch([f"{case.url},name=it"], scenario, **WATCH_FAST)
