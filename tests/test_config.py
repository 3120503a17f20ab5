"""Settings: defaults < TOML file < HC_* env < flags, one loader for both commands, and bad
input met with one line and the documented exit code."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hc import exits
from hc.config import (
    EVERY,
    OPTIONS,
    PROBE,
    SERVE,
    ConfigError,
    Option,
    load,
    redact_url,
    unknown_env,
)
from tests.conftest import ServeFactory, free_port, run_hc


def config_line(output: str, name: str) -> str:
    """The `hc config` line of one setting."""
    return next(line for line in output.splitlines() if line.startswith(f"{name} = "))


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "hc.toml"
    path.write_text('port = 1111\ndrain-delay = 4.5\nlog_level = "debug"\n')
    return path


# -- precedence, through `hc config` ----------------------------------------------------------
def test_default_applies_without_file_env_or_flag() -> None:
    result = run_hc("config")

    assert result.returncode == exits.OK
    assert config_line(result.stdout, "port") == "port = 8080  # default"


def test_file_beats_default(toml: Path) -> None:
    result = run_hc("config", "--config", str(toml))

    assert config_line(result.stdout, "port") == f"port = 1111  # file {toml}"


def test_file_keys_may_use_dashes(toml: Path) -> None:
    result = run_hc("config", "--config", str(toml))

    assert config_line(result.stdout, "drain_delay") == f"drain_delay = 4.5  # file {toml}"


def test_file_named_by_env(toml: Path) -> None:
    result = run_hc("config", env={"HC_CONFIG": str(toml)})

    assert config_line(result.stdout, "log_level") == f'log_level = "debug"  # file {toml}'


def test_env_beats_file(toml: Path) -> None:
    result = run_hc("config", "--config", str(toml), env={"HC_PORT": "2222"})

    assert config_line(result.stdout, "port") == "port = 2222  # env HC_PORT"


def test_flag_beats_env(toml: Path) -> None:
    result = run_hc("config", "--config", str(toml), "--port", "3333",
                    env={"HC_PORT": "2222"})

    assert config_line(result.stdout, "port") == "port = 3333  # flag --port"


def test_config_hides_passwords_in_targets() -> None:
    result = run_hc("config", "--target", "redis://app:hunter2@db:6379/0")

    assert "hunter2" not in result.stdout
    assert "redis://app:***@db:6379/0" in result.stdout


def test_env_file_gives_a_setting_the_content_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "port"
    path.write_text("4444\n")

    result = run_hc("config", env={"HC_PORT_FILE": str(path)})

    assert config_line(result.stdout, "port") == f"port = 4444  # file HC_PORT_FILE={path}"


def test_target_file_holds_one_target_per_line_passwords_hidden(tmp_path: Path) -> None:
    path = tmp_path / "targets"
    path.write_text("redis://:hunter2@db:6379/0,name=cache,critical\ntcp://mq:5672\n")

    result = run_hc("config", env={"HC_TARGET_FILE": str(path)})

    assert config_line(result.stdout, "target") == (
        'target = ["redis://:***@db:6379/0,name=cache,critical", "tcp://mq:5672"]  '
        f"# file HC_TARGET_FILE={path}")
    assert "hunter2" not in result.stdout + result.stderr


def test_env_file_drops_one_trailing_newline_only() -> None:
    files = {"\n": "", "a\r\n": "a", "a \n\n": "a \n", "a": "a"}
    for content, value in files.items():
        with tempfile.NamedTemporaryFile("w") as handle:
            handle.write(content)
            handle.flush()
            assert load(SERVE, env={"HC_UDS_FILE": handle.name}).uds == value, content


def test_an_empty_env_file_variable_counts_as_unset() -> None:
    settings = load(SERVE, env={"HC_PORT": "5555", "HC_PORT_FILE": ""})

    assert (settings.port, settings.sources["port"]) == (5555, "env HC_PORT")


def test_a_bad_value_from_a_file_is_named_but_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("s3cr3t-not-a-port\n")

    result = run_hc("serve", env={"HC_PORT_FILE": str(path)})

    assert result.returncode == exits.CONFIG
    assert result.stderr == (f"hc serve: config error: port='(not shown)' (from file "
                             f"HC_PORT_FILE={path}): expected an integer from 1 to 65535\n")


def test_serve_and_probe_read_the_port_from_the_same_file(hc_serve: ServeFactory,
                                                          tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "port"
    path.write_text(f"{port}\n")
    env = {"HC_PORT_FILE": str(path), "HC_HOST": "127.0.0.1",
           "HC_STATE_DIR": str(tmp_path / "state")}

    hc_serve(env=env, address_flags=False, port=port, state_dir=tmp_path / "state")
    result = run_hc("healthcheck", env=env)

    assert result.returncode == exits.OK, result.stderr


def test_config_lists_every_option() -> None:
    result = run_hc("config")

    assert [line.removeprefix("# ").split(" = ")[0] for line in result.stdout.splitlines()] == [
        o.name for o in OPTIONS]


# -- precedence, through behaviour -----------------------------------------------------------
def test_serve_and_probe_read_the_same_file(hc_serve: ServeFactory, tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "hc.toml"
    path.write_text(f'host = "127.0.0.1"\nport = {port}\nstate_dir = "{tmp_path / "state"}"\n')

    hc_serve("--config", str(path), address_flags=False, port=port,
             state_dir=tmp_path / "state")
    result = run_hc("healthcheck", "--config", str(path))

    assert result.returncode == exits.OK, result.stderr


def test_env_port_beats_the_file_for_serve_and_probe(hc_serve: ServeFactory,
                                                     tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "hc.toml"
    path.write_text(f'host = "127.0.0.1"\nport = {free_port()}\n'
                    f'state_dir = "{tmp_path / "state"}"\n')
    env = {"HC_CONFIG": str(path), "HC_PORT": str(port)}

    hc_serve(env=env, address_flags=False, port=port, state_dir=tmp_path / "state")
    result = run_hc("healthcheck", env=env)

    assert result.returncode == exits.OK, result.stderr


def test_flag_port_beats_the_env_for_serve(hc_serve: ServeFactory, tmp_path: Path) -> None:
    port = free_port()

    service = hc_serve("--host", "127.0.0.1", "--port", str(port), "--state-dir",
                       str(tmp_path / "state"), env={"HC_PORT": str(free_port())},
                       address_flags=False, port=port, state_dir=tmp_path / "state")

    assert service.get("/livez").status == 200


# -- bad input: one line, the documented exit code -------------------------------------------
BAD_INPUTS = [
    # (id, arguments, env, exit code, part of the message)
    ("serve-unknown-flag", ["serve", "--bogus"], {}, exits.USAGE, "No such option: --bogus"),
    ("probe-unknown-flag", ["healthcheck", "--bogus"], {}, exits.FAILURE,
     "hc healthcheck: No such option: --bogus (see hc healthcheck --help)"),
    ("probe-flag-without-value", ["healthcheck", "--state-dir", "{tmp}", "--port"], {},
     exits.FAILURE, "Option '--port' requires an argument."),
    ("probe-extra-argument", ["healthcheck", "now"], {}, exits.FAILURE,
     "Got unexpected extra argument (now)"),
    ("probe-value-for-a-switch", ["healthcheck", "--verbose=yes"], {}, exits.FAILURE,
     "Option '--verbose' does not take a value."),
    ("serve-port-out-of-range", ["serve", "--port", "70000"], {}, exits.CONFIG,
     "port='70000' (from flag --port): expected an integer from 1 to 65535"),
    ("probe-port-out-of-range", ["healthcheck", "--port", "70000"], {}, exits.FAILURE,
     "port='70000'"),
    ("serve-port-not-a-number", ["serve", "--port", "http"], {}, exits.CONFIG, "port='http'"),
    ("serve-env-port-not-a-number", ["serve"], {"HC_PORT": "x"}, exits.CONFIG,
     "(from env HC_PORT)"),
    ("probe-timeout-not-a-number", ["healthcheck", "--timeout", "soon"], {}, exits.FAILURE,
     "timeout='soon'"),
    ("probe-timeout-zero", ["healthcheck", "--timeout", "0"], {}, exits.FAILURE,
     "expected a number from 0.1 to 60"),
    ("probe-unknown-mode", ["healthcheck", "--mode", "alive"], {}, exits.FAILURE,
     "expected one of live, ready, startup"),
    ("serve-unknown-log-level", ["serve", "--log-level", "loud"], {}, exits.CONFIG,
     "log_level='loud'"),
    ("serve-lag-warn-above-fail", ["serve", "--loop-lag-warn", "3", "--loop-lag-fail", "2"], {},
     exits.CONFIG, "must not exceed loop_lag_fail"),
    ("serve-invalid-toml", ["serve", "--config", "{tmp}/invalid.toml"], {}, exits.CONFIG,
     "invalid TOML"),
    ("probe-invalid-toml", ["healthcheck", "--config", "{tmp}/invalid.toml"], {},
     exits.FAILURE, "invalid TOML"),
    ("serve-invalid-toml-from-env", ["serve"], {"HC_CONFIG": "{tmp}/invalid.toml"},
     exits.CONFIG, "invalid TOML"),
    ("serve-missing-toml", ["serve", "--config", "{tmp}/missing.toml"], {}, exits.CONFIG,
     "cannot read: No such file or directory"),
    ("probe-unreadable-toml", ["healthcheck", "--config", "{tmp}"], {}, exits.FAILURE,
     "cannot read: Is a directory"),
    ("serve-unknown-toml-key", ["serve", "--config", "{tmp}/unknown.toml"], {}, exits.CONFIG,
     "colour=1 (from {tmp}/unknown.toml): unknown key"),
    ("probe-unknown-toml-key", ["healthcheck", "--config", "{tmp}/unknown.toml"], {},
     exits.FAILURE, "unknown key"),
    ("serve-huge-toml-number", ["serve", "--config", "{tmp}/huge.toml"], {}, exits.CONFIG,
     "expected a number from 0 to 86400"),
    ("serve-env-file-missing", ["serve"], {"HC_PORT_FILE": "{tmp}/missing"}, exits.CONFIG,
     "port='{tmp}/missing' (from env HC_PORT_FILE): cannot read: No such file or directory"),
    ("probe-env-file-missing", ["healthcheck"], {"HC_TIMEOUT_FILE": "{tmp}/missing"},
     exits.FAILURE, "timeout='{tmp}/missing' (from env HC_TIMEOUT_FILE): cannot read"),
    ("serve-env-file-a-directory", ["serve"], {"HC_TARGET_FILE": "{tmp}"}, exits.CONFIG,
     "(from env HC_TARGET_FILE): cannot read: Is a directory"),
    ("serve-env-and-env-file", ["serve"], {"HC_TARGET": "", "HC_TARGET_FILE": "{tmp}/huge.toml"},
     exits.CONFIG, "(from env HC_TARGET_FILE): HC_TARGET is set too; set one of them"),
    ("serve-config-file-named-by-a-file", ["serve"], {"HC_CONFIG_FILE": "{tmp}/config-path"},
     exits.CONFIG, "invalid TOML"),
    ("serve-unwritable-state-dir", ["serve", "--state-dir", "{tmp}/a-file/state"], {},
     exits.CONFIG, "cannot be created: Not a directory"),
    # rows of issue 10
    ("serve-config-not-utf8", ["serve", "--config", "{tmp}/binary.toml"], {}, exits.CONFIG,
     "config='{tmp}/binary.toml' (from flag --config): not UTF-8 text (byte 0xff at offset 0)"),
    ("serve-config-not-utf8-from-env", ["serve"], {"HC_CONFIG": "{tmp}/binary.toml"},
     exits.CONFIG, "(from env HC_CONFIG): not UTF-8 text"),
    ("probe-config-not-utf8", ["healthcheck", "--config", "{tmp}/binary.toml"], {},
     exits.FAILURE, "not UTF-8 text"),
    ("config-config-not-utf8", ["config", "--config", "{tmp}/binary.toml"], {}, exits.CONFIG,
     "not UTF-8 text"),
    ("serve-target-interval-too-long", ["serve", "--target", "tcp://127.0.0.1:1,interval=1e308"],
     {}, exits.CONFIG, "expected a number from 0.1 to 86400"),
    ("config-target-interval-too-long", ["config", "--target", "tcp://127.0.0.1:1,interval=1e308"],
     {}, exits.CONFIG, "hc config: config error: interval='1e308' (from flag --target, target "
     "tcp://127.0.0.1:1): expected a number from 0.1 to 86400"),
    ("config-target-password-with-a-raw-slash", ["config", "--target", "redis://:p/w@127.0.0.1"],
     {}, exits.CONFIG, "hc config: config error: target='redis://...' (from flag --target): the "
     "password holds a character that ends its part of the URL"),
    ("serve-check-interval-too-long", ["serve"], {"HC_CHECK_INTERVAL": "1e308"}, exits.CONFIG,
     "check_interval='1e308' (from env HC_CHECK_INTERVAL): expected a number from 0.05 to 86400"),
    ("serve-toml-target-and-targets", ["serve", "--config", "{tmp}/targets.toml"], {},
     exits.CONFIG, "sets target again, as 'target' does; keep one of them"),
    ("serve-toml-dashes-and-underscores", ["serve", "--config", "{tmp}/twice.toml"], {},
     exits.CONFIG, "log-level='info' (from {tmp}/twice.toml): sets log_level again"),
    ("serve-lag-warn-above-default-fail", ["serve", "--loop-lag-warn", "3"], {}, exits.CONFIG,
     "loop_lag_warn=3.0 (from flag --loop-lag-warn): must not exceed loop_lag_fail=2.0 "
     "(from default)"),
    ("serve-heartbeat-max-age-below-the-beat", ["serve", "--heartbeat-max-age", "0.4"], {},
     exits.CONFIG, "heartbeat_max_age=0.4 (from flag --heartbeat-max-age): expected at least 1: "
     "the watcher's loop beats every 0.5 s"),
    ("serve-state-dir-is-a-file", ["serve", "--state-dir", "{tmp}/a-file"], {}, exits.CONFIG,
     "state dir {tmp}/a-file is not a directory"),
    ("serve-state-dir-writable-by-all", ["serve", "--state-dir", "{tmp}/open"], {},
     exits.CONFIG, "state dir {tmp}/open is writable by others (mode 0777)"),
    ("serve-port-with-underscore", ["serve"], {"HC_PORT": "2_0100"}, exits.CONFIG,
     "port='2_0100' (from env HC_PORT): expected an integer from 1 to 65535"),
    ("serve-port-in-arabic-indic-digits", ["serve"], {"HC_PORT": "\u0662\u0660\u0661"},
     exits.CONFIG, "(from env HC_PORT): expected an integer from 1 to 65535"),
    ("serve-flag-without-value", ["serve", "--state-dir", "{tmp}", "--port"], {}, exits.USAGE,
     "hc serve: Option '--port' requires an argument (see hc serve --help)"),
    ("probe-url-from-env", ["healthcheck"], {"HC_URL": "https://example.com/"}, exits.FAILURE,
     "url='https://example.com/' (from env HC_URL): expected http://host[:port]/path"),
    ("probe-url-with-credentials", ["healthcheck", "--url", "http://ops:s3cret@127.0.0.1:1/"],
     {}, exits.FAILURE, "url='http://ops:***@127.0.0.1:1/' (from flag --url): expected no "
     "user or password (the probe sends none)"),
    ("probe-url-with-mode", ["healthcheck", "--url", "http://127.0.0.1:1/", "--mode", "live"],
     {}, exits.FAILURE, "url (from flag --url) and mode (from flag --mode) cannot be combined"),
    ("probe-url-with-uds-from-env", ["healthcheck", "--url", "http://127.0.0.1:1/"],
     {"HC_UDS": "/run/hc.sock"}, exits.FAILURE,
     "url (from flag --url) and uds (from env HC_UDS) cannot be combined"),
    ("probe-missing-state-file", ["healthcheck", "--port", "{busy}", "--timeout", "0.5",
                                  "--state-dir", "{tmp}/empty"], {}, exits.FAILURE,
     "is missing (service not running?)"),
    ("serve-port-in-use", ["serve", "--host", "127.0.0.1", "--port", "{busy}"], {},
     exits.FAILURE, "Address already in use"),
    ("serve-bad-host-name", ["serve", "--host", "a..b"], {}, exits.FAILURE,
     "invalid host name"),
    ("probe-bad-host-name", ["healthcheck", "--host", "a..b"], {}, exits.FAILURE,
     "invalid host name"),
    ("serve-unix-socket-path-too-long", ["serve", "--uds", "/tmp/" + "s" * 120], {},
     exits.FAILURE, "path too long"),
    ("probe-url-not-http", ["healthcheck", "--url", "https://example.com/"], {}, exits.FAILURE,
     "expected http://host[:port]/path"),
    ("probe-url-port-out-of-range", ["healthcheck", "--url", "http://127.0.0.1:99999/"], {},
     exits.FAILURE, "expected http://host[:port]/path"),
]


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    (tmp_path / "invalid.toml").write_text("port = = 1\n")
    (tmp_path / "unknown.toml").write_text("colour = 1\n")
    (tmp_path / "huge.toml").write_text(f"drain_delay = {10 ** 400}\n")
    (tmp_path / "a-file").write_text("")
    (tmp_path / "binary.toml").write_bytes(b"\xff\n")
    (tmp_path / "targets.toml").write_text('target = ["tcp://127.0.0.1:1"]\n'
                                           '[[targets]]\nurl = "tcp://127.0.0.1:2"\n')
    (tmp_path / "twice.toml").write_text('log_level = "debug"\nlog-level = "info"\n')
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    (tmp_path / "config-path").write_text(f"{tmp_path / 'invalid.toml'}\n")
    return tmp_path


@pytest.mark.parametrize("case", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gives_one_line_and_the_documented_exit_code(
        case: tuple[list[str], dict[str, str], int, str], bad_files: Path,
        silent_port: int) -> None:
    arguments, env, code, message = case

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(bad_files)).replace("{busy}", str(silent_port))

    state = [] if "--state-dir" in arguments else ["--state-dir", str(bad_files / "state")]
    result = run_hc(*[fill(a) for a in arguments], *state,
                    env={k: fill(v) for k, v in env.items()})

    output = result.stderr + result.stdout
    assert result.returncode == code, output
    assert fill(message) in output
    assert output.count("\n") == 1 and output.endswith("\n"), output
    if output.startswith("unhealthy: "):  # what the probe found: stdout
        assert result.stderr == ""
    else:  # a mistake in the command line or the configuration: stderr
        assert result.stdout == ""
        assert output.startswith(("hc serve: ", "hc healthcheck: ", "hc config: "))


def test_unknown_flag_of_serve_names_the_flag_not_a_usage_block() -> None:
    result = run_hc("serve", "--bogus")

    assert result.stderr.startswith("hc serve: No such option: --bogus")
    assert "Usage:" not in result.stderr


def test_port_in_use_by_an_ipv6_listener_is_a_runtime_failure(tmp_path: Path) -> None:
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as busy:
        port = busy.getsockname()[1]
        result = run_hc("serve", "--host", "::1", "--port", str(port),
                        "--state-dir", str(tmp_path))

    assert result.returncode == exits.FAILURE
    assert result.stderr == f"hc serve: cannot listen on [::1]:{port}: Address already in use\n"


# -- the loader, in process ------------------------------------------------------------------
def test_probe_ignores_env_of_serve_only_options() -> None:
    settings = load(PROBE, env={"HC_DRAIN_DELAY": "not a number"})

    assert settings.drain_delay == 1.0


def test_bool_env_accepts_the_usual_words() -> None:
    assert load(PROBE, env={"HC_VERBOSE": "yes"}).verbose is True
    assert load(PROBE, env={"HC_VERBOSE": "off"}).verbose is False


def test_repeated_option_from_env_is_space_separated() -> None:
    settings = load(SERVE, env={"HC_TARGET": "redis://a:6379 tcp://b:5432"})

    assert settings.target == ("redis://a:6379", "tcp://b:5432")


def test_error_names_key_value_and_source() -> None:
    with pytest.raises(ConfigError) as caught:
        load(SERVE, {"port": "0"}, env={})

    assert str(caught.value) == ("port='0' (from flag --port): expected an integer "
                                 "from 1 to 65535")


def test_redact_hides_user_passwords_and_password_parameters() -> None:
    text = "redis://app:pw1@db:6379 and http://h/x?user=a&password=pw2&b=1"

    assert redact_url(text) == "redis://app:***@db:6379 and http://h/x?user=a&password=***&b=1"


RAW = st.one_of(st.text(), st.integers(min_value=-(10 ** 500), max_value=10 ** 500),
                st.floats(), st.booleans(), st.lists(st.text(), max_size=3),
                st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(deadline=None)  # slow CI machines must not fail on time
@given(st.sampled_from(OPTIONS), RAW)
def test_option_parse_raises_only_one_line_config_errors(option: Option, raw: object) -> None:
    try:
        value = option.parse(raw, "test")
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    if isinstance(value, float):
        assert math.isfinite(value)


@settings(deadline=None)  # slow CI machines must not fail on time
@given(st.sampled_from([SERVE, PROBE, EVERY]),
       st.dictionaries(st.sampled_from([o.env for o in OPTIONS if o.name != "config"]),
                       st.text(alphabet=st.characters(blacklist_characters="\x00")),
                       max_size=4))
def test_load_from_arbitrary_env_raises_only_config_error(command: str,
                                                          env: dict[str, str]) -> None:
    with contextlib.suppress(ConfigError):
        load(command, env=env)


@settings(deadline=None)  # slow CI machines must not fail on time
@given(st.text())
def test_redact_never_raises(text: str) -> None:
    assert isinstance(redact_url(text), str)


PASSWORD = st.from_regex(r"[A-Za-z0-9%!$&'()*+,;=~._-]{8,20}", fullmatch=True)


@settings(deadline=None)  # slow CI machines must not fail on time
@given(st.sampled_from(["redis", "rediss", "http", "https", "amqp"]),
       st.from_regex(r"[a-z]{0,8}", fullmatch=True), PASSWORD, st.text(max_size=30))
def test_redact_hides_any_password_in_a_url(scheme: str, user: str, password: str,
                                            around: str) -> None:
    text = f"{around} {scheme}://{user}:{password}@db.internal:1/0 {around}"

    assert f":{password}@" not in redact_url(text)


# -- `hc config`: TOML for the file, JSON on demand, secrets hidden in both -----------------
def test_config_prints_toml_that_the_config_file_takes(tmp_path: Path) -> None:
    result = run_hc("config", "--port", "1234", "--target", "tcp://127.0.0.1:1,name=db",
                    "--verbose", env={"HC_LOG_LEVEL": "debug"})
    path = tmp_path / "pasted.toml"
    path.write_text(result.stdout)

    pasted = load(EVERY, {"config": str(path)}, env={})

    assert result.returncode == exits.OK, result.stderr
    assert (pasted.port, pasted.target, pasted.verbose, pasted.log_level) == (
        1234, ("tcp://127.0.0.1:1,name=db",), True, "debug")
    assert "port = 1234  # flag --port" in result.stdout.splitlines()


def test_config_json_gives_every_setting_its_value_and_source() -> None:
    result = run_hc("config", "--json", "--port", "1234")

    settings = json.loads(result.stdout)
    assert list(settings) == [o.name for o in OPTIONS]
    assert settings["port"] == {"value": 1234, "source": "flag --port"}
    assert settings["json"] == {"value": False, "source": "default"}


@pytest.mark.parametrize("as_json", [False, True], ids=["toml", "json"])
def test_config_hides_every_part_of_passwords_holding_at_signs(as_json: bool) -> None:
    result = run_hc("config", *(["--json"] if as_json else []),
                    "--target", "redis://:p@ssw0rd@127.0.0.1:6379",
                    "--url", "http://ops:pa@ss@127.0.0.1:1/livez")

    assert result.returncode == exits.OK, result.stderr
    for fragment in ("p@ss", "ssw0rd", "pa@ss", ":pa"):
        assert fragment not in result.stdout
    assert "redis://:***@127.0.0.1:6379" in result.stdout
    assert "http://ops:***@127.0.0.1:1/livez" in result.stdout


@pytest.mark.parametrize("password", ["Xq7/zR9w", "Xq7?zR9w", "Xq7#zR9w", "Xq7@zR9w/Kp4"])
def test_a_password_with_a_raw_url_delimiter_is_refused_without_showing_it(
        password: str, tmp_path: Path) -> None:
    result = run_hc("serve", "--state-dir", str(tmp_path),
                    "--target", f"redis://:{password}@127.0.0.1:6379")

    assert result.returncode == exits.CONFIG
    assert "percent-encode it" in result.stderr
    for fragment in ("Xq7", "zR9w", "Kp4"):
        assert fragment not in result.stderr


def test_redact_keeps_the_text_around_a_password_parameter() -> None:
    line = "target redis://h/0?password=secret, non-critical)"

    assert redact_url(line) == "target redis://h/0?password=***, non-critical)"


def test_an_unknown_hc_variable_is_named_with_the_closest_known_one(
        hc_serve: ServeFactory) -> None:
    shown = run_hc("config", env={"HC_TARGETS": "tcp://127.0.0.1:1", "HC_PROT": "1"})
    service = hc_serve(env={"HC_TARGETS": "tcp://127.0.0.1:1"})

    assert ("hc config: warning: unknown environment variable HC_PROT ignored (did you mean "
            "HC_PORT?)") in shown.stderr
    assert "unknown environment variable HC_TARGETS ignored (did you mean HC_TARGET?)" \
        in shown.stderr
    assert "HC_TARGETS ignored (did you mean HC_TARGET?)" in service.log()


def test_a_setting_read_from_a_file_is_no_unknown_variable() -> None:
    assert unknown_env({"HC_TARGET_FILE": "/run/secrets/targets", "HC_PORT": "1"}) == []


def test_levels_and_modes_are_read_in_any_case() -> None:
    assert load(SERVE, env={"HC_LOG_LEVEL": "INFO"}).log_level == "info"
    assert load(PROBE, {"mode": "Live"}, env={}).mode == "live"



# -- properties: any file, any environment -> a setting or one line and the documented code --
TOML_VALUES = st.recursive(
    st.one_of(st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["url", "name", "x"]), inner,
                                            max_size=2)),
    max_leaves=5)
FILE_KEYS = st.sampled_from([*(o.name for o in OPTIONS), *(o.name.replace("_", "-")
                                                        for o in OPTIONS), "targets", "colour"])


def toml_document(values: dict[str, object]) -> str:
    """A TOML document of `values` (every key at the top, inline tables)."""
    def value(item: object) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        if isinstance(item, list):
            return "[" + ", ".join(map(value, item)) + "]"
        if isinstance(item, dict):
            return "{" + ", ".join(f"{k} = {value(v)}" for k, v in item.items()) + "}"
        return json.dumps(item)
    return "".join(f'"{key}" = {value(item)}\n' for key, item in values.items())


@settings(deadline=None)  # slow CI machines must not fail on time
@given(st.dictionaries(FILE_KEYS, TOML_VALUES, max_size=4))
def test_any_config_file_gives_settings_or_one_config_error(values: dict[str, object]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(toml_document(values))
    try:
        load(SERVE, {"config": handle.name}, env={})
    except ConfigError as exc:
        assert "\n" not in str(exc)
    finally:
        os.unlink(handle.name)


@settings(deadline=None, max_examples=25)  # each example is a process
@given(st.dictionaries(st.sampled_from([o.env for o in OPTIONS if o.name != "config"]),
                       st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
                               max_size=12), max_size=3))
def test_hc_config_exits_0_or_78_with_one_line_whatever_the_environment(
        env: dict[str, str]) -> None:
    result = run_hc("config", env=env)

    assert result.returncode in (exits.OK, exits.CONFIG), result.stderr
    assert "Traceback" not in result.stderr
    if result.returncode == exits.CONFIG:
        assert result.stderr.startswith("hc config: config error: ")
        assert result.stderr.count("\n") == 1
