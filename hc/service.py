"""`hc serve`: the dependency watcher on the health kit, served with hc's lifecycle."""

from __future__ import annotations

import asyncio

from hc import exits
from hc.config import Settings
from hc.health import Health
from hc.lifecycle import serve, setup_logging
from hc.server import HealthApp


def build(settings: Settings) -> tuple[Health, HealthApp]:
    """The health kit and HTTP app of `hc serve`, configured from settings."""
    health = Health(interval=settings.check_interval, timeout=settings.check_timeout)
    return health, HealthApp(health)


def run(settings: Settings) -> int:
    """Run the service until SIGTERM/SIGINT; returns the process exit code."""
    setup_logging(settings.log_level)
    health, app = build(settings)
    code: int = asyncio.run(serve(settings, health, app))
    return code if code is not None else exits.OK
