"""A service with APP_CHECKS (default 50) dummy checks; every APP_FAIL_EVERY-th (default 3rd)
fails with a long output, and APP_RAISE names a check that raises an error holding a secret."""

from __future__ import annotations

import functools
import os

import appkit

from hc.health import Health, Result, Status

LONG_OUTPUT = "the dependency said no " * 20
SECRET = "s3cret-token-in-the-message"  # noqa: S105 (fake, must stay in the log)


def dummy(index: int, fail_every: int) -> Result:
    if fail_every and index % fail_every == 0:
        return Result(Status.FAIL, f"#{index}: {LONG_OUTPUT}")
    return Result(Status.PASS)


def raising() -> Result:
    raise ConnectionError(f"cannot reach redis://user:{SECRET}@db:6379 ({SECRET})")


def main() -> None:
    config = appkit.settings()
    count = int(os.environ.get("APP_CHECKS", "50"))
    fail_every = int(os.environ.get("APP_FAIL_EVERY", "3"))
    health = Health(interval=config.check_interval, timeout=config.check_timeout)
    for index in range(1, count + 1):
        name = f"dummy-check-with-a-long-name-{index:03d}"
        health.add(name, functools.partial(dummy, index, fail_every), tags=("ready",),
                   threaded=False)
    if raise_name := os.environ.get("APP_RAISE"):
        health.add(raise_name, raising, tags=("ready",))
    appkit.run(health, config)


if __name__ == "__main__":
    main()
