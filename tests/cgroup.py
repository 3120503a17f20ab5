"""A process's memory cgroup, read from the host (cgroup v1 or v2): for the container tests and
scripts/bench_container.py, which judge a container by its OOM kills and memory use."""

from __future__ import annotations

from pathlib import Path


def memory_cgroup(pid: int) -> Path:
    """The directory of the memory cgroup `pid` belongs to."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "memory":  # v1
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
        if controllers == "":  # v2
            return Path("/sys/fs/cgroup") / path.lstrip("/")
    raise LookupError(f"no memory cgroup for pid {pid}")


def counters(path: Path) -> dict[str, int]:
    """A cgroup file of `name value` lines (memory.stat, memory.events, memory.oom_control)."""
    return {key: int(value) for key, value in
            (line.split() for line in path.read_text().splitlines()) if value.isdigit()}


def oom_kills(pid: int) -> int:
    """Processes the kernel killed for lack of memory in `pid`'s memory cgroup."""
    cgroup = memory_cgroup(pid)
    for file in ("memory.events", "memory.oom_control"):  # v2, v1
        if (cgroup / file).exists():
            return counters(cgroup / file).get("oom_kill", 0)
    raise LookupError(f"no OOM counter in {cgroup}")
