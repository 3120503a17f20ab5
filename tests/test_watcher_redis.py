"""Redis targets against real redis-server processes: roles, replication, failover, idle
connections and bad credentials. The watcher runs in-process; the servers are subprocesses."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from hc.health import Health, Status
from hc.watcher import Watcher
from tests.watcher_fixtures import (
    WATCH_FAST,
    RedisFactory,
    RedisServer,
    Tls,
    metric,
    output,
    state,
    status,
    until,
    wait_for,
    watch,
)

PASSWORD = "pw-Redis-7d1f"  # noqa: S105 (the test servers' password)


def replicate(redis_server: RedisFactory, *primary_args: str) -> tuple[RedisServer, RedisServer]:
    """A primary and a replica linked to it, both with PASSWORD."""
    primary = redis_server("--repl-diskless-sync-delay", "0", *primary_args, password=PASSWORD)
    replica = redis_server("--replicaof", "127.0.0.1", str(primary.port), password=PASSWORD)
    wait_for(lambda: replica.info("replication")["master_link_status"] == "up", "the link")
    return primary, replica


def pair_targets(primary: RedisServer, replica: RedisServer, extra: str = "") -> list[str]:
    return [f"{primary.url},name=primary,interval=0.2{extra}",
            f"{replica.url},name=replica,interval=0.2"]


def test_a_primary_and_a_replica_publish_role_link_and_lag(redis_server: RedisFactory) -> None:
    primary, replica = replicate(redis_server)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: metric(watcher, "hc_redis_connected_replicas", target="primary")
                    == 1 and status(watcher, "replica") is Status.PASS, "both checked")
        assert metric(watcher, "hc_redis_role", target="primary", role="primary") == 1
        assert metric(watcher, "hc_redis_role", target="primary", role="replica") == 0
        assert metric(watcher, "hc_redis_role", target="replica", role="replica") == 1
        assert metric(watcher, "hc_redis_primary_link_up", target="replica") == 1
        assert metric(watcher, "hc_redis_replication_lag_bytes", target="primary") is not None
        assert metric(watcher, "hc_redis_role_changes_total", target="replica") == 0
        assert metric(watcher, "hc_target_up", target="primary", kind="redis") == 1
        assert "primary, 1 replica(s), lag" in output(watcher, "primary")

    watch(pair_targets(primary, replica), scenario, **WATCH_FAST)


def test_a_replica_whose_primary_stops_fails_with_its_link_down(
        redis_server: RedisFactory) -> None:
    primary, replica = replicate(redis_server)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "replica") is Status.PASS, "the replica passing")
        primary.stop()
        await until(lambda: status(watcher, "replica") is Status.FAIL, "the replica failing")
        assert "link to primary down" in output(watcher, "replica")
        assert metric(watcher, "hc_redis_primary_link_up", target="replica") == 0
        await until(lambda: status(watcher, "primary") is Status.FAIL, "the primary failing")
        assert output(watcher, "primary") == "connection refused"
        assert metric(watcher, "hc_target_up", target="primary", kind="redis") == 0

    watch(pair_targets(primary, replica), scenario, **WATCH_FAST)


def test_a_replica_promoted_by_replicaof_no_one_is_a_counted_role_change(
        redis_server: RedisFactory, caplog: pytest.LogCaptureFixture) -> None:
    primary, replica = replicate(redis_server)
    caplog.set_level(logging.WARNING, "hc.watcher")

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "replica") is Status.PASS, "the replica passing")
        replica.command("REPLICAOF", "NO", "ONE")
        await until(lambda: metric(watcher, "hc_redis_role", target="replica",
                                   role="primary") == 1, "the new role")
        assert metric(watcher, "hc_redis_role_changes_total", target="replica") == 1
        assert metric(watcher, "hc_redis_role_changes_total", target="primary") == 0

    watch(pair_targets(primary, replica), scenario, **WATCH_FAST)
    assert "target replica: role changed from replica to primary" in caplog.text


def test_a_node_not_in_its_expected_role_fails_when_critical_and_warns_when_not(
        redis_server: RedisFactory) -> None:
    primary, replica = replicate(redis_server)
    targets = [f"{replica.url},name=must,role=replica,critical,interval=0.2",
               f"{replica.url},name=may,role=replica,interval=0.2",
               f"{primary.url},name=primary,role=primary,critical,interval=0.2"]

    def readiness(health: Health) -> dict[str, Status]:
        return {line.name: line.result.status for line in health.report("readyz").lines}

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: all(status(watcher, n) is Status.PASS for n in
                                ("must", "may", "primary")), "every node in its role")
        replica.command("REPLICAOF", "NO", "ONE")
        await until(lambda: status(watcher, "must") is Status.FAIL, "the role mismatch")
        await until(lambda: status(watcher, "may") is Status.FAIL, "the role mismatch")
        assert output(watcher, "must").startswith("expected replica, is primary, 0 replica(s)")
        lines = readiness(health)
        assert (lines["target:must"], lines["target:may"], lines["target:primary"]) == \
            (Status.FAIL, Status.WARN, Status.PASS)

    watch(targets, scenario, **WATCH_FAST)


def test_a_replica_whose_primary_is_silent_warns_then_fails_by_its_last_io(
        redis_server: RedisFactory) -> None:
    primary, replica = replicate(redis_server, "--repl-ping-replica-period", "1")

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "replica") is Status.PASS, "the replica passing")
        primary.pause()  # the link stays up (repl-timeout 60 s) but nothing arrives
        await until(lambda: status(watcher, "replica") is Status.WARN, "a staleness warning")
        assert output(watcher, "replica").startswith("replica, link up, last I/O 2s ago "
                                                     "(warn at 2s)")
        await until(lambda: status(watcher, "replica") is Status.FAIL, "a staleness failure")
        assert "(fail at 4s)" in output(watcher, "replica")
        last_io = metric(watcher, "hc_redis_primary_last_io_seconds", target="replica")
        assert last_io is not None and last_io >= 4
        primary.resume()
        await until(lambda: status(watcher, "replica") is Status.PASS, "the replica passing")

    watch([f"{replica.url},name=replica,interval=0.2,last_io_warn=2,last_io_fail=4"],
          scenario, **WATCH_FAST)


def test_replication_lag_past_the_thresholds_warns_then_fails(
        redis_server: RedisFactory) -> None:
    primary, replica = replicate(redis_server)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "primary") is Status.PASS
                    and metric(watcher, "hc_redis_replication_lag_bytes", target="primary")
                    == 0, "the primary passing with no lag")
        replica.pause()  # it stops acknowledging offsets: the lag grows by what is written
        primary.command("SET", "a", b"x" * 100_000)
        await until(lambda: status(watcher, "primary") is Status.WARN, "a lag warning")
        assert "warn at 50000" in output(watcher, "primary")
        lag = metric(watcher, "hc_redis_replication_lag_bytes", target="primary")
        assert lag is not None and lag >= 100_000
        primary.command("SET", "b", b"x" * 1_000_000)
        await until(lambda: status(watcher, "primary") is Status.FAIL, "a lag failure")
        assert "fail at 1000000" in output(watcher, "primary")
        replica.resume()
        await until(lambda: status(watcher, "primary") is Status.PASS, "the lag gone")

    watch(pair_targets(primary, replica, ",lag_warn=50000,lag_fail=1000000"), scenario,
          **WATCH_FAST)


def hc_clients(server: RedisServer) -> list[str]:
    """The ids of the watcher's connections to `server` (CLIENT LIST, name hc-watcher)."""
    listing = server.command("CLIENT", "LIST")
    return [fields["id"] for fields in (dict(f.split("=", 1) for f in line.split())
                                        for line in listing.splitlines())
            if fields.get("name") == "hc-watcher"]


def others(server: RedisServer) -> list[str]:
    """CLIENT LIST: the connections to `server` but the one asking."""
    return [line for line in server.command("CLIENT", "LIST").splitlines()
            if "cmd=client|list" not in line]


def test_one_connection_outlives_a_server_timeout_shorter_than_the_interval(
        redis_server: RedisFactory) -> None:
    told = redis_server()
    told.command("CONFIG", "SET", "timeout", "2")
    untold = redis_server("--timeout", "2", "--rename-command", "CONFIG", "")  # hc cannot ask
    servers = {"told": told, "untold": untold}

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: all(status(watcher, n) is Status.PASS for n in servers), "checks")
        first = {name: hc_clients(server) for name, server in servers.items()}
        assert all(len(ids) == 1 for ids in first.values())
        await asyncio.sleep(30)  # checks 5 s apart, each server closing connections idle 2 s
        for name, server in servers.items():
            assert hc_clients(server) == first[name]
            assert metric(watcher, "hc_redis_reconnects_total", target=name) == 0
            assert state(watcher, name).failures == 0
            checks = metric(watcher, "hc_target_check_seconds_count", target=name, kind="redis")
            assert checks is not None and checks >= 6

    watch([f"{told.url},name=told,interval=5",
           f"redis://127.0.0.1:{untold.port},name=untold,interval=5"], scenario, **WATCH_FAST)


def test_a_server_without_timeout_gets_no_keepalive_pings(redis_server: RedisFactory) -> None:
    server = redis_server()  # timeout 0: idle connections are never closed

    def pings() -> int:
        return int(server.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))

    def checks(watcher: Watcher) -> float:
        return metric(watcher, "hc_target_check_seconds_count", target="calm",
                      kind="redis") or 0

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "calm") is Status.PASS, "a first check")
        before = pings(), checks(watcher)
        await asyncio.sleep(3.5)
        assert checks(watcher) - before[1] >= 3
        assert pings() - before[0] == checks(watcher) - before[1]  # one PING a check, no more

    watch([f"{server.url},name=calm,interval=1"], scenario, **WATCH_FAST)


def test_a_connection_closed_by_the_server_is_reopened_and_counted(
        redis_server: RedisFactory, caplog: pytest.LogCaptureFixture) -> None:
    server = redis_server()
    caplog.set_level(logging.INFO, "hc.watcher")

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "cut") is Status.PASS, "a first check")
        (first,) = hc_clients(server)
        server.command("CLIENT", "KILL", "ID", first)
        await until(lambda: metric(watcher, "hc_redis_reconnects_total", target="cut") == 1,
                    "a counted reconnect")
        assert status(watcher, "cut") is Status.PASS
        assert hc_clients(server) not in ([], [first])

    watch([f"{server.url},name=cut,interval=0.2"], scenario, **WATCH_FAST)
    assert "target cut: reconnected" in caplog.text


def test_a_wrong_password_is_a_clear_per_target_error(redis_server: RedisFactory) -> None:
    server = redis_server(password=PASSWORD)
    url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{server.port}"
    bare = f"redis://127.0.0.1:{server.port}"

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: None not in (status(watcher, "wrong"), status(watcher, "none")),
                    "checks")
        assert output(watcher, "wrong").startswith("authentication failed: invalid")
        assert output(watcher, "none").startswith("authentication required")

    watch([f"{url},name=wrong", f"{bare},name=none"], scenario, **WATCH_FAST)


def test_rediss_verifies_the_server_against_the_ca_file(redis_server: RedisFactory,
                                                         tls: Tls) -> None:
    server = redis_server(tls=tls)
    url = f"rediss://127.0.0.1:{server.port}"

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: all(s.last for s in watcher.states), "every check")
        assert status(watcher, "own-ca") is Status.PASS, output(watcher, "own-ca")
        assert output(watcher, "own-ca").startswith("primary, 0 replica(s); PING ")
        for name in ("wrong-ca", "system-ca"):
            assert status(watcher, name) is Status.FAIL
            assert output(watcher, name).startswith("TLS certificate not trusted: ")

    watch([f"{url},name=own-ca,ca_file={tls.ca}", f"{url},name=wrong-ca,ca_file={tls.other_ca}",
           f"{url},name=system-ca"], scenario, **WATCH_FAST)


def test_a_unix_socket_target_with_a_password_passes(redis_server: RedisFactory,
                                                     tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    redis_server("--unixsocket", str(socket_path), "--unixsocketperm", "700",
                 password=PASSWORD)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "sock") is not None, "a check")
        assert status(watcher, "sock") is Status.PASS, output(watcher, "sock")

    watch([f"unix://:{PASSWORD}@{socket_path},name=sock"], scenario, **WATCH_FAST)


def password_file(tmp_path: Path, password: str = PASSWORD) -> Path:
    """A file holding `password`, as a mounted secret does."""
    path = tmp_path / "password"
    path.write_text(password + "\n")
    return path


def drop_hc_connections(server: RedisServer) -> None:
    """CLIENT KILL the watcher's connections: its next command reconnects."""
    for client in hc_clients(server):
        server.command("CLIENT", "KILL", "ID", client)


def test_a_rotated_password_file_is_read_again_at_the_next_reconnect(
        redis_server: RedisFactory, tmp_path: Path) -> None:
    server = redis_server(password=PASSWORD)
    secret = password_file(tmp_path)
    rotated = f"rotated-{PASSWORD}"

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "db") is Status.PASS, "a pass with the file's")
        server.command("CONFIG", "SET", "requirepass", rotated)
        server.password = rotated
        drop_hc_connections(server)  # the file still holds the old password
        await until(lambda: status(watcher, "db") is Status.FAIL, "the old password refused")
        assert output(watcher, "db").startswith("authentication failed: invalid")
        secret.write_text(rotated + "\n")  # the secret rotated: no restart
        await until(lambda: status(watcher, "db") is Status.PASS, "a pass with the new one")

    watch([f"redis://127.0.0.1:{server.port}/0,name=db,interval=0.2,password_file={secret}"],
          scenario, **WATCH_FAST)


def test_a_password_file_gone_at_a_reconnect_fails_the_target_naming_the_file(
        redis_server: RedisFactory, tmp_path: Path) -> None:
    server = redis_server(password=PASSWORD)
    secret = password_file(tmp_path)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "db") is Status.PASS, "a first pass")
        secret.unlink()
        drop_hc_connections(server)
        await until(lambda: status(watcher, "db") is Status.FAIL, "a failure")
        assert output(watcher, "db") == (f"password_file {secret}: cannot read: No such file "
                                         "or directory")
        assert others(server) == []  # no connection left open without a login
        password_file(tmp_path)
        await until(lambda: status(watcher, "db") is Status.PASS, "a pass once it is back")

    watch([f"redis://127.0.0.1:{server.port},name=db,interval=0.2,password_file={secret}"],
          scenario, **WATCH_FAST)


def test_a_password_file_with_a_username_logs_in_as_that_user(redis_server: RedisFactory,
                                                              tmp_path: Path) -> None:
    server = redis_server()
    server.command("ACL", "SETUSER", "watcher", "on", f">{PASSWORD}", "+@all", "~*")
    server.command("ACL", "SETUSER", "default", "off")
    secret = password_file(tmp_path)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "user") is not None, "a check")
        assert status(watcher, "user") is Status.PASS, output(watcher, "user")

    watch([f"redis://watcher@127.0.0.1:{server.port},name=user,password_file={secret}"],
          scenario, **WATCH_FAST)


def test_a_password_in_the_url_and_a_password_file_is_a_per_target_error(
        redis_server: RedisFactory, tmp_path: Path) -> None:
    server = redis_server(password=PASSWORD)
    secret = password_file(tmp_path)

    async def scenario(watcher: Watcher, health: Health) -> None:
        await until(lambda: status(watcher, "both") is not None, "a check")
        assert output(watcher, "both") == ("a password in the URL and password_file: give it "
                                           "in one place")

    watch([f"{server.url},name=both,password_file={secret}"], scenario, **WATCH_FAST)
