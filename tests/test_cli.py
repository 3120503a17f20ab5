"""The command line: `hc --version`, help pages from the option table, Typer's healthcheck."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hc import __version__, exits
from hc.config import PROBE, SERVE, options_for
from tests.conftest import ServeFactory, clean_env, run_hc

TYPER_HEALTHCHECK = "import sys; from hc.cli import app; sys.argv[0] = 'hc'; app()"
"""`hc` run through Typer only, as an app embedding hc's healthcheck command would."""


def test_version() -> None:
    result = run_hc("--version")

    assert result.returncode == exits.OK
    assert result.stdout == f"hc {__version__}\n"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_healthcheck_help_comes_from_typer(flag: str) -> None:
    result = run_hc("healthcheck", flag)

    assert result.returncode == exits.OK
    assert result.stdout.startswith("Usage: ")
    assert "[env: HC_TIMEOUT; default: 3.0]" in " ".join(result.stdout.split())


@pytest.mark.parametrize("command", [SERVE, PROBE])
def test_help_lists_every_option_with_its_env_name(command: str) -> None:
    result = run_hc(command, "--help")

    assert result.returncode == exits.OK
    words = " ".join(result.stdout.split())  # help text is wrapped to the terminal width
    for option in options_for(command):
        assert option.flag in words
        assert f"[env: {option.env};" in words


def test_help_states_the_exit_codes() -> None:
    result = run_hc("--help")

    assert f"serve {exits.OK} clean stop" in " ".join(result.stdout.split())
    assert f"{exits.CONFIG} bad config" in " ".join(result.stdout.split())


def test_bare_hc_prints_help_and_exits_2() -> None:
    result = run_hc()

    assert result.returncode == exits.USAGE
    assert "Commands:" in result.stderr + result.stdout


def test_unknown_command_gives_one_line() -> None:
    result = run_hc("sevre")

    assert result.returncode == exits.USAGE
    assert result.stderr.startswith("hc: No such command 'sevre'")
    assert result.stderr.endswith(" (see hc --help)\n")
    assert result.stderr.count("\n") == 1


def test_missing_flag_value_gives_one_line() -> None:
    result = run_hc("serve", "--port")

    assert result.returncode == exits.USAGE
    assert result.stderr.count("\n") == 1
    assert "'--port' requires an argument" in result.stderr


def test_typer_healthcheck_bad_usage_exits_1_never_2() -> None:
    result = subprocess.run([sys.executable, "-c", TYPER_HEALTHCHECK, "healthcheck", "--bogus"],
                            env=clean_env(), capture_output=True, text=True, timeout=30,
                            check=False)

    assert result.returncode == exits.FAILURE
    assert result.stderr.count("\n") == 1
    assert "--bogus" in result.stderr


def test_typer_healthcheck_of_a_healthy_service_exits_0(hc_serve: ServeFactory) -> None:
    service = hc_serve()

    result = subprocess.run([sys.executable, "-c", TYPER_HEALTHCHECK, "healthcheck",
                             *service.probe_args()], env=clean_env(), capture_output=True,
                            text=True, timeout=20, check=False)

    assert result.returncode == exits.OK, result.stderr


def test_typer_healthcheck_with_bad_config_exits_1() -> None:
    result = subprocess.run([sys.executable, "-c", TYPER_HEALTHCHECK, "healthcheck",
                             "--timeout", "soon"], env=clean_env(), capture_output=True,
                            text=True, timeout=20, check=False)

    assert result.returncode == exits.FAILURE
    assert result.stderr == ("hc healthcheck: config error: timeout='soon' (from flag "
                             "--timeout): expected a number from 0.1 to 60\n")
