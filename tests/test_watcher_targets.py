"""Targets: specs and tables become Targets; malformed ones are config errors, bad URLs are
per-target errors; passwords never show."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hc.config import BY_NAME, SERVE, ConfigError, load, redact_url
from hc.watcher import Target, parse_targets
from hc.watcher._sentinel import Login, SentinelUrl, parse_url
from hc.watcher._targets import COMMON_KEYS, KINDS

README = Path(__file__).parent.parent / "README.md"


def targets(*specs: Any, **env: str) -> list[Target]:
    return parse_targets(load(SERVE, {"target": list(specs)}, env=env))


def only(spec: str) -> Target:
    (target,) = targets(spec)
    return target


def test_a_spec_sets_every_field() -> None:
    target = only("http://127.0.0.1:8000/healthz,name=api,interval=3,timeout=0.5,critical,"
                  "expect=200-204,ca_file=/etc/ca.pem")
    assert (target.name, target.kind, target.interval, target.timeout, target.critical,
            dict(target.options), target.error) == \
        ("api", "http", 3.0, 0.5, True,
         {"expect": (200, 204), "ca_file": "/etc/ca.pem", "password_file": ""}, "")


def test_defaults_come_from_the_settings() -> None:
    target = only("redis://127.0.0.1:6379")
    assert (target.interval, target.timeout, target.critical) == (5.0, 2.0, False)
    assert dict(target.options) == {"role": "", "lag_warn": 16 * 2**20, "lag_fail": 0,
                                    "last_io_warn": 20.0, "last_io_fail": 0.0, "ca_file": "",
                                    "password_file": ""}
    tuned, redis, sentinel = parse_targets(load(SERVE, {
        "target": ["tcp://h:1", "redis://h", "sentinel://h/m"], "target_interval": "7",
        "target_timeout": "1", "redis_lag_fail": "9"}, env={}))
    assert (tuned.interval, tuned.timeout, redis.options["lag_fail"]) == (7.0, 1.0, 9)
    # the primary behind a sentinel:// target is judged by the same settings
    assert (sentinel.options["lag_warn"], sentinel.options["lag_fail"]) == (16 * 2**20, 9)


@pytest.mark.parametrize(("url", "kind", "name"), [
    ("redis://127.0.0.1:6379/2", "redis", "redis-127.0.0.1-6379-2"),
    ("rediss://cache.example:6380", "redis", "rediss-cache.example-6380"),
    ("unix:///run/redis/redis.sock?db=1", "redis", "unix-redis.sock"),
    ("https://api.example/v1/health", "http", "https-api.example-v1-health"),
    ("tcp://[::1]:5432", "tcp", "tcp-::1-5432"),
    ("sentinel://10.0.0.1,10.0.0.2:26380/mymaster", "sentinel", "sentinel-mymaster"),
    ("redis+sentinel://:pw@h:26379/cache", "sentinel", "sentinel-cache"),
])
def test_the_scheme_picks_the_kind_and_the_url_a_readable_name(url: str, kind: str,
                                                               name: str) -> None:
    target = only(url)
    assert (target.kind, target.name, target.error) == (kind, name, "")


def test_a_toml_table_has_the_same_keys_as_a_spec(tmp_path: Path) -> None:
    config = tmp_path / "hc.toml"
    config.write_text('[[targets]]\nurl = "redis://127.0.0.1:6379"\nname = "cache"\n'
                      'critical = true\ninterval = 1\nlag_warn = 10\n'
                      '[[targets]]\nurl = "https://h/x"\nexpect = 204\n')
    cache, web = parse_targets(load(SERVE, {"config": str(config)}, env={}))
    assert (cache.name, cache.critical, cache.interval, cache.options["lag_warn"]) == \
        ("cache", True, 1.0, 10)
    assert web.options["expect"] == (204, 204)


def test_env_holds_space_separated_specs() -> None:
    found = targets(HC_TARGET="tcp://127.0.0.1:1,name=a tcp://127.0.0.1:2,name=b")
    assert [t.name for t in found] == ["a", "b"]


@pytest.mark.parametrize(("url", "error"), [
    ("foo://bar:1", "unsupported scheme 'foo'"),
    ("localhost:6379", "not a URL"),
    ("tcp://127.0.0.1:99999", "bad port '99999'"),
    ("tcp://127.0.0.1:abc", "bad port 'abc'"),
    ("tcp://127.0.0.1:0", "bad port '0'"),
    ("tcp://127.0.0.1", "tcp:// needs a port"),
    ("http://:8080/", "http:// needs a host"),
    ("redis://127.0.0.1:6379/x", "bad database '/x'"),
    ("unix://", "unix:// needs a socket path"),
    ("sentinel://h1:26379,h2:26379", "sentinel:// needs the master's name"),
    ("sentinel://h1:26379,h2:x/mymaster", "bad sentinel address 'h2:x'"),
    ("sentinel://h1:26379,,h2/mymaster", "bad sentinel address ''"),
    ("sentinel://h1/a/b", "sentinel:// needs the master's name"),
])
def test_an_unusable_url_is_a_per_target_error(url: str, error: str) -> None:
    target = only(url)
    assert error in target.error


@pytest.mark.parametrize("entry", [
    "tcp://h:1,interval=soon",
    "tcp://h:1,interval=0",
    "tcp://h:1,colour=blue",
    "tcp://h:1,expect=200",
    "redis://h:1,expect=200",
    "https://h/,lag_warn=10",
    "redis://h:1,role=master",
    "sentinel://h:1/m,role=primary",
    "sentinel://h:1/m,ca_file=/ca.pem",
    "redis://h:1,last_io_fail=-1",
    "tcp://h:1,expect=700",
    "tcp://h:1,lag_warn=-1",
    "tcp://h:1,critical=maybe",
    "tcp://h:1,oops",
    "tcp://h:1,name=two words",
    "",
    {"name": "no-url"},
    {"url": 5},
    {"url": "tcp://h:1", "interval": True},
    7,
])
def test_a_malformed_entry_is_a_config_error(entry: Any) -> None:
    with pytest.raises(ConfigError):
        targets(entry)


def test_a_sentinel_spec_keeps_the_commas_of_its_hosts_and_reads_its_keys() -> None:
    target = only("sentinel://:s-pw@10.0.0.1,10.0.0.2:26380,[::1]/my%20master?password=d-pw,"
                  "name=ha,critical,lag_warn=5,last_io_fail=9")
    assert (target.kind, target.name, target.critical, target.options["lag_warn"],
            target.options["last_io_fail"], target.error) == ("sentinel", "ha", True, 5, 9.0, "")
    assert parse_url(target.url) == SentinelUrl(
        (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26379)), "my master",
        Login("", "s-pw"), Login("", "d-pw"))


def test_a_key_of_another_kind_is_refused_naming_the_keys_of_this_kind() -> None:
    with pytest.raises(ConfigError) as caught:
        targets("tcp://h:1,expect=200")
    assert str(caught.value) == ("expect='(not shown)' (from flag --target, target "
                                 "tcp://h:1): unknown key for tcp targets; expected one of "
                                 "name, interval, timeout, critical")


def test_two_targets_may_not_share_a_name() -> None:
    with pytest.raises(ConfigError, match="distinct name"):
        targets("tcp://127.0.0.1:1", "tcp://127.0.0.1:1")


@pytest.mark.parametrize("url", [
    "redis://:hunter2-pw@127.0.0.1:6379/0",
    "redis://default:hunter2-pw@127.0.0.1:6379",
    "http://user:hunter2-pw@127.0.0.1/x",
    "unix://:hunter2-pw@/run/redis.sock",
    "redis://127.0.0.1:6379?password=hunter2-pw",
    "redis://:hunter2%2Dpw@127.0.0.1:6379",
    "sentinel://:hunter2-pw@127.0.0.1:1,127.0.0.1:2/mymaster",
    "redis+sentinel://127.0.0.1:1/mymaster?password=hunter2-pw",
])
def test_passwords_are_hidden_in_what_a_target_shows(url: str) -> None:
    target = only(url)
    message = f"cannot log in to {url} with hunter2-pw"
    assert "hunter2" not in target.shown + target.name + repr(target) + target.scrub(message)


def test_a_malformed_entry_does_not_quote_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        targets("redis://:hunter2-pw@127.0.0.1:6379,colour=blue")
    with pytest.raises(ConfigError) as caught_too:
        targets({"name": "x", "password": "hunter2-pw", "urn": "redis://:hunter2-pw@h:1"})
    with pytest.raises(ConfigError) as caught_three:
        targets("redis://127.0.0.1:6379,password=hunter2-pw")
    with pytest.raises(ConfigError) as caught_four:
        targets("redis://:hun,ter2-pw@127.0.0.1:6379")
    with pytest.raises(ConfigError) as caught_five:
        targets("sentinel://:hunter2-pw@h1:1,h2:2/m?password=hunter2-pw,colour=blue")
    shown = [str(c.value) for c in (caught, caught_too, caught_three, caught_four,
                                    caught_five)]
    assert not [s for s in shown if "hunter2" in s or "ter2" in s]


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read: No such file or directory"),
    ("", "empty"),
    ("\n", "empty"),
    (b"\xff\xfe", "not UTF-8 text"),
], ids=["missing", "empty", "newline", "binary"])
def test_a_password_file_that_cannot_be_used_is_a_config_error_naming_the_path(
        tmp_path: Path, content: str | bytes | None, reason: str) -> None:
    path = tmp_path / "password"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        targets(f"redis://127.0.0.1:6379,password_file={path}")
    assert str(caught.value) == (f"password_file='{path}' (from flag --target, target "
                                 f"redis://127.0.0.1:6379): {reason}")


def test_a_password_file_is_a_key_of_the_kinds_that_log_in(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("hunter2-pw\n")
    for url in ("redis://h:1", "sentinel://h:1/m", "https://h/"):
        assert only(f"{url},password_file={path}").options["password_file"] == str(path)
    with pytest.raises(ConfigError, match="unknown key for tcp targets"):
        targets(f"tcp://h:1,password_file={path}")


def test_a_password_read_from_a_file_is_hidden_wherever_a_url_password_is(
        tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("hunter2-in-a-file\n")
    target = only(f"redis://127.0.0.1:6379,password_file={path}")
    message = "AUTH hunter2-in-a-file refused"
    assert target.scrub(message) == "AUTH *** refused"
    assert redact_url(message) == "AUTH *** refused"  # what the log formatter applies


def test_the_readme_lists_every_target_key_with_its_kinds() -> None:
    text = README.read_text()
    table = text[text.index("| key | kinds |"):].split("\n\n")[0].splitlines()[2:]
    listed: dict[str, set[str]] = {}
    for row in table:
        keys, kinds = row.strip("|").split("|")[:2]
        for key in re.findall(r"`(\w+)`", keys):
            listed[key] = set(kinds.strip().split(", "))
    expected = {key: {"all"} for key in COMMON_KEYS}
    for kind in KINDS.values():
        for option in kind.keys:
            expected.setdefault(option.name, set()).add(kind.name)
    assert listed == expected


def test_the_target_help_names_every_key() -> None:
    text = BY_NAME["target"].help
    keys = [*COMMON_KEYS, *(o.name for kind in KINDS.values() for o in kind.keys)]
    assert [key for key in keys if f"{key}=" not in text and key != "critical"] == []


# -- properties: any spec, any password -----------------------------------------------------
PASSWORDS = st.text(alphabet="abcXYZ0129@/#?:%!$&'()*+;=~._-", min_size=6, max_size=16).filter(
    lambda p: any(c in "XYZ" for c in p))
"""Each holds an X, Y or Z, which no key value below does: a value never repeats a password."""
SCHEMES = st.sampled_from(["redis", "rediss", "sentinel", "http", "https", "tcp", "unix", "ftp",
                           "redis+sentinel", ""])
HOSTS = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "", "db.internal", "a..b"])
PORTS = st.one_of(st.just(""), st.integers(min_value=0, max_value=99999).map(str),
                  st.sampled_from(["x", "-1", "65536"]))
KEYS = st.lists(st.tuples(st.sampled_from([*COMMON_KEYS, "expect", "ca_file", "role",
                                           "lag_warn", "last_io_fail", "colour", ""]),
                          st.text(alphabet="0129.e-xyz/", max_size=6)), max_size=3)


@st.composite
def specs_with_passwords(draw: st.DrawFn) -> tuple[str, str]:
    """(a target spec of any shape, the password it holds in its userinfo or ?password=)."""
    scheme, password, host, port = draw(SCHEMES), draw(PASSWORDS), draw(HOSTS), draw(PORTS)
    path = draw(st.sampled_from(["", "/0", "/mymaster", "/x?y=1"]))
    netloc = f"{host}:{port}" if port else host
    if draw(st.booleans()):
        url = f"{scheme}://{netloc}{path}{'&' if '?' in path else '?'}password={password}"
    else:
        url = f"{scheme}://:{password}@{netloc}{path}"
    return ",".join([url, *(f"{k}={v}" for k, v in draw(KEYS))]), password


@settings(deadline=None, max_examples=300)  # slow CI machines must not fail on time
@given(specs_with_passwords())
def test_any_spec_gives_a_target_or_a_config_error_never_showing_the_password(
        case: tuple[str, str]) -> None:
    spec, password = case
    try:
        parsed = targets(spec)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        shown = str(exc)
    else:
        shown = " ".join(f"{t.name} {t.shown} {t.error} {dict(t.options)}" for t in parsed)
    assert password not in shown
