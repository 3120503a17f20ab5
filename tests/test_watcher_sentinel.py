"""sentinel:// targets against real redis-server and redis-server --sentinel processes: the
primary found through the sentinels, its replicas, quorum, splits, passwords and a failover
followed by a real `hc serve`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from hc.health import Health, Status
from hc.watcher import Watcher
from tests.conftest import ServeFactory, Service
from tests.watcher_fixtures import (
    MASTER,
    WATCH_FAST,
    RedisFactory,
    RedisServer,
    SentinelFactory,
    SentinelServer,
    metric,
    output,
    settle,
    status,
    until,
    wait_for,
    watch,
)

PASSWORD = "pw-Data-3c9a"  # noqa: S105 (the data nodes' password)


def pair(redis_server: RedisFactory) -> tuple[RedisServer, RedisServer]:
    """A primary and a replica linked to it."""
    primary = redis_server("--repl-diskless-sync-delay", "0")
    replica = redis_server("--replicaof", "127.0.0.1", str(primary.port))
    wait_for(lambda: replica.info("replication")["master_link_status"] == "up", "the link")
    return primary, replica


def url(sentinels: list[SentinelServer], master: str = MASTER) -> str:
    return "sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + f"/{master}"


def test_a_sentinel_target_reports_the_primary_its_replicas_and_the_sentinels(
        redis_server: RedisFactory, sentinel_server: SentinelFactory) -> None:
    primary, replica = pair(redis_server)
    sentinels = [sentinel_server(primary, quorum=2) for _ in range(3)]
    settle(sentinels, replicas=1)
    address, replica_address = f"127.0.0.1:{primary.port}", f"127.0.0.1:{replica.port}"

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "ha") is Status.PASS, "a pass")
        assert output(watcher, "ha").startswith(f"primary {address}, 1 replica(s), lag ")
        assert "3/3 sentinels; PING " in output(watcher, "ha")
        assert metric(watcher, "hc_redis_primary", target="ha", address=address) == 1
        assert metric(watcher, "hc_redis_sentinels", target="ha") == 3
        assert metric(watcher, "hc_redis_sentinels_up", target="ha") == 3
        assert metric(watcher, "hc_redis_sentinel_quorum_ok", target="ha") == 1
        assert metric(watcher, "hc_redis_sentinels_agree", target="ha") == 1
        assert metric(watcher, "hc_redis_primaries", target="ha") == 1
        assert metric(watcher, "hc_redis_connected_replicas", target="ha") == 1
        assert metric(watcher, "hc_redis_replica_up", target="ha", replica=replica_address) == 1
        assert metric(watcher, "hc_redis_replica_link_up", target="ha",
                      replica=replica_address) == 1
        assert metric(watcher, "hc_redis_replica_lag_bytes", target="ha",
                      replica=replica_address) is not None
        assert metric(watcher, "hc_redis_failovers_total", target="ha") == 0

    watch([f"{url(sentinels)},name=ha,interval=0.2"], scenario, **WATCH_FAST)


def test_a_lost_sentinel_quorum_fails_the_target_with_the_reason(
        redis_server: RedisFactory, sentinel_server: SentinelFactory) -> None:
    primary = redis_server()
    sentinels = [sentinel_server(primary, quorum=2) for _ in range(3)]
    settle(sentinels, replicas=0)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "ha") is Status.PASS, "a pass")
        sentinels[1].stop()
        sentinels[2].stop()
        await until(lambda: status(watcher, "ha") is Status.FAIL, "the quorum lost")
        assert output(watcher, "ha").startswith(
            "sentinel quorum lost: NOQUORUM 1 usable Sentinels. Not enough available Sentinels "
            "to reach the specified quorum for this master.")
        assert "; 1 of 3 sentinels answer (" in output(watcher, "ha")
        assert metric(watcher, "hc_redis_sentinel_quorum_ok", target="ha") == 0
        assert metric(watcher, "hc_redis_sentinels_up", target="ha") == 1

    watch([f"{url(sentinels)},name=ha,interval=0.2"], scenario, **WATCH_FAST)


def test_a_replica_promoted_behind_the_sentinels_back_is_a_second_primary(
        redis_server: RedisFactory, sentinel_server: SentinelFactory) -> None:
    primary, replica = pair(redis_server)
    sentinel = sentinel_server(primary)
    settle([sentinel], replicas=1)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "ha") is Status.PASS, "a pass")
        replica.command("REPLICAOF", "NO", "ONE")
        await until(lambda: status(watcher, "ha") is Status.FAIL, "the split")
        assert output(watcher, "ha").startswith(
            f"two primaries: 127.0.0.1:{primary.port} (the sentinels') and "
            f"127.0.0.1:{replica.port}")
        assert metric(watcher, "hc_redis_primaries", target="ha") == 2

    watch([f"{url([sentinel])},name=ha,interval=0.2"], scenario, **WATCH_FAST)


def test_the_sentinel_password_and_the_data_password_are_each_used_where_they_belong(
        redis_server: RedisFactory, sentinel_server: SentinelFactory) -> None:
    sentinel_password = "pw-Sentinel-81e2"  # noqa: S105
    primary = redis_server(password=PASSWORD)
    sentinel = sentinel_server(primary, password=sentinel_password)
    hosts = f"127.0.0.1:{sentinel.port}/{MASTER}"
    targets = [f"sentinel://:{sentinel_password}@{hosts}?password={PASSWORD},name=both",
               f"sentinel://:wrong@{hosts}?password={PASSWORD},name=wrong-sentinel",
               f"redis+sentinel://:{sentinel_password}@{hosts},name=no-data-password"]

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: all(s.last for s in watcher.states), "every check")
        assert status(watcher, "both") is Status.PASS, output(watcher, "both")
        assert output(watcher, "wrong-sentinel") == (
            f"no sentinel answers (1 listed; 127.0.0.1:{sentinel.port}: authentication failed: "
            "invalid username-password pair or user is disabled.)")
        assert output(watcher, "no-data-password").startswith(
            f"primary 127.0.0.1:{primary.port}: authentication required")

    watch(targets, scenario, **WATCH_FAST)


def test_the_data_password_may_come_from_a_password_file(
        redis_server: RedisFactory, sentinel_server: SentinelFactory, tmp_path: Path) -> None:
    primary = redis_server(password=PASSWORD)
    sentinel = sentinel_server(primary)
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    hosts = f"127.0.0.1:{sentinel.port}/{MASTER}"

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: all(s.last for s in watcher.states), "every check")
        assert status(watcher, "file") is Status.PASS, output(watcher, "file")
        assert output(watcher, "both") == ("a password in the URL and password_file: give it "
                                           "in one place")

    watch([f"sentinel://{hosts},name=file,password_file={secret}",
           f"sentinel://{hosts}?password={PASSWORD},name=both,password_file={secret}"],
          scenario, **WATCH_FAST)


def test_sentinels_that_do_not_know_the_master_fail_the_target(
        redis_server: RedisFactory, sentinel_server: SentinelFactory) -> None:
    sentinel = sentinel_server(redis_server())

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "other") is not None, "a check")
        assert (status(watcher, "other"), output(watcher, "other")) == \
            (Status.FAIL, "no sentinel knows master 'other' (1 of 1 answer)")

    watch([f"{url([sentinel], 'other')},name=other"], scenario, **WATCH_FAST)


def test_a_redis_target_pointed_at_a_sentinel_fails_naming_the_sentinel_scheme(
        redis_server: RedisFactory, sentinel_server: SentinelFactory) -> None:
    sentinel = sentinel_server(redis_server())

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "wrong") is not None, "a check")
        assert status(watcher, "wrong") is Status.FAIL
        assert output(watcher, "wrong").startswith("no role in INFO replication: a sentinel? "
                                                   "(watched as sentinel://host:port/")

    watch([f"redis://127.0.0.1:{sentinel.port},name=wrong"], scenario, **WATCH_FAST)


SLACK = 1.0
"""Seconds allowed for polling, jitter and the check itself on a busy machine."""


def sentinel_target(service: Service) -> dict[str, Any]:
    """The target `ha` on the service's /targets."""
    (target,) = [t for t in json.loads(service.get("/targets").body)["targets"]
                 if t["name"] == "ha"]
    return dict(target)


def failovers(service: Service) -> float:
    """hc_redis_failovers_total of `ha` on the service's /metrics."""
    families = text_string_to_metric_families(service.get("/metrics").text)
    return next(s.value for f in families for s in f.samples
                if s.name == "hc_redis_failovers_total" and s.labels["target"] == "ha")


def test_after_the_primary_is_killed_hc_follows_the_new_one_within_the_failover_time(
        hc_serve: ServeFactory, redis_server: RedisFactory, sentinel_server: SentinelFactory,
        record_property: Any) -> None:
    primary, replica = pair(redis_server)
    sentinels = [sentinel_server(primary, quorum=2) for _ in range(3)]
    settle(sentinels, replicas=1)
    interval, new = 0.5, f"127.0.0.1:{replica.port}"
    service = hc_serve("--target", f"{url(sentinels)},name=ha,critical,interval={interval}")
    assert sentinel_target(service)["status"] == "pass"

    primary.kill()
    killed = time.monotonic()
    named_by_a_sentinel = followed = None
    readiness: list[tuple[float, int]] = []
    while time.monotonic() - killed < 30:
        now = time.monotonic() - killed
        readiness.append((now, service.get("/readyz").status))
        if named_by_a_sentinel is None and any(s.primary_port() == replica.port
                                               for s in sentinels):
            named_by_a_sentinel = now
        seen = (sentinel_target(service).get("sentinel") or {}).get("primary") or {}
        if followed is None and seen.get("address") == new:
            followed = now
        if followed is not None and now > followed + 3 * interval:
            break
        time.sleep(0.05)

    assert named_by_a_sentinel is not None and followed is not None, readiness
    assert followed <= named_by_a_sentinel + interval + SLACK
    failing = [t for t, code in readiness if code == 503]
    assert failing, "readiness never failed while the primary was down"
    assert max(failing) <= followed + SLACK
    after = sentinel_target(service)
    assert after["status"] != "fail" and service.get("/readyz").status == 200
    assert after["output"].startswith(f"replica 127.0.0.1:{primary.port}: connection refused")
    assert f"primary {new}, 0 replica(s)" in after["output"]
    assert failovers(service) == 1
    for name, value in (("sentinels_failover_s", named_by_a_sentinel), ("hc_followed_s", followed),
                        ("readiness_failed_from_s", min(failing)),
                        ("readiness_failed_until_s", max(failing))):
        record_property(name, round(value, 2))
    print(f"failover: a sentinel named the new primary {named_by_a_sentinel:.2f}s after the "
          f"kill, hc followed at {followed:.2f}s; readiness failed from {min(failing):.2f}s "
          f"to {max(failing):.2f}s")
