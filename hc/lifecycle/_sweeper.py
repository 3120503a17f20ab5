"""The sweeper: removes dirs of the single-file binary that no process uses any more."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import time
from collections.abc import Iterable

log = logging.getLogger("hc.lifecycle")


def sweep_unpacked_dirs(min_age: float, cache: str) -> list[str]:
    """Remove the single-file binary's dirs beside `cache` (the running build's own cache dir,
    never touched) that nothing uses any more: `.hc-<uid>-*`, left by a run killed while it
    unpacked (or moving a damaged cache aside), and `hc-<uid>-<id>`, caches of other builds.

    A dir counts as in use while any process maps a file from it or runs from it, and dirs
    younger than `min_age` seconds are left alone. Returns the removed paths.
    """
    root = os.path.dirname(cache)
    uid = os.geteuid()
    prefixes = (f"hc-{uid}-", f".hc-{uid}-")
    try:
        names = [n for n in os.listdir(root) if n.startswith(prefixes)]
    except OSError:
        return []
    now = time.time()
    candidates = []
    for name in names:
        path = os.path.join(root, name)
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            if path != cache and info.st_uid == uid and now - info.st_mtime >= min_age:
                candidates.append(path)
    if not candidates:
        return []
    in_use = _paths_in_use()
    removed = []
    for path in candidates:
        if any(p == path or p.startswith(path + "/") for p in in_use):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d unused dirs of the binary from %s", len(removed), root)
    return removed


def _paths_in_use() -> set[str]:
    used: set[str] = set()
    for pid in _pids():
        with contextlib.suppress(OSError):
            used.add(os.readlink(f"/proc/{pid}/exe"))
        with contextlib.suppress(OSError):
            used.add(os.readlink(f"/proc/{pid}/cwd"))
        with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as maps:
            used.update(line.split(None, 5)[5].strip() for line in maps
                        if len(line.split(None, 5)) == 6)
    return used


def _pids() -> Iterable[str]:
    try:
        return [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise


async def sweep_forever(min_age: float, cache: str) -> None:
    """sweep_unpacked_dirs every min(60, min_age / 2) seconds (at least every second)."""
    while True:
        await asyncio.to_thread(sweep_unpacked_dirs, min_age, cache)
        await asyncio.sleep(min(60.0, max(1.0, min_age / 2)))
