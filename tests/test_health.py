"""The health kit and its ASGI endpoints, in process, on a real asyncio loop."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

import pytest

from hc.health import JSON_TYPE, PENDING, Health, Pending, Result, Status
from hc.server import HealthApp
from tests.conftest import Response

T = TypeVar("T")
SECRET = "hunter2-in-a-dsn"  # noqa: S105 (a fake secret that must not leak)
ANSWER_BOUND = 1.0
"""Seconds an endpoint may take while checks hang (it reads cached results: far less)."""


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def request(app: HealthApp, target: str, *, method: str = "GET",
                  headers: dict[str, str] | None = None, root_path: str = "") -> Response:
    """One request through the ASGI interface, as uvicorn (or a mounting app) would make it."""
    path, _, query = target.partition("?")
    scope = {"type": "http", "method": method, "path": path, "root_path": root_path,
             "query_string": query.encode(),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    head = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return Response(sent[0]["status"], head, b"".join(m.get("body", b"") for m in sent[1:]))


async def run_all(health: Health) -> None:
    """One round of every check (what `health.run()` does first, without the schedule)."""
    for name in health.names():
        await health.run_check(name)


def kit(**checks: Callable[[], Any]) -> Health:
    health = Health(timeout=0.2)
    for name, fn in checks.items():
        health.add(name, fn)
    return health


async def served(health: Health, target: str, **kwargs: Any) -> Response:
    await run_all(health)
    return await request(HealthApp(health), target, **kwargs)


def passing() -> Result:
    return Result(Status.PASS)


def failing() -> Result:
    return Result(Status.FAIL, "the dependency said no")


def warning() -> Result:
    return Result(Status.WARN, "slow")


def raising() -> Result:
    raise ConnectionError(f"cannot reach postgres://app:{SECRET}@db/app")


# -- checks ----------------------------------------------------------------------------------
def test_check_that_raises_fails_with_the_exception_type_only() -> None:
    health = kit(db=raising)

    result = run(health.run_check("db"))

    assert result == Result(Status.FAIL, "raised ConnectionError")


def test_message_of_a_raising_check_goes_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    health = kit(db=raising)

    with caplog.at_level(logging.WARNING, logger="hc.health"):
        run(health.run_check("db"))

    assert SECRET in caplog.text


def test_message_of_a_raising_check_is_not_served() -> None:
    health = kit(db=raising)

    text = run(served(health, "/healthz?verbose")).text
    as_json = run(served(health, "/healthz?format=json")).text

    assert "[-]db failed: raised ConnectionError" in text
    assert SECRET not in text
    assert SECRET not in as_json


def test_state_snapshot_holds_no_exception_text() -> None:
    health = kit(db=raising)
    run(run_all(health))

    snapshot = json.dumps(health.snapshot())

    assert SECRET not in snapshot
    assert "raised ConnectionError" in snapshot


def test_hanging_async_check_fails_as_timed_out() -> None:
    health = Health()

    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    health.add("slow", hangs, timeout=0.1)

    result = run(health.run_check("slow"))

    assert result.status is Status.FAIL
    assert result.output == "timed out after 0.1s"


def test_hanging_sync_check_fails_as_timed_out() -> None:
    health = Health()
    release = threading.Event()
    health.add("slow", release.wait, timeout=0.1)

    try:
        result = run(health.run_check("slow"))
    finally:
        release.set()

    assert result.status is Status.FAIL
    assert result.output == "timed out after 0.1s"


def test_sync_check_still_hanging_at_its_next_run_is_not_started_twice() -> None:
    health = Health()
    release = threading.Event()
    calls: list[int] = []

    def hangs() -> bool:
        calls.append(1)
        return release.wait()

    health.add("slow", hangs, timeout=0.1)

    async def twice() -> Result:
        await health.run_check("slow")
        return await health.run_check("slow")

    try:
        second = run(twice())
    finally:
        release.set()

    assert second.output.startswith("still running after")
    assert len(calls) == 1


def test_endpoint_answers_at_once_while_many_checks_hang() -> None:
    health = Health(timeout=30)
    release = threading.Event()

    async def hangs_async() -> bool:
        await asyncio.Event().wait()
        return True

    for index in range(25):
        health.add(f"async-{index}", hangs_async)
        health.add(f"sync-{index}", release.wait)

    async def scenario() -> Response:
        checks = asyncio.create_task(health.run())
        await asyncio.sleep(0.1)  # every check has started and hangs
        try:
            return await asyncio.wait_for(request(HealthApp(health), "/livez"), ANSWER_BOUND)
        finally:
            checks.cancel()

    try:
        response = run(scenario())
    finally:
        release.set()

    assert response.status == 200  # pending checks do not fail liveness


def test_check_returning_a_wrong_type_fails() -> None:
    health = kit(odd=lambda: "yes")

    result = run(health.run_check("odd"))

    assert result == Result(Status.FAIL, "raised TypeError")


@pytest.mark.parametrize(("value", "status"), [
    (True, Status.PASS), (None, Status.PASS), (False, Status.FAIL), (Status.WARN, Status.WARN),
])
def test_check_may_return_a_bool_none_or_status(value: object, status: Status) -> None:
    health = kit(plain=lambda: value)

    assert run(health.run_check("plain")).status is status


def test_async_check_runs_on_the_event_loop() -> None:
    health = Health()

    @health.check(tags=("ready",))
    async def cache() -> Status:
        return Status.WARN

    assert run(health.run_check("cache")).status is Status.WARN


def test_fresh_heartbeat_passes() -> None:
    health = Health()
    health.heartbeat("worker", max_age=60)

    assert run(health.run_check("heartbeat:worker")).status is Status.PASS


def test_stale_heartbeat_fails() -> None:
    health = Health()
    beat = health.heartbeat("worker", max_age=0.1)
    beat.last -= 1.0  # the last beat was a second ago

    result = run(health.run_check("heartbeat:worker"))

    assert result.status is Status.FAIL
    assert result.output.startswith("last beat 1.")


@pytest.mark.parametrize("name", ["", "a/b", "a b", "a?b", "a#b"])
def test_check_names_that_break_urls_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="check name"):
        Health().add(name, passing)


def test_unknown_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="tags must be among"):
        Health().add("x", passing, tags=("alive",))


def test_check_registered_twice_is_refused() -> None:
    health = kit(x=passing)

    with pytest.raises(ValueError, match="already registered"):
        health.add("x", passing)


# -- endpoints -------------------------------------------------------------------------------
def test_passing_checks_answer_200_ok() -> None:
    response = run(served(kit(a=passing), "/readyz"))

    assert (response.status, response.text) == (200, "ok\n")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"


def test_warn_answers_200() -> None:
    response = run(served(kit(a=warning), "/readyz?verbose"))

    assert response.status == 200
    assert "[+]a warn: slow" in response.text


def test_fail_answers_503() -> None:
    response = run(served(kit(a=failing), "/readyz"))

    assert response.status == 503
    assert "[-]a failed: the dependency said no" in response.text


def test_verbose_lists_every_check() -> None:
    response = run(served(kit(a=passing, b=failing), "/healthz?verbose"))

    assert response.text.splitlines() == [
        "[+]draining ok", "[+]started ok", "[+]a ok", "[-]b failed: the dependency said no",
        "healthz check failed"]


def test_exclude_is_repeatable() -> None:
    health = kit(a=failing, b=failing, c=passing)

    one = run(served(health, "/readyz?exclude=a"))
    both = run(served(health, "/readyz?exclude=a&exclude=b"))

    assert one.status == 503
    assert both.status == 200


def test_single_check_endpoint_reports_only_that_check() -> None:
    health = kit(a=failing, c=passing)

    assert run(served(health, "/livez/c")).status == 200
    assert run(served(health, "/livez/a")).status == 503


def test_unknown_single_check_is_404() -> None:
    response = run(served(kit(a=passing), "/livez/nope"))

    assert response.status == 404


def test_single_check_of_another_endpoint_is_404() -> None:
    health = Health()
    health.add("boot", passing, tags=("startup",))

    assert run(served(health, "/livez/boot")).status == 404
    assert run(served(health, "/startupz/boot")).status == 200


def test_json_by_accept_header() -> None:
    response = run(served(kit(a=warning), "/readyz",
                          headers={"Accept": "application/health+json"}))

    assert response.headers["content-type"] == JSON_TYPE
    body = json.loads(response.body)
    assert body["status"] == "warn"
    assert body["checks"]["a"][0] == {"status": "warn", "output": "slow",
                                      "time": body["checks"]["a"][0]["time"]}


def test_json_by_format_query() -> None:
    response = run(served(kit(a=failing), "/readyz?format=json"))

    assert response.status == 503
    assert response.headers["content-type"] == JSON_TYPE
    assert json.loads(response.body)["status"] == "fail"


def test_head_answers_like_get_without_a_body() -> None:
    health = kit(a=failing)

    get = run(served(health, "/readyz"))
    head = run(served(health, "/readyz", method="HEAD"))

    assert head.status == get.status == 503
    assert head.body == b""
    assert head.headers["content-length"] == str(len(get.body))


def test_other_methods_are_405() -> None:
    assert run(served(kit(a=passing), "/readyz", method="POST")).status == 405


def test_unknown_path_is_404() -> None:
    assert run(served(kit(a=passing), "/nothing")).status == 404


def test_readiness_fails_until_the_first_round_is_done() -> None:
    response = run(request(HealthApp(kit(a=passing)), "/readyz?verbose"))

    assert response.status == 503
    assert "[-]started failed: first round of checks not done" in response.text


def test_a_pending_check_holds_readiness_until_it_reports() -> None:
    answer: list[Result | Pending] = [PENDING]
    health = kit(a=passing, slow=lambda: answer[0])

    waiting = run(served(health, "/readyz?verbose"))
    answer[0] = Result(Status.PASS)
    ready = run(served(health, "/readyz?verbose"))

    assert waiting.status == 503
    assert "[-]started failed: first round of checks not done" in waiting.text
    assert "[+]slow ok (pending)" in waiting.text
    assert run(served(health, "/livez")).status == 200
    assert ready.status == 200


def test_draining_fails_readiness_but_not_liveness() -> None:
    health = kit(a=passing)
    health.drain()

    assert run(served(health, "/readyz")).status == 503
    assert run(served(health, "/livez")).status == 200


def test_draining_tells_listeners() -> None:
    health = Health()
    told: list[bool] = []
    health.on_change(lambda: told.append(health.draining))

    health.drain()
    health.drain()

    assert told == [True]


def test_app_mounted_below_a_prefix_serves_its_endpoints() -> None:
    health = kit(a=failing)
    run(run_all(health))

    response = run(request(HealthApp(health), "/health/readyz", root_path="/health"))

    assert response.status == 503


def test_routes_serve_other_paths() -> None:
    async def metrics(scope: Any, receive: Callable[[], Awaitable[Any]],
                      send: Callable[[Any], Awaitable[None]]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"up 1\n"})

    app = HealthApp(kit(a=passing), routes={"/metrics": metrics})

    assert run(request(app, "/metrics")).body == b"up 1\n"
