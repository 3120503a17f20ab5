"""Process duties of a service: signals and draining, the state snapshot, PID 1 chores, logging.

SIGTERM/SIGINT -> readiness fails at once (draining) -> after `drain_delay` the listener closes
-> in-flight requests get `shutdown_timeout` -> background work is cancelled -> exit 0, returned
by `serve` rather than dying by the signal. A second signal skips the drain (a third forces exit).

    setup_logging(settings.log_level, settings.log_format)
    code = asyncio.run(serve(settings, health, HealthApp(health), tasks=[worker]))

One module per job: `_serve` (the entry), `_signals`, `_publisher` (the state snapshot),
`_pid1` (reaping orphans), `_sweeper` (dirs left by the single-file binary), `_logs`.
"""

from hc.lifecycle._logs import setup_logging
from hc.lifecycle._pid1 import reap_children
from hc.lifecycle._serve import Task, add_builtin_checks, serve
from hc.lifecycle._signals import SAME_SIGNAL_WINDOW
from hc.lifecycle._sweeper import sweep_unpacked_dirs

__all__ = ["SAME_SIGNAL_WINDOW", "Task", "add_builtin_checks", "reap_children", "serve",
           "setup_logging", "sweep_unpacked_dirs"]
