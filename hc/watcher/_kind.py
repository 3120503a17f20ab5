"""The common interface of the kinds of target, and the URL checks they share.

A kind is one module (`_redis`, `_sentinel`, `_http`, `_tcp`) that ends with its `Kind`: the
schemes it checks, its own target keys, its prober and the metric series it reports. The table
of kinds is `_targets.KINDS`; adding a kind is one module plus one entry there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import SplitResult

from hc.config import Option, Settings
from hc.watcher._model import Prober, Series, Target


class Resource(Protocol):
    """Something probers share and the watcher closes (e.g. HTTP clients)."""

    async def close(self) -> None: ...


R = TypeVar("R", bound=Resource)


class Shared:
    """What the probers of one watcher share, made on first use and closed with the watcher."""

    def __init__(self) -> None:
        self._items: dict[type[Any], Any] = {}

    def get(self, cls: type[R]) -> R:
        """The one `cls()` of this watcher."""
        item = self._items.get(cls)
        if not isinstance(item, cls):
            item = self._items[cls] = cls()
        return item

    async def close(self) -> None:
        """Close everything shared; one failing to close does not keep the others open."""
        await asyncio.gather(*(item.close() for item in self._items.values()),
                             return_exceptions=True)
        self._items.clear()


def no_defaults(settings: Settings) -> Mapping[str, Any]:
    """A kind whose keys take no defaults from the settings."""
    return {}


def host_problem(parts: SplitResult) -> str:
    """Why `scheme://host[:port]` cannot be used (no host, bad port), or ""."""
    if not parts.hostname:
        return f"{parts.scheme.lower()}:// needs a host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raw_port = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        return f"bad port {raw_port!r}; expected a number from 1 to 65535"
    return ""


def url_words(parts: SplitResult) -> list[str]:
    """scheme, host, port and path: the words of a target's default name."""
    try:
        port = str(parts.port or "")
    except ValueError:
        port = ""
    return [parts.scheme.lower(), parts.hostname or "", port, *parts.path.split("/")]


@dataclass(frozen=True)
class Kind:
    """A kind of target, as the watcher and the target parser see it."""

    name: str
    """The `kind` label of its metrics and checks."""
    schemes: tuple[str, ...]
    prober: Callable[[Target, Shared], Prober]
    """Makes the prober of a target of this kind; returns an `Unusable` one, saying why,
    when the target cannot be checked (e.g. an unreadable CA file)."""
    keys: tuple[Option, ...] = ()
    """Its target keys besides url, name, interval, timeout and critical."""
    defaults: Callable[[Settings], Mapping[str, Any]] = no_defaults
    """Defaults of keys that come from the settings rather than from `keys`."""
    url_problem: Callable[[SplitResult], str] = host_problem
    """Why a URL of its scheme cannot be checked, in one line; "" when it can."""
    name_words: Callable[[SplitResult], list[str]] = url_words
    """The words of a target's default name (never a password)."""
    series: tuple[Series, ...] = ()
    """The metric series its probers' details report."""
    host_list: bool = False
    """Its URL may list hosts separated by commas (sentinel://a:1,b:2/name): in a --target
    spec, the commas before the URL's path belong to the URL."""


CA_FILE = Option("ca_file", str, "", "PEM file of the CAs to trust instead of the system's "
                 "(https://, rediss://).", frozenset())
"""A key of every kind that speaks TLS."""
