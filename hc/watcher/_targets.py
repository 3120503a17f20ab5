"""Targets: what to watch, parsed from `--target` specs and `[[targets]]` tables.

A spec is `URL[,name=N][,interval=S][,timeout=S][,critical][,expect=200-299][,ca_file=PATH]
[,lag_warn=BYTES][,lag_fail=BYTES]` (a comma inside the URL is written %2C); a TOML table has
the same keys plus `url`. A spec or table that is malformed (unknown key, wrong type, no url)
raises ConfigError, so `hc serve` does not start. A well-formed entry whose URL cannot be checked
(unknown scheme, bad port) still becomes a Target, with `error` set: it fails every round with
that message while the other targets are watched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from hc.config import ConfigError, Option, Settings, redact_url

KINDS = {"redis": "redis", "rediss": "redis", "unix": "redis", "http": "http",
         "https": "http", "tcp": "tcp"}
"""URL scheme -> the kind of check it gets."""

_FIELDS = {
    option.name: option for option in (
        Option("url", str, None, "", frozenset()),
        Option("name", str, None, "", frozenset()),
        Option("interval", float, None, "", frozenset(), minimum=0.1),
        Option("timeout", float, None, "", frozenset(), minimum=0.01),
        Option("critical", bool, None, "", frozenset()),
        Option("ca_file", str, None, "", frozenset()),
        Option("lag_warn", int, None, "", frozenset(), minimum=0),
        Option("lag_fail", int, None, "", frozenset(), minimum=0),
    )
}
"""The keys of a target, converted and range-checked like every other option."""
KEYS = (*_FIELDS, "expect")

_BAD_NAME = re.compile(r"[\s/?#]")
_NAME_JUNK = re.compile(r"[^A-Za-z0-9._:\[\]-]+")


@dataclass(frozen=True)
class Target:
    """One dependency to watch. `url` may hold a password: show `shown`, pass text through
    `scrub` before it leaves the process."""

    name: str
    kind: str
    """redis, http or tcp; empty when the URL cannot be checked (see `error`)."""
    shown: str
    """The URL with its password hidden."""
    interval: float
    timeout: float
    critical: bool = False
    expect: tuple[int, int] = (200, 299)
    ca_file: str = ""
    lag_warn: int = 0
    lag_fail: int = 0
    error: str = ""
    """Why the URL cannot be checked; the target then fails with this message."""
    url: str = field(default="", repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        """`text` with this target's passwords (plain or URL-encoded) and any URL password
        hidden: for error messages of libraries that may quote what they were given."""
        return _scrub(text, self.secrets)


def parse_targets(settings: Settings) -> list[Target]:
    """The targets of `settings.target`, defaults taken from settings. Raises ConfigError."""
    source = settings.sources.get("target", "default")
    targets = [_parse(entry, source, settings) for entry in settings.target]
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise ConfigError("name", target.name, f"{source}, target {target.shown}",
                              "another target has this name; give each a distinct name=")
        seen.add(target.name)
    return targets


def _parse(entry: object, source: str, settings: Settings) -> Target:
    if isinstance(entry, str):
        raw = _split_spec(entry, source)
    elif isinstance(entry, Mapping):
        raw = dict(entry)
    else:
        raise ConfigError("target", entry, source, "expected a URL string or a table with url")
    if not isinstance(raw.get("url"), str) or not raw["url"].strip():
        raise ConfigError("target", f"keys {', '.join(map(str, raw))}", source,
                          "expected a url")
    url = raw["url"].strip()
    secrets = _secrets(url)
    where = f"{source}, target {_scrub(url, secrets)}"
    values: dict[str, Any] = {"expect": _expect(raw.pop("expect", "200-299"), where)}
    for key, value in raw.items():
        option = _FIELDS.get(key)
        if option is None:
            raise ConfigError(key, "(not shown)", where, "unknown target key; expected one of "
                              + ", ".join(KEYS))
        values[key] = option.parse(value, where)
    kind = KINDS.get(urlsplit(url).scheme.lower(), "")
    error = _url_problem(url)
    name = values.get("name") or _default_name(url, kind, error)
    if _BAD_NAME.search(name):
        raise ConfigError("name", name, where, "expected a name without spaces, / ? or #")
    return Target(
        name=name, kind=kind, shown=_scrub(url, secrets),
        interval=values.get("interval", settings.target_interval),
        timeout=values.get("timeout", settings.target_timeout),
        critical=values.get("critical", False), expect=values["expect"],
        ca_file=values.get("ca_file", ""),
        lag_warn=values.get("lag_warn", settings.redis_lag_warn),
        lag_fail=values.get("lag_fail", settings.redis_lag_fail),
        error=error, url=url, secrets=secrets,
    )


def _split_spec(spec: str, source: str) -> dict[str, Any]:
    url, *options = spec.split(",")
    raw: dict[str, Any] = {"url": url}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip()
        if key == "critical" and not sep:
            value = "true"
        elif not sep:
            raise ConfigError("target", redact_url(spec), source, "expected key=value after "
                              "each comma (a comma inside the URL is written %2C)")
        raw[key] = value.strip()
    return raw


def _expect(raw: object, where: str) -> tuple[int, int]:
    """`200-299` or `204`: the HTTP statuses that count as passing."""
    low, _, high = str(raw).partition("-")
    try:
        span = int(low), int(high or low)
    except ValueError:
        span = (0, 0)
    if not 100 <= span[0] <= span[1] <= 599:
        raise ConfigError("expect", raw, where, "expected a status or range like 200-299")
    return span


def _url_problem(url: str) -> str:
    """Why the URL cannot be checked, in one line; empty when it can."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    schemes = ", ".join(f"{k}://" for k in KINDS)
    if "://" not in url:
        return f"not a URL; expected one of {schemes}"
    if scheme not in KINDS:
        return f"unsupported scheme {scheme!r}; expected one of {schemes}"
    if scheme == "unix":
        return "" if parts.path else "unix:// needs a socket path"
    if not parts.hostname:
        return f"{scheme}:// needs a host"
    return _port_problem(parts, KINDS[scheme])


def _port_problem(parts: SplitResult, kind: str) -> str:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raw_port = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        return f"bad port {raw_port!r}; expected a number from 1 to 65535"
    if kind == "tcp" and port is None:
        return "tcp:// needs a port, as in tcp://host:port"
    if kind == "redis" and not re.fullmatch(r"/?|/\d+", parts.path):
        return f"bad database {parts.path!r}; expected /0, /1, ..."
    return ""


def _default_name(url: str, kind: str, error: str) -> str:
    """`scheme-host-port[-path]`, or `unix-<socket file>`: readable, free of secrets."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "unix":
        words = ["unix", parts.path.rstrip("/").rpartition("/")[2]]
    else:
        port = "" if error else str(parts.port or "")
        words = [parts.scheme.lower(), parts.hostname or "", port, *parts.path.split("/")]
    name = "-".join(_NAME_JUNK.sub("-", w).strip("-") for w in words if w.strip("/"))
    return name or kind or "target"


def _secrets(url: str) -> tuple[str, ...]:
    """The password of a URL (userinfo or ?password=) as written and decoded, longest first."""
    parts = urlsplit(url)
    found = set(parse_qs(parts.query).get("password", []))
    netloc = parts.netloc.rpartition("@")
    if netloc[1]:
        found.add(netloc[0].partition(":")[2])
    found |= {unquote(s) for s in found}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return redact_url(text)
