"""`hc serve`: the dependency watcher on the health kit, served with hc's lifecycle."""

from __future__ import annotations

import asyncio

from hc.config import Settings
from hc.health import Health
from hc.lifecycle import serve, setup_logging
from hc.server import HealthApp
from hc.watcher import Watcher


def build(settings: Settings) -> tuple[Health, HealthApp, Watcher]:
    """The health kit, HTTP app and watcher of `hc serve`, configured from settings.

    Raises ConfigError when a target is malformed.
    """
    health = Health(interval=settings.check_interval, timeout=settings.check_timeout)
    watcher = Watcher.from_settings(health, settings)
    return health, HealthApp(health, routes=watcher.routes()), watcher


def run(settings: Settings) -> int:
    """Run the service until SIGTERM/SIGINT; returns the process exit code."""
    setup_logging(settings.log_level, settings.log_format)
    health, app, watcher = build(settings)
    return asyncio.run(serve(settings, health, app, tasks=[watcher.run]))
