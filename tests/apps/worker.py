"""A service whose worker thread beats a heartbeat, until SIGUSR1 makes the worker stall.

The heartbeat's max age is `--heartbeat-max-age` / HC_HEARTBEAT_MAX_AGE.
"""

from __future__ import annotations

import signal
import threading
import time

import appkit

from hc.health import Health, Heartbeat

BEAT_EVERY = 0.05


def work(heartbeat: Heartbeat, stall: threading.Event) -> None:
    while not stall.is_set():
        heartbeat.beat()
        time.sleep(BEAT_EVERY)
    threading.Event().wait()  # stuck for good, as a deadlocked worker would be


def main() -> None:
    config = appkit.settings()
    health = Health(interval=config.check_interval, timeout=config.check_timeout)
    heartbeat = health.heartbeat("worker", max_age=config.heartbeat_max_age)
    stall = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: stall.set())
    threading.Thread(target=work, args=(heartbeat, stall), name="worker", daemon=True).start()
    appkit.run(health, config)


if __name__ == "__main__":
    main()
