"""http:// and https:// targets: GET the URL, compare the status with the expected range.

A target is judged on its status line and headers: the body is read only when it is known to be
small (so the connection can serve the next check), never a stream (SSE) or a large download.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Generator
from urllib.parse import unquote, urlsplit

import httpx

from hc.config import ConfigError, Option
from hc.health import Status
from hc.watcher._kind import CA_FILE, Kind, Shared
from hc.watcher._model import Observation, Prober, Target, Unusable, describe, failed
from hc.watcher._password import BOTH_PASSWORDS, PASSWORD_FILE, PasswordFileError, read_password

BODY_LIMIT = 64 * 1024
"""Bytes of a response body read so that its connection stays open for the next check; a longer
body, or one of unknown length (a stream), is not read: its connection is closed instead."""

# httpx logs every request at INFO: one line per target per interval would flood the log.
logging.getLogger("httpx").setLevel(logging.WARNING)


class HttpClients:
    """One AsyncClient per CA setting, shared by the targets that use it, kept between checks
    so connections are reused. Checks go straight to the target: proxies from the environment
    are ignored, as the probe ignores them."""

    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}

    def get(self, ca_file: str) -> httpx.AsyncClient:
        """The client for `ca_file` ("" for the default CAs). Raises OSError or ssl.SSLError
        when the CA file cannot be read."""
        client = self._clients.get(ca_file)
        if client is None:
            verify: ssl.SSLContext | bool = True
            if ca_file:
                verify = ssl.create_default_context(cafile=ca_file)
            client = httpx.AsyncClient(
                verify=verify, trust_env=False, follow_redirects=False,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
                headers={"user-agent": "hc-watcher"})
            self._clients[ca_file] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


class FileBasicAuth(httpx.Auth):
    """HTTP basic auth with the URL's username and the password read from a file at every
    request, so a rotated secret is used from the next check on."""

    def __init__(self, username: str, path: str) -> None:
        self.username, self.path = username, path

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from httpx.BasicAuth(self.username, read_password(self.path)).auth_flow(request)


class HttpProber(Prober):
    """GET per check; passes when the status is in the target's `expect` range. The client
    comes from HttpClients, made before the first check (loading CAs blocks ~100 ms)."""

    def __init__(self, target: Target, client: httpx.AsyncClient) -> None:
        self.target, self.client = target, client
        self.expect: tuple[int, int] = target.options["expect"]
        password_file: str = target.options["password_file"]
        self.auth: httpx.Auth | None = None
        if password_file:
            self.auth = FileBasicAuth(unquote(urlsplit(target.url).username or ""),
                                      password_file)

    async def check(self) -> Observation:
        low, high = self.expect
        started = time.monotonic()
        try:  # no timeout of its own: the scheduler ends every check at the target's timeout
            async with self.client.stream("GET", self.target.url, timeout=None,
                                          auth=self.auth or httpx.USE_CLIENT_DEFAULT) as response:
                latency = time.monotonic() - started
                if _short(response):
                    async for _ in response.aiter_raw():  # raw: discarded, so never decompressed
                        pass
        except httpx.HTTPError as exc:
            return failed(exc)
        except PasswordFileError as exc:
            return Observation(Status.FAIL, str(exc))
        code = response.status_code
        span = f"{low}" if low == high else f"{low}-{high}"
        if low <= code <= high:
            return Observation(Status.PASS, f"HTTP {code} in {latency * 1000:.1f} ms", latency)
        return Observation(Status.FAIL, f"HTTP {code}, expected {span}", latency)


def _short(response: httpx.Response) -> bool:
    """Whether the body is known to end within BODY_LIMIT bytes."""
    if response.status_code in (204, 304):
        return True
    length = response.headers.get("content-length", "")
    return length.isascii() and length.isdigit() and int(length) <= BODY_LIMIT


class _Statuses(Option):
    """`expect`: `200-299` or `204`, the HTTP statuses that count as passing."""

    def parse(self, raw: object, source: str) -> tuple[int, int]:
        low, _, high = str(raw).partition("-")
        try:
            span = int(low), int(high or low)
        except ValueError:
            span = (0, 0)
        if not 100 <= span[0] <= span[1] <= 599:
            raise ConfigError(self.name, raw, source, "expected a status or range like 200-299")
        return span


EXPECT = _Statuses("expect", str, (200, 299), "HTTP statuses that pass: 200-299 or 204.",
                   frozenset())


def _prober(target: Target, shared: Shared) -> Prober:
    ca_file: str = target.options["ca_file"]
    if target.options["password_file"] and urlsplit(target.url).password is not None:
        return Unusable(BOTH_PASSWORDS)
    try:
        return HttpProber(target, shared.get(HttpClients).get(ca_file))
    except (OSError, ssl.SSLError) as exc:
        return Unusable(f"cannot use ca_file {ca_file}: {describe(exc)}")


HTTP = Kind("http", ("http", "https"), _prober, keys=(EXPECT, CA_FILE, PASSWORD_FILE))
