"""The sweeper: removes dirs of the single-file binary that no process uses any more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time

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
    if in_use is None:  # no /proc: what is in use cannot be known, so nothing is removed
        return []
    removed = []
    for path in candidates:
        if any(p == path or p.startswith(path + "/") for p in in_use):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d unused dirs of the binary from %s", len(removed), root)
    return removed


def _paths_in_use() -> set[str] | None:
    """Every file any process maps, runs or has as its cwd; None without a /proc that shows
    this process (not mounted, or another PID namespace's)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    if str(os.getpid()) not in pids:
        return None
    used: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            used.add(os.readlink(f"/proc/{pid}/exe"))
        with contextlib.suppress(OSError):
            used.add(os.readlink(f"/proc/{pid}/cwd"))
        with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as maps:
            fields = (line.split(None, 5) for line in maps)
            used.update(f[5].strip() for f in fields if len(f) == 6)  # the mapped file's path
    return used


async def sweep_forever(min_age: float, cache: str) -> None:
    """sweep_unpacked_dirs every min(60, min_age / 2) seconds (at least every second)."""
    while True:
        await asyncio.to_thread(sweep_unpacked_dirs, min_age, cache)
        await asyncio.sleep(min(60.0, max(1.0, min_age / 2)))
