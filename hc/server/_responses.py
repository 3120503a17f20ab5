"""How hc's endpoints answer, written once: the content types, sending a response, plain
text, 405 with `Allow`, and what the Accept header asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hc.health import JSON_TYPE
from hc.server.types import Scope, Send

PLAIN_TEXT = "text/plain; charset=utf-8"
PLAIN_JSON = "application/json"
"""JSON that is not a health report (e.g. /targets); reports are `hc.health.JSON_TYPE`."""
READ_METHODS = ("GET", "HEAD")
"""The methods of every hc endpoint: they only read."""


async def respond(scope: Scope, send: Send, status: int, body: bytes, content_type: str, *,
                  headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send a complete response, without its body to a HEAD request; `Cache-Control:
    no-store` since health changes by the second."""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *headers,
    ]})
    await send({"type": "http.response.body",
                "body": b"" if scope.get("method") == "HEAD" else body})


async def plain_text(scope: Scope, send: Send, status: int, text: str) -> None:
    """Send `text` as a text/plain response."""
    await respond(scope, send, status, text.encode(), PLAIN_TEXT)


async def allows(scope: Scope, send: Send, methods: tuple[str, ...] = READ_METHODS) -> bool:
    """Whether the request's method is one of `methods`; when not, answers 405 with the
    `Allow` header listing them."""
    if scope["method"] in methods:
        return True
    await respond(scope, send, 405, b"method not allowed\n", PLAIN_TEXT,
                  headers=[(b"allow", ", ".join(methods).encode())])
    return False


def header(scope: Scope, name: bytes) -> str:
    """Every value of the request header `name` (lower case), joined by commas."""
    values = [value for key, value in scope.get("headers", []) if key == name]
    return b", ".join(values).decode("latin-1")


def media_types(accept: str) -> list[str]:
    """The media types an Accept header lists, lower case, without their parameters."""
    return [part.partition(";")[0].strip().lower() for part in accept.split(",")]


def wants_json(scope: Scope, query: Mapping[str, list[str]]) -> bool:
    """Whether a health report is asked for as JSON: `?format=json`, or an Accept header
    naming application/health+json or application/json."""
    if query.get("format", [""])[-1] == "json":
        return True
    return not {JSON_TYPE, PLAIN_JSON}.isdisjoint(media_types(header(scope, b"accept")))
