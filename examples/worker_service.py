"""A user's own Typer service that adopts hc's health kit and `healthcheck` in a few lines.

    python examples/worker_service.py run --port 8081      # the service
    python examples/worker_service.py healthcheck --port 8081   # its probe: exit 0 or 1

The worker thread beats a heartbeat after each job; if it gets stuck the heartbeat goes stale,
/livez and /readyz fail, and `healthcheck` exits 1 naming the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import sys
import threading
from collections.abc import Callable

import typer

from hc.cli import add_healthcheck
from hc.config import SERVE, load
from hc.health import Health, Result, Status
from hc.lifecycle import serve, setup_logging
from hc.server import HealthApp

app = typer.Typer(add_completion=False)
add_healthcheck(app)  # 1. the same `healthcheck` command as hc's, reading the same HC_* settings

jobs: queue.Queue[int] = queue.Queue()
stuck = threading.Event()


def work(beat: Callable[[], None]) -> None:
    while True:
        with contextlib.suppress(queue.Empty):
            jobs.get(timeout=0.5)
        while stuck.is_set():  # a real bug would hang here; SIGUSR1 simulates it
            stuck.wait(3600)
        beat()


@app.command()
def run(port: int = 8081, max_queue: int = 100) -> None:
    """Run the worker with /livez, /readyz and /healthz on PORT."""
    settings = load(SERVE, {"port": port})
    setup_logging(settings.log_level, settings.log_format)
    health = Health(interval=settings.check_interval)  # 2. a registry

    heartbeat = health.heartbeat("worker", max_age=2.0)  # 3. a heartbeat for the worker loop

    @health.check("queue", tags=("ready",))  # 4. a readiness check with a threshold
    def queue_depth() -> Result:
        depth = jobs.qsize()
        status = Status.FAIL if depth > max_queue else Status.PASS
        return Result(status, f"{depth} jobs waiting" if depth > max_queue else "", depth)

    threading.Thread(target=work, args=(heartbeat.beat,), daemon=True).start()
    signal.signal(signal.SIGUSR1, lambda *_: stuck.set())
    # 5. serve the endpoints with hc's lifecycle: SIGTERM drains, then exit 0
    raise typer.Exit(asyncio.run(serve(settings, health, HealthApp(health))))


if __name__ == "__main__":
    if sys.argv[1:2] == ["healthcheck"] and "--help" not in sys.argv:
        from hc.probe import main  # the fast path: no Typer import per probe

        sys.exit(main(sys.argv[2:]))
    app()
