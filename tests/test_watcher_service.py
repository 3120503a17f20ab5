"""`hc serve` with targets, as a real subprocess: health policy, endpoints, secrets, bad input."""

from __future__ import annotations

import base64
import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from hc import exits
from tests.conftest import ServeFactory, Service, free_port, run_hc
from tests.watcher_fixtures import MASTER, RedisFactory, SentinelFactory

SECRET = "Zq8-hc-secret-41"  # noqa: S105 (the password that must never show)
SENTINEL_SECRET = "Yk3-hc-sentinel-77"  # noqa: S105 (the sentinels' own, as secret)
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
FIRST_ROUND_BOUND = 5.0
"""Seconds from starting `hc serve` to ready when every target answers at once: the start of
Python and uvicorn, and one round of checks."""


def targets_of(service: Service) -> dict[str, dict[str, Any]]:
    """GET /targets: name -> the target's entry."""
    return {t["name"]: t for t in json.loads(service.get("/targets").body)["targets"]}


def wait_checked(service: Service) -> dict[str, dict[str, Any]]:
    """Until every target has a result; then /targets."""
    service.wait_until(lambda: all(t["status"] != "pending"
                                   for t in targets_of(service).values()), "every target")
    return targets_of(service)


def test_a_failing_critical_target_fails_readiness_and_the_probe_not_liveness(
        hc_serve: ServeFactory) -> None:
    port = free_port()
    service = hc_serve("--target", f"tcp://127.0.0.1:{port},name=db,critical,interval=0.2",
                       wait="/livez")
    wait_checked(service)
    service.wait_until(lambda: service.get("/readyz").status == 503, "readiness failing")
    assert "[-]target:db failed: connection refused" in service.get("/readyz?verbose").text
    assert service.get("/livez").status == 200
    assert service.healthcheck().returncode == exits.FAILURE
    assert service.healthcheck("--mode", "live").returncode == exits.OK


def test_a_failing_critical_target_is_logged_once(hc_serve: ServeFactory) -> None:
    port = free_port()
    service = hc_serve("--target", f"tcp://127.0.0.1:{port},name=db,critical,interval=0.2",
                       wait="/livez")
    service.wait_until(lambda: "[-]target:db failed" in service.get("/readyz?verbose").text,
                       "readiness to fail on the target")

    assert service.stop() == exits.OK
    failures = [line for line in service.log().splitlines() if "connection refused" in line]
    assert len(failures) == 1, failures
    assert "target db (tcp://127.0.0.1" in failures[0]


def test_json_logs_are_one_object_per_line_with_the_targets_fields_and_no_password(
        hc_serve: ServeFactory) -> None:
    port = free_port()
    service = hc_serve(
        "--log-format", "json", "--log-level", "debug", "--access-log",
        "--target", f"redis://:{SECRET}@127.0.0.1:{port}/0,name=cache,critical,interval=0.2",
        "--target", f"redis://127.0.0.1:{port}?password={SECRET},name=query,interval=0.2",
        wait="/livez")
    service.wait_until(lambda: "[-]target:cache failed" in service.get("/readyz?verbose").text,
                       "readiness to fail on the target")
    service.get("/nothing-here")  # an access-log line, by uvicorn

    assert service.stop() == exits.OK
    lines = [json.loads(line) for line in service.log().splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert all(datetime.fromisoformat(line["time"]).tzinfo == UTC for line in lines)
    failing = [line for line in lines if line.get("target") == "cache"]
    assert [(line["level"], line["status"], line["reason"]) for line in failing] == [
        ("warning", "fail", "connection refused")]
    assert f"redis://:***@127.0.0.1:{port}" in failing[0]["message"]
    assert {"uvicorn.access", "hc.lifecycle", "hc.watcher"} <= {line["logger"] for line in lines}
    assert SECRET not in service.log()


def test_every_target_is_first_checked_at_start_whatever_its_interval_and_jitter(
        hc_serve: ServeFactory, silent_port: int) -> None:
    specs = [f"tcp://127.0.0.1:{silent_port},name=db{n},critical,interval=600" for n in range(3)]
    started = time.monotonic()

    hc_serve(*(f"--target={spec}" for spec in specs), "--jitter", "0.5")  # waits for /readyz

    assert time.monotonic() - started < FIRST_ROUND_BOUND  # jittered: 0 to 300 s each


def test_a_failing_non_critical_target_only_warns(hc_serve: ServeFactory) -> None:
    port = free_port()
    service = hc_serve("--target", f"tcp://127.0.0.1:{port},name=cache,interval=0.2")
    wait_checked(service)
    ready = service.get("/readyz?verbose")
    assert ready.status == 200
    assert "[+]target:cache warn: connection refused" in ready.text
    assert service.get("/livez").status == 200
    assert service.healthcheck().returncode == exits.OK


def test_metrics_parse_with_prometheus_clients_own_parser(
        hc_serve: ServeFactory, redis_server: RedisFactory, silent_port: int) -> None:
    server = redis_server()
    service = hc_serve("--target", f"{server.url},name=cache,interval=0.2",
                       "--target", f"tcp://127.0.0.1:{silent_port},name=db,interval=0.2")
    wait_checked(service)
    response = service.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    kinds = {name: families[name].type for name in (
        "hc_target_up", "hc_target_check_seconds", "hc_target_check_failures",
        "hc_redis_role", "hc_redis_role_changes", "hc_redis_replication_lag_bytes",
        "hc_scheduler_lateness_seconds", "process_resident_memory_bytes", "python_info")}
    assert kinds == {
        "hc_target_up": "gauge", "hc_target_check_seconds": "histogram",
        "hc_target_check_failures": "counter", "hc_redis_role": "gauge",
        "hc_redis_role_changes": "counter", "hc_redis_replication_lag_bytes": "gauge",
        "hc_scheduler_lateness_seconds": "histogram",
        "process_resident_memory_bytes": "gauge", "python_info": "gauge"}
    up = {s.labels["target"]: s.value for s in families["hc_target_up"].samples}
    assert up == {"cache": 1.0, "db": 1.0}


def test_bad_targets_fail_one_by_one_while_the_service_runs(
        hc_serve: ServeFactory, silent_port: int) -> None:
    refused = free_port()
    service = hc_serve(
        "--target", "foo://example:1,name=scheme",
        "--target", "tcp://127.0.0.1:99999,name=port",
        "--target", f"http://127.0.0.1:{silent_port}/,name=hang,timeout=0.3",
        "--target", f"http://127.0.0.1:{refused}/,name=web",
        "--target", f"tcp://127.0.0.1:{silent_port},name=fine")
    found = {name: (t["status"], t["output"]) for name, t in wait_checked(service).items()}
    assert found["scheme"][1].startswith("unsupported scheme 'foo'")
    assert found["port"][1].startswith("bad port '99999'")
    assert found["hang"] == ("fail", "no answer within 0.3s")
    assert found["web"] == ("fail", "connection refused")
    assert found["fine"][0] == "pass"
    assert service.get("/livez").status == 200
    assert service.stop() == exits.OK
    assert "Traceback" not in service.log()


def test_sigterm_ends_the_service_cleanly_even_with_a_hung_redis(
        hc_serve: ServeFactory, redis_server: RedisFactory) -> None:
    server = redis_server()
    service = hc_serve("--target", f"{server.url},name=hung,interval=0.2,timeout=0.5")
    server.pause()
    service.wait_until(lambda: targets_of(service)["hung"]["status"] == "fail", "a timeout")
    started = time.monotonic()
    assert service.stop() == exits.OK
    assert time.monotonic() - started < 5
    assert "stopped cleanly" in service.log()


def test_a_malformed_target_stops_start_up_with_exit_78(tmp_path: Path) -> None:
    config = tmp_path / "hc.toml"
    config.write_text('[[targets]]\nname = "no-url"\n')
    address = ["--port", str(free_port()), "--state-dir", str(tmp_path / "state")]
    from_file = run_hc("serve", "--config", str(config), *address)
    from_flag = run_hc("serve", "--target", "tcp://127.0.0.1:1,interval=soon", *address)
    assert (from_file.returncode, from_flag.returncode) == (exits.CONFIG, exits.CONFIG)
    assert from_file.stderr.splitlines() == [
        f"hc serve: config error: target='keys name' (from file {config}): expected a url"]
    assert from_flag.stderr.startswith("hc serve: config error: interval='soon'")


def every_output(service: Service, config_args: list[str],
                 env: dict[str, str] | None = None) -> list[str]:
    """What hc shows of a running service: every endpoint, the probe in every format, `hc
    config` with the same settings, the state file; then its log, once stopped (exit 0)."""
    seen = [service.get(path).text for path in (
        "/livez?verbose", "/readyz?verbose", "/healthz?verbose", "/healthz?format=json",
        "/targets", "/metrics", *(f"/healthz/target:{name}?verbose"
                                  for name in targets_of(service)))]
    for args in ((), ("--verbose",), ("--json",), ("--mode", "live", "--verbose")):
        probe = service.healthcheck(*args, env=env)
        seen += [probe.stdout, probe.stderr]
    described = run_hc("config", *config_args, env=env)
    seen += [described.stdout, described.stderr, service.state_file().read_text()]
    assert service.stop(signal.SIGTERM) == exits.OK
    return [*seen, service.log()]


def test_a_password_never_appears_in_any_output(
        hc_serve: ServeFactory, redis_server: RedisFactory, sentinel_server: SentinelFactory,
        raw_server: Callable[[bytes], int], tmp_path: Path) -> None:
    server = redis_server(password=SECRET)
    sentinel = sentinel_server(server, password=SENTINEL_SECRET)
    web, down = raw_server(ERROR), free_port()
    sentinels = f"127.0.0.1:{sentinel.port},127.0.0.1:{down}/{MASTER}"
    specs = [
        f"sentinel://:{SENTINEL_SECRET}@{sentinels}?password={SECRET},name=ha",
        f"redis+sentinel://:{SENTINEL_SECRET}x@{sentinels},name=ha-wrong",
        f"redis://:{SECRET}@127.0.0.1:{server.port}/0,name=good,interval=0.2",
        f"redis://:{SECRET}x@127.0.0.1:{server.port},name=wrong,interval=0.2",
        f"redis://127.0.0.1:{server.port}?password={SECRET},name=query",
        f"http://admin:{SECRET}@127.0.0.1:{web}/x,name=web",
        f"foo://:{SECRET}@127.0.0.1:1,name=scheme",
        f"tcp://u:{SECRET}@127.0.0.1:99999,name=port"]
    tables = [f'{{url = "redis://default:{SECRET}@127.0.0.1:{down}", name = "down", '
              'critical = true}']
    config = tmp_path / "hc.toml"
    config.write_text("targets = [" + ", ".join([*map(json.dumps, specs), *tables]) + "]\n")
    flags = ["--config", str(config), "--log-level", "debug", "--access-log"]
    service = hc_serve(*flags, wait="/livez")
    found = wait_checked(service)
    assert (found["good"]["status"], found["query"]["status"]) == ("pass", "pass")
    assert found["ha"]["status"] == "warn"
    assert found["ha"]["output"].startswith("1 of 2 sentinels answer")
    assert found["ha-wrong"]["output"].startswith("no sentinel answers")
    assert found["wrong"]["output"].startswith("authentication failed")
    seen = every_output(service, flags)
    assert "target wrong" in service.log() and "admin:***@" in service.log()
    assert found["down"]["critical"] and found["down"]["output"] == "connection refused"
    basic = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    leaks = [text for text in seen if SECRET in text or SENTINEL_SECRET in text
             or basic in text]
    assert not leaks


def test_no_piece_of_a_password_holding_at_signs_shows_in_logs_or_outputs(
        hc_serve: ServeFactory) -> None:
    pieces = ("Wq3", "Xv9", "Rt5")
    spec = f"redis://:{'@'.join(pieces)}@127.0.0.1:{free_port()},name=at,interval=0.2"
    service = hc_serve("--target", spec, "--log-level", "debug", wait="/livez")

    found = wait_checked(service)
    seen = [service.get("/targets").text, service.get("/healthz?verbose").text,
            service.healthcheck("--verbose").stdout,
            run_hc("config", "--target", spec).stdout]
    assert service.stop(signal.SIGTERM) == exits.OK
    seen.append(service.log())

    assert found["at"]["output"] == "connection refused"
    assert [piece for piece in pieces if any(piece in text for text in seen)] == []


def test_a_password_read_from_a_file_never_appears_in_any_output(
        hc_serve: ServeFactory, redis_server: RedisFactory, sentinel_server: SentinelFactory,
        raw_server: Callable[[bytes], int], tmp_path: Path) -> None:
    server = redis_server(password=SECRET)
    sentinel = sentinel_server(server)
    web = raw_server(ERROR)
    secret, wrong = tmp_path / "redis-password", tmp_path / "wrong-password"
    secret.write_text(SECRET + "\n")
    wrong.write_text(SENTINEL_SECRET + "\n")
    specs = [
        f"redis://127.0.0.1:{server.port}/0,name=good,interval=0.2,password_file={secret}",
        f"redis://127.0.0.1:{server.port},name=wrong,interval=0.2,password_file={wrong}",
        f"sentinel://127.0.0.1:{sentinel.port}/{MASTER},name=ha,password_file={secret}",
        f"http://admin@127.0.0.1:{web}/x,name=web,password_file={secret}",
        f"redis://:{SENTINEL_SECRET}@127.0.0.1:{free_port()},name=in-url"]
    targets_file = tmp_path / "targets"
    targets_file.write_text("\n".join(specs) + "\n")
    env = {"HC_TARGET_FILE": str(targets_file)}
    service = hc_serve("--log-level", "debug", "--access-log", env=env, wait="/livez")
    found = wait_checked(service)
    assert (found["good"]["status"], found["ha"]["status"]) == ("pass", "pass")
    assert found["wrong"]["output"].startswith("authentication failed")
    rotated = f"rotated-{SECRET}"
    secret.write_text(rotated)  # read at the next reconnect, then hidden as well
    server.command("CONFIG", "SET", "requirepass", rotated)
    server.password = rotated
    server.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    service.wait_until(lambda: targets_of(service)["good"]["redis"]["reconnects"] >= 1,
                       "a reconnect with the rotated password")
    service.wait_until(lambda: targets_of(service)["good"]["status"] == "pass", "a pass")

    seen = every_output(service, [], env)

    assert any(f"file HC_TARGET_FILE={targets_file}" in text for text in seen)  # hc config
    basic = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    leaks = [text for text in seen if SECRET in text or SENTINEL_SECRET in text
             or basic in text]
    assert not leaks
