"""The ASGI types of hc's HTTP side, for apps mounted with `HealthApp(routes=..., fallback=...)`
and for hc's own routes (the watcher's /metrics and /targets).

Plain aliases, as in the ASGI spec: any ASGI framework's apps fit them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

Scope: TypeAlias = MutableMapping[str, Any]
"""The connection: `type`, `method`, `path`, `root_path`, `query_string`, `headers`..."""
Message: TypeAlias = MutableMapping[str, Any]
"""One event received from or sent to the server (`http.request`, `http.response.start`...)."""
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
