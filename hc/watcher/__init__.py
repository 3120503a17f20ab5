"""The dependency watcher of `hc serve`: checks Redis (alone or behind Sentinel), HTTP and TCP
targets on a schedule and publishes what it sees as health checks, `/metrics` (Prometheus) and
`/targets` (JSON). Each kind of target is one module behind `_kind.Kind`, listed in
`_targets.KINDS`.

    watcher = Watcher.from_settings(health, settings)    # registers its checks in `health`
    app = HealthApp(health, routes=watcher.routes())
    await serve(settings, health, app, tasks=[watcher.run])

The watcher's own health (liveness: its scheduler loop beats) never depends on the targets;
readiness needs the first round done and every critical target passing.
"""

from hc.watcher._model import Target
from hc.watcher._targets import parse_targets
from hc.watcher._watcher import Watcher

__all__ = ["Target", "Watcher", "parse_targets"]
