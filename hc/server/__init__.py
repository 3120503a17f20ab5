"""HTTP endpoints for the health kit: an ASGI app, how its endpoints answer, and uvicorn to
serve it. The ASGI types are public in `hc.server.types` (and re-exported here)."""

from hc.server._app import PROBE_PATHS, HealthApp
from hc.server._listen import ListenError, Server, bind, bind_unix, make_server
from hc.server._responses import (
    PLAIN_JSON,
    PLAIN_TEXT,
    READ_METHODS,
    allows,
    header,
    plain_text,
    respond,
)
from hc.server.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PLAIN_JSON", "PLAIN_TEXT", "PROBE_PATHS", "READ_METHODS", "ASGIApp", "HealthApp",
           "ListenError", "Message", "Receive", "Scope", "Send", "Server", "allows", "bind",
           "bind_unix", "header", "make_server", "plain_text", "respond"]
