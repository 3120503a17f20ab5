"""`hc healthcheck`: exit 0 only for a healthy service, 1 for anything else, never late."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hc import exits
from hc.config import PROBE, load
from hc.probe import DOCKER_OUTPUT_LIMIT, MAX_RESPONSE, ProbeError, Verdict, _parse, render
from tests.conftest import ROOT, RawServer, ServeFactory, free_port, run_hc

SLACK = 0.5
"""The issue's bound: a probe of a silent port ends within its timeout plus this."""


def timed_probe(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = run_hc("healthcheck", *args)
    return result, time.monotonic() - started


def test_healthy_service_exits_0(hc_serve: ServeFactory) -> None:
    service = hc_serve()

    result = service.healthcheck()

    assert result.returncode == exits.OK, result.stderr
    assert result.stdout == result.stderr == ""


def test_closed_port_exits_1_without_waiting_for_the_timeout(tmp_path: Path) -> None:
    result, elapsed = timed_probe("--port", str(free_port()), "--state-dir", str(tmp_path),
                                  "--timeout", "20")

    assert result.returncode == exits.FAILURE
    assert "Connection refused" in result.stdout
    assert elapsed < 10


def test_port_that_never_accepts_exits_1_within_the_timeout(silent_port: int,
                                                             tmp_path: Path) -> None:
    result, elapsed = timed_probe("--port", str(silent_port), "--state-dir", str(tmp_path),
                                  "--timeout", "1")

    assert result.returncode == exits.FAILURE
    assert "no answer within the timeout" in result.stdout
    assert elapsed < 1 + SLACK


def test_stopped_server_exits_1_within_the_timeout(hc_serve: ServeFactory) -> None:
    service = hc_serve()
    service.send(signal.SIGSTOP)
    try:
        started = time.monotonic()
        result = service.healthcheck("--timeout", "1")
        elapsed = time.monotonic() - started
    finally:
        service.send(signal.SIGCONT)

    assert result.returncode == exits.FAILURE
    assert "no answer within the timeout" in result.stdout
    assert elapsed < 1 + SLACK


@pytest.mark.parametrize("reply", [
    pytest.param(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", id="500"),
    pytest.param(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nno\n", id="503"),
    pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="garbage"),
    pytest.param(b"", id="empty"),
    pytest.param(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (MAX_RESPONSE + 1), id="oversized"),
])
def test_bad_answer_exits_1(raw_server: RawServer, reply: bytes) -> None:
    port = raw_server(reply)

    result = run_hc("healthcheck", "--url", f"http://127.0.0.1:{port}/readyz")

    assert result.returncode == exits.FAILURE
    assert result.stdout.startswith("unhealthy: ")
    assert result.stdout.count("\n") == 1
    assert result.stderr == ""


def test_url_answering_200_exits_0(raw_server: RawServer) -> None:
    port = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

    result = run_hc("healthcheck", "--url", f"http://127.0.0.1:{port}/readyz")

    assert result.returncode == exits.OK, result.stderr


def test_200_on_the_probed_port_without_a_state_snapshot_exits_1(raw_server: RawServer,
                                                                tmp_path: Path) -> None:
    port = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

    result = run_hc("healthcheck", "--port", str(port), "--state-dir", str(tmp_path))

    assert result.returncode == exits.FAILURE
    assert "state snapshot" in result.stdout and "missing" in result.stdout


def test_stuck_worker_exits_1_with_the_reason_in_verbose(hc_serve: ServeFactory) -> None:
    service = hc_serve("--heartbeat-max-age", "0.5", app="worker")
    assert service.healthcheck().returncode == exits.OK

    service.send(signal.SIGUSR1)  # the worker stops beating
    service.wait_until(lambda: service.get("/livez").status == 503, "/livez to fail")
    result = service.healthcheck("--verbose")

    assert result.returncode == exits.FAILURE
    assert "reason: heartbeat worker last beat" in result.stdout
    assert "[-]heartbeat:worker failed" in result.stdout


def test_a_heartbeat_max_age_near_the_write_interval_never_fails_a_healthy_service(
        hc_serve: ServeFactory) -> None:
    """The snapshot is written every 2 s and the watcher's loop beats every 0.5 s: judged at
    the probe's time, a 1 s max age would fail most probes; judged as of the writing, none."""
    service = hc_serve("--heartbeat-max-age", "1", env={"HC_STATE_INTERVAL": "2"})

    codes = []
    for _ in range(12):
        codes.append(service.healthcheck("--mode", "live").returncode)
        time.sleep(0.25)

    assert codes == [exits.OK] * 12


def test_services_on_two_addresses_with_one_port_keep_their_own_snapshots(
        hc_serve: ServeFactory, tmp_path: Path) -> None:
    port, shared = free_port(), tmp_path / "state"
    first = hc_serve(host="127.0.0.1", port=port, state_dir=shared)
    second = hc_serve(host="127.0.0.2", port=port, state_dir=shared)
    second.send(signal.SIGSTOP)  # its snapshot goes stale; the first's must not
    try:
        time.sleep(1.5)
        codes = [first.healthcheck().returncode for _ in range(4)]
        stale = second.healthcheck("--timeout", "0.5").returncode
    finally:
        second.send(signal.SIGCONT)

    assert codes == [exits.OK] * 4
    assert stale == exits.FAILURE
    assert first.state_file() != second.state_file()


@pytest.mark.parametrize("form", [[], ["--verbose"], ["--json"]], ids=["plain", "verbose", "json"])
def test_what_the_probe_finds_goes_to_stdout_in_every_form(tmp_path: Path,
                                                          form: list[str]) -> None:
    result = run_hc("healthcheck", "--port", str(free_port()), "--state-dir", str(tmp_path),
                    *form)

    assert result.returncode == exits.FAILURE
    assert result.stderr == ""
    assert "Connection refused" in result.stdout


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy",
                                      "ALL_PROXY"])
def test_proxy_variables_are_ignored(hc_serve: ServeFactory, variable: str) -> None:
    service = hc_serve()
    dead_proxy = f"http://127.0.0.1:{free_port()}"

    result = service.healthcheck(env={variable: dead_proxy, "no_proxy": ""})

    assert result.returncode == exits.OK, result.stderr


@pytest.mark.parametrize("host", ["::", "::1"])
def test_ipv6_service_is_probed_over_ipv6(hc_serve: ServeFactory, host: str) -> None:
    service = hc_serve(host=host)

    result = service.healthcheck("--verbose")

    assert result.returncode == exits.OK, result.stderr
    assert f"http://[::1]:{service.port}/readyz" in result.stdout


def test_unix_socket_service_is_probed_over_the_socket(hc_serve: ServeFactory,
                                                       tmp_path: Path) -> None:
    service = hc_serve(uds=str(tmp_path / "hc.sock"))

    result = service.healthcheck("--verbose")

    assert result.returncode == exits.OK, result.stderr
    assert f"http+unix://{tmp_path / 'hc.sock'}/readyz" in result.stdout


def test_verbose_output_fits_docker_with_50_checks(hc_serve: ServeFactory) -> None:
    service = hc_serve(app="many_checks", wait="/livez", env={"APP_CHECKS": "50"})

    result = service.healthcheck("--verbose")

    assert result.returncode == exits.FAILURE
    assert "dummy-check-with-a-long-name-003 failed" in result.stdout
    assert len((result.stdout + result.stderr).encode()) <= DOCKER_OUTPUT_LIMIT


def test_json_output_with_50_checks_parses_and_fits_docker(hc_serve: ServeFactory) -> None:
    service = hc_serve(app="many_checks", wait="/livez", env={"APP_CHECKS": "50"})

    result = service.healthcheck("--json")

    assert result.returncode == exits.FAILURE
    assert len(result.stdout.encode()) <= DOCKER_OUTPUT_LIMIT
    assert json.loads(result.stdout)["status"] == "fail"


def test_json_output_of_a_healthy_service_has_status_pass(hc_serve: ServeFactory) -> None:
    service = hc_serve()

    result = service.healthcheck("--json")

    assert result.returncode == exits.OK
    body = json.loads(result.stdout)
    assert body["status"] == "pass"
    assert "started" in body["checks"]


# -- the probe's import budget ----------------------------------------------------------------
PROBE_IMPORTS = frozenset({
    # hc's probe path
    "hc", "hc.__main__", "hc.exits", "hc.config", "hc.endpoints", "hc.state", "hc.probe",
    "__future__",
    # what it imports: os, math, signal, socket, json, and what those pull in
    "os", "os.path", "posixpath", "genericpath", "stat", "_stat", "math", "signal", "enum",
    "types", "functools", "_functools", "operator", "_operator", "collections",
    "collections.abc", "_collections", "_collections_abc", "itertools", "keyword", "reprlib",
    "copyreg", "socket", "_socket", "selectors", "select", "errno", "array", "json",
    "json.decoder", "json.encoder", "json.scanner", "_json", "re", "re._casefix",
    "re._compiler", "re._constants", "re._parser", "_sre",
})
"""Every module `hc healthcheck` may import beyond the interpreter's own start-up set. The
probe runs every few seconds for a container's whole life: a module joins this list only with
a measured reason (BENCHMARKS.md), never by accident."""
CONFIG_FILE_IMPORTS = frozenset({
    "tomllib", "tomllib._parser", "tomllib._re", "tomllib._types", "typing", "typing.io",
    "typing.re", "_typing", "contextlib", "datetime", "_datetime", "string", "_string",
    "warnings"})
"""Only when a config file is given (`--config` / HC_CONFIG)."""
URL_IMPORTS = frozenset({"urllib", "urllib.parse", "ipaddress", "warnings"})
"""Only with `--url`."""
TRACE_IMPORTS = """
import atexit, sys
before = set(sys.modules)
atexit.register(lambda: print("MODULES", *sorted(set(sys.modules) - before)))
sys.argv = ["hc", "healthcheck", *sys.argv[1:]]
from hc.__main__ import main
main()
"""


def probe_imports(*args: str, env: dict[str, str]) -> set[str]:
    """The modules one `hc healthcheck ARGS` imports, run as the frozen binary runs Python:
    without `site` (-S) and PYTHON* variables (-E)."""
    result = subprocess.run([sys.executable, "-S", "-E", "-s", "-c", TRACE_IMPORTS, *args],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=20,
                            check=False)
    assert result.returncode == exits.OK, result.stderr
    return set(result.stdout.split("MODULES", 1)[1].split())


def test_probe_imports_only_its_budget(hc_serve: ServeFactory) -> None:
    service = hc_serve()

    imported = probe_imports(*service.probe_args(), env=service.env)

    assert "hc.probe" in imported
    assert sorted(imported - PROBE_IMPORTS) == []


def test_probe_reads_toml_only_when_given_a_config_file(hc_serve: ServeFactory,
                                                        tmp_path: Path) -> None:
    service = hc_serve()
    path = tmp_path / "hc.toml"
    path.write_text(f'port = {service.port}\nhost = "{service.host}"\n')

    imported = probe_imports("--config", str(path), "--state-dir", str(service.state_dir),
                             env=service.env)

    assert "tomllib" in imported
    assert sorted(imported - PROBE_IMPORTS - CONFIG_FILE_IMPORTS) == []


def test_probe_of_a_url_imports_only_the_url_parser_more(hc_serve: ServeFactory) -> None:
    service = hc_serve()

    imported = probe_imports("--url", f"http://{service.address}:{service.port}/livez",
                             env=service.env)

    assert "urllib.parse" in imported
    assert sorted(imported - PROBE_IMPORTS - URL_IMPORTS) == []


@settings(deadline=None)  # slow CI machines must not fail on time
@given(st.binary(max_size=512))
def test_response_parser_raises_only_probe_error(data: bytes) -> None:
    try:
        status, _ = _parse(data, "http://x/")
    except ProbeError:
        return
    assert 0 <= status <= 999


@settings(deadline=None)  # slow CI machines must not fail on time
@given(st.lists(st.text(max_size=3000), max_size=20), st.booleans())
def test_rendered_output_always_fits_docker(reasons: list[str], as_json: bool) -> None:
    settings = load(PROBE, {"json": as_json, "verbose": True}, env={})
    verdict = Verdict(url="http://127.0.0.1:8080/readyz?verbose")
    for reason in reasons:
        verdict.fail(reason)

    output = render(verdict, settings)

    assert len(output.encode()) + 1 <= DOCKER_OUTPUT_LIMIT  # the newline the probe adds
    if as_json:
        assert json.loads(output)["status"] == ("fail" if reasons else "pass")


PROBE_WORDS = st.sampled_from(["--port", "--host", "--mode", "--timeout", "--url", "--uds",
                               "--verbose", "--no-json", "--json", "--config", "--state-dir",
                               "--bogus", "x", "1", "0.1", "live", "http://127.0.0.1:1/",
                               "http://u:p@127.0.0.1:1/", "::1", "", "--port=", "--timeout=1e9"])


@settings(deadline=None, max_examples=25)  # each example is a process
@given(st.lists(PROBE_WORDS, max_size=5))
def test_the_probe_exits_0_or_1_in_one_line_whatever_its_arguments(words: list[str]) -> None:
    result = run_hc("healthcheck", "--timeout", "0.5", *words, timeout=10)

    assert result.returncode in (exits.OK, exits.FAILURE)
    assert "Traceback" not in result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("\n") <= 1 or "--verbose" in words
