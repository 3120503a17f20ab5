"""The README's example: a user's own Typer service adopting the kit and `healthcheck`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hc import exits
from tests.conftest import clean_env, free_port

EXAMPLE = Path(__file__).parent.parent / "examples" / "worker_service.py"


class Example:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.env = clean_env({"HC_STATE_DIR": str(tmp_path), "HC_CHECK_INTERVAL": "0.2",
                              "HC_STATE_INTERVAL": "0.2", "HC_HOST": "127.0.0.1"})
        self.log = (tmp_path / "example.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "run", "--port", str(self.port)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def healthcheck(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(EXAMPLE), "healthcheck", "--port", str(self.port), *args],
            env=self.env, capture_output=True, text=True, timeout=20, check=False)

    def wait_healthy(self, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while self.healthcheck().returncode != exits.OK:
            assert self.proc.poll() is None, "example service exited"
            assert time.monotonic() < deadline, "example never became healthy"
            time.sleep(0.1)


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Example]:
    service = Example(tmp_path)
    yield service
    if service.proc.poll() is None:
        service.proc.send_signal(signal.SIGCONT)
        service.proc.kill()
    service.proc.wait(10)
    service.log.close()


def test_example_service_is_healthy_with_its_own_healthcheck(example: Example) -> None:
    example.wait_healthy()
    verbose = example.healthcheck("--verbose")
    assert verbose.returncode == exits.OK
    assert "[+]heartbeat:worker ok" in verbose.stdout
    assert "[+]queue ok" in verbose.stdout


def test_example_stuck_worker_makes_healthcheck_fail_naming_it(example: Example) -> None:
    example.wait_healthy()
    example.proc.send_signal(signal.SIGUSR1)  # the worker thread hangs
    deadline = time.monotonic() + 10
    while (result := example.healthcheck("--verbose")).returncode == exits.OK:
        assert time.monotonic() < deadline, "stuck worker never detected"
        time.sleep(0.2)
    assert result.returncode == exits.FAILURE
    assert "heartbeat worker last beat" in result.stdout


def test_example_exits_0_after_sigterm(example: Example) -> None:
    example.wait_healthy()
    example.proc.send_signal(signal.SIGTERM)
    assert example.proc.wait(5) == exits.OK
