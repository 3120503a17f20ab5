"""HTTP endpoints for the health kit: an ASGI app, and uvicorn to serve it."""

from hc.server._app import PROBE_PATHS, ASGIApp, HealthApp, respond
from hc.server._listen import ListenError, Server, bind, bind_unix, make_server

__all__ = ["PROBE_PATHS", "ASGIApp", "HealthApp", "ListenError", "Server", "bind", "bind_unix",
           "make_server", "respond"]
