"""What every test app shares: `hc serve`'s flags and env, and hc's lifecycle.

A test app is a real service built on the kit, started by the `hc_serve(app=...)` fixture as
`python tests/apps/<name>.py [serve flags]`; it reads the same options `hc serve` does.
"""

from __future__ import annotations

import asyncio
import sys

from hc.config import SERVE, Settings, load, parse_flags
from hc.health import Health
from hc.lifecycle import Task, serve, setup_logging
from hc.server import HealthApp


def settings(argv: list[str] | None = None) -> Settings:
    """`hc serve`'s settings from the command line and the HC_* environment."""
    return load(SERVE, parse_flags(sys.argv[1:] if argv is None else argv, SERVE))


def run(health: Health, config: Settings, tasks: tuple[Task, ...] = ()) -> None:
    """Serve `health` with hc's endpoints and lifecycle; exits with the lifecycle's code."""
    setup_logging(config.log_level, config.log_format)
    code = asyncio.run(serve(config, health, HealthApp(health), tasks))
    sys.exit(code)
