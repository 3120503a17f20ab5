"""Targets: what to watch, parsed from `--target` specs and `[[targets]]` tables, and the table
of the kinds of target.

A spec is `URL[,name=N][,interval=S][,timeout=S][,critical][,key=value...]` where the other
keys are those of the URL's kind (`expect=` of http, `role=` of redis, ...); a comma inside the
URL is written %2C, except between the hosts of a sentinel:// URL. A TOML table has the same
keys plus `url`. A spec or table that is malformed (unknown key, wrong type, no url) raises
ConfigError, so `hc serve` does not start. A well-formed entry whose URL cannot be checked
(unknown scheme, bad port) still becomes a Target, with `error` set: it fails every round with
that message while the other targets are watched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from hc.config import ConfigError, Option, Settings, redact_url, seconds
from hc.watcher._http import HTTP
from hc.watcher._kind import Kind, url_words
from hc.watcher._model import Target, scrub
from hc.watcher._redis import REDIS
from hc.watcher._sentinel import SENTINEL
from hc.watcher._tcp import TCP

KINDS: Mapping[str, Kind] = {kind.name: kind for kind in (REDIS, SENTINEL, HTTP, TCP)}
"""The kinds of target, by name."""
SCHEMES: Mapping[str, Kind] = {scheme: kind for kind in KINDS.values()
                               for scheme in kind.schemes}
"""URL scheme -> the kind of target it is."""

COMMON_KEYS = {
    option.name: option for option in (
        Option("name", str, None, "", frozenset()),
        seconds("interval", None, "", frozenset(), minimum=0.1),
        seconds("timeout", None, "", frozenset(), minimum=0.01),
        Option("critical", bool, None, "", frozenset()),
    )
}
"""The keys of every target besides `url`, converted and range-checked like every other
option."""
_ANY_KIND = {option.name: option for kind in KINDS.values() for option in kind.keys}
"""The keys a target of an unknown scheme may have: the URL fails, the entry is well-formed."""

_BAD_NAME = re.compile(r"[\s/?#]")
_NAME_JUNK = re.compile(r"[^A-Za-z0-9._:\[\]-]+")


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
    url = raw.pop("url").strip()
    if _raw_delimiter_in_password(url):
        shown = url.partition("://")[0] + "://..."  # every part of it may hold a password piece
        raise ConfigError("target", shown, source, "the password holds a character "
                          "that ends its part of the URL (/ ? # in user:password@, & # in "
                          "?password=): percent-encode it (%2F %3F %23 %26)")
    secrets = _secrets(url)
    where = f"{source}, target {scrub(url, secrets)}"
    kind = SCHEMES.get(urlsplit(url).scheme.lower())
    keys = {**COMMON_KEYS, **({o.name: o for o in kind.keys} if kind else _ANY_KIND)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        option = keys.get(key)
        if option is None:
            raise ConfigError(key, "(not shown)", where, _unknown_key(kind, keys))
        values[key] = option.parse(value, where)
    error = _url_problem(url, kind)
    name = values.pop("name", "") or _default_name(scrub(url, secrets), kind)
    if _BAD_NAME.search(name):
        raise ConfigError("name", name, where, "expected a name without spaces, / ? or #")
    return Target(
        name=name, kind=kind.name if kind else "", shown=scrub(url, secrets),
        interval=values.pop("interval", settings.target_interval),
        timeout=values.pop("timeout", settings.target_timeout),
        critical=values.pop("critical", False),
        options=MappingProxyType(_options(kind, values, settings)),
        error=error, url=url, secrets=secrets,
    )


def _unknown_key(kind: Kind | None, keys: Mapping[str, Option]) -> str:
    whose = f"{kind.name} targets" if kind else "targets"
    return f"unknown key for {whose}; expected one of " + ", ".join(keys)


def _options(kind: Kind | None, values: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The kind's keys: given, else from the settings, else their defaults."""
    if kind is None:
        return values
    return {**{o.name: o.default for o in kind.keys}, **kind.defaults(settings), **values}


def _split_spec(spec: str, source: str) -> dict[str, Any]:
    scheme, sep, rest = spec.partition("://")
    kind = SCHEMES.get(scheme.lower())
    start = 0
    if sep and kind is not None and kind.host_list:  # the hosts' commas belong to the URL
        path = rest.find("/")
        start = len(spec) if path < 0 else len(scheme) + len(sep) + path
    cut = spec.find(",", start)
    url, options = (spec, []) if cut < 0 else (spec[:cut], spec[cut + 1:].split(","))
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


def _raw_delimiter_in_password(url: str) -> bool:
    """Whether a password seems to hold a character that ends its part of the URL: `/`, `?`
    or `#` in `user:password@`, `&` or `#` in `?password=`. Parsed as it stands, a piece of
    the password would show as a host, port, path or parameter in every message. Signs of it
    (none is normal in a URL hc checks):
    - the host part is `:piece` or `user:piece` with a piece that is no port, and an `@` follows;
    - an `@` in the path, or in the query or fragment outside a `key=value`;
    - an empty `password=`, or after it a parameter without `=`, or a fragment.
    """
    _, sep, rest = url.partition("://")
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    cut = min((i for i in (tail.find("?"), tail.find("#")) if i >= 0), default=len(tail))
    path, after = tail[:cut], tail[cut + 1:]
    items = after.replace("#", "&").split("&")
    keys = [item.partition("=")[0].lower() if "=" in item else None for item in items]
    if "password" in keys:
        at = keys.index("password")
        if not items[at].partition("=")[2] or None in keys[at:] or "#" in tail:
            return True
    if not sep or "@" not in tail:
        return False
    if "@" in path or any("@" in item and "=" not in item.split("@")[0] for item in items):
        return True
    host, colon, port = netloc.rpartition(":")
    if "@" in netloc or not colon or "]" in port:
        return False  # a userinfo that ended where it should, no port, or an IPv6 literal
    return not host or not port.isdigit()


def _url_problem(url: str, kind: Kind | None) -> str:
    """Why the URL cannot be checked, in one line; empty when it can."""
    schemes = ", ".join(f"{s}://" for s in SCHEMES)
    if "://" not in url:
        return f"not a URL; expected one of {schemes}"
    parts = urlsplit(url)
    if kind is None:
        return f"unsupported scheme {parts.scheme.lower()!r}; expected one of {schemes}"
    return kind.url_problem(parts)


def _default_name(url: str, kind: Kind | None) -> str:
    """From the kind's words for the (scrubbed) URL (`scheme-host-port[-path]` by default):
    readable, free of secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a broken IPv6 literal: the target fails with its URL's problem
        return kind.name if kind else "target"
    words = (kind.name_words if kind else url_words)(parts)
    name = "-".join(_NAME_JUNK.sub("-", w).strip("-") for w in words if w.strip("/"))
    return name or (kind.name if kind else "target")


def _secrets(url: str) -> tuple[str, ...]:
    """The password of a URL (userinfo or ?password=) as written and decoded, longest first.
    Found by hand, not by urlsplit, which misses the userinfo when the scheme is odd."""
    query = urlsplit(url).query
    found = {value for key, _, value in (item.partition("=") for item in query.split("&"))
             if key.lower() == "password"}
    found |= set(parse_qs(query).get("password", []))  # `+` and %xx decoded
    rest = url.partition("://")[2] or url
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    userinfo, at, _ = rest[:end].rpartition("@")
    if at:
        found.add(userinfo.partition(":")[2])
    found |= {unquote(s) for s in found}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))
