"""The health endpoints as a plain ASGI app, mountable in Starlette/FastAPI or served alone."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from hc import __version__
from hc.health import ENDPOINTS, JSON_TYPE, Health, as_json, text
from hc.server._responses import allows, plain_text, respond, wants_json
from hc.server.types import ASGIApp, Receive, Scope, Send

PROBE_PATHS = tuple(f"/{name}" for name in ENDPOINTS)
"""Paths whose requests are never access-logged (probes hit them every few seconds)."""


class HealthApp:
    """ASGI app serving /livez, /readyz, /startupz, /healthz (and /<endpoint>/<check>).

    `routes` adds exact paths (e.g. /metrics); other paths go to `fallback` or get a 404.
    """

    def __init__(self, health: Health, *, routes: Mapping[str, ASGIApp] | None = None,
                 fallback: ASGIApp | None = None) -> None:
        self.health = health
        self.routes = dict(routes or {})
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
            return
        path = _local_path(scope)
        parts = path.strip("/").split("/")
        if parts[0] in ENDPOINTS and len(parts) <= 2:
            await self._health(scope, send, parts[0], parts[1] if len(parts) == 2 else None)
        elif path in self.routes:
            await self.routes[path](scope, receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)
        else:
            await plain_text(scope, send, 404, "not found\n")

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fallback is not None:
            await self.fallback(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _health(self, scope: Scope, send: Send, endpoint: str, only: str | None) -> None:
        if not await allows(scope, send):
            return
        if only is not None and only not in self.health.names(endpoint):
            await plain_text(scope, send, 404, f"no check {only!r} in {endpoint}\n")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"),
                         keep_blank_values=True)
        report = self.health.report(endpoint, exclude=query.get("exclude", []), only=only)
        status = 200 if report.status.ok else 503
        if wants_json(scope, query):
            body = as_json(report, version=__version__).encode()
            await respond(scope, send, status, body, JSON_TYPE)
        else:
            await plain_text(scope, send, status, text(report, verbose="verbose" in query))


def _local_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path and sets root_path)."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    return path
