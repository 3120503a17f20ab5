"""The probe of the `hc:dev` image as Docker runs it, against a static no-op probe, in one run.

    python3 scripts/bench_container.py [--seconds 60] [--limits 64,56,48,44,40] [--compare IMAGE]

Needs a running engine (scripts/docker-engine.sh) and hc:dev (scripts/image.sh). Builds its own
no-op image, hc-bench-noop (Debian's busybox-static in a scratch image, HEALTHCHECK
`/busybox true`), then, all containers with --network none and a 1 s health interval:

1. probe time as Docker measures it (End - Start of each health log entry) of hc:dev and of
   the no-op image, both running at the same time for --seconds;
2. start-to-healthy time of hc:dev (container start to the end of its first passing probe),
   five fresh containers;
3. the smallest --memory (with --memory-swap equal, so no swap) among --limits that keeps
   hc:dev healthy for 30 s with no failed probe and no OOM kill, for each place /tmp can be
   (TMP_MOUNTS: the container's overlay, a tmpfs, an anonymous volume);
4. the service's own memory once idle: RSS of its process (anonymous and file-backed) and what
   its container's memory cgroup holds, likewise.

`--compare IMAGE` (say, an earlier release) adds that image to steps 1 and 3, measured in the
same way and, for step 1, at the same time. Bounded: every container is removed when its step
ends (or on any error).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.cgroup import counters, memory_cgroup, oom_kills  # noqa: E402 (after the path)
from tests.engine import nanoseconds  # noqa: E402

IMAGE = os.environ.get("HC_IMAGE", "hc:dev")
NOOP = "hc-bench-noop"
HEALTH = ["--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "2",
          "--health-start-period", "0s"]
TMP_MOUNTS: tuple[tuple[str, list[str]], ...] = (
    ("overlay /tmp", []),
    ("tmpfs /tmp", ["--read-only", "--tmpfs", "/tmp:exec,mode=1777"]),  # noqa: S108 (in the container)
    ("volume /tmp", ["--read-only", "--mount", "type=volume,target=/tmp"]),
)
"""Where /tmp, and so the unpacked bundle, lives: the container's writable layer (default), a
tmpfs (memory, charged to the container), or an anonymous volume (the host's disk)."""


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        sys.exit(f"bench_container: docker {' '.join(args[:3])}: {result.stderr.strip()}")
    return result.stdout


def inspect(name: str) -> dict[str, Any]:
    """`docker inspect`'s State of a container (JSON of Docker's making, so untyped)."""
    state: dict[str, Any] = json.loads(docker("inspect", "-f", "{{json .State}}", name))
    return state


def instant(timestamp: str) -> float:
    """Seconds since the epoch of a Docker RFC 3339 time."""
    return nanoseconds(timestamp) / 1e9


@contextlib.contextmanager
def container(image: str, *options: str) -> Iterator[str]:
    name = f"hc-bench-{uuid.uuid4().hex[:8]}"
    try:
        docker("run", "-d", "--name", name, "--network", "none", *options, image)
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)


def build_noop() -> None:
    busybox = shutil.which("busybox")
    if not busybox or "statically linked" not in subprocess.run(
            ["file", "-L", busybox], capture_output=True, text=True, check=False).stdout:
        subprocess.run(["apt-get", "install", "-y", "-qq", "busybox-static", "file"],
                       check=True, capture_output=True, env={**os.environ,
                                                             "DEBIAN_FRONTEND": "noninteractive"})
        busybox = "/bin/busybox"
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(busybox, Path(context) / "busybox")
        (Path(context) / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /busybox\nHEALTHCHECK CMD ["/busybox", "true"]\n'
            'ENTRYPOINT ["/busybox"]\nCMD ["sleep", "86400"]\n')
        subprocess.run(["docker", "build", "-q", "-t", NOOP, context], check=True,
                       capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0"})


def health_log(name: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = (inspect(name).get("Health") or {}).get("Log", [])
    return log


def probe_times(images: list[str], seconds: float) -> dict[str, list[float]]:
    """Docker-measured durations (ms) of the passing probes of `images`, run side by side."""
    seen: dict[str, dict[str, float]] = {image: {} for image in images}
    with contextlib.ExitStack() as stack:
        names = {image: stack.enter_context(container(image, *HEALTH)) for image in images}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for image, name in names.items():
                for entry in health_log(name):
                    if entry["ExitCode"] == 0:
                        start, end = instant(str(entry["Start"])), instant(str(entry["End"]))
                        seen[image][str(entry["Start"])] = (end - start) * 1000
            time.sleep(1.5)
    return {image: list(durations.values()) for image, durations in seen.items()}


def start_to_healthy(runs: int) -> list[float]:
    """Seconds from container start to the end of its first passing probe."""
    times = []
    for _ in range(runs):
        with container(IMAGE, *HEALTH) as name:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = inspect(name)
                passed = [e for e in health_log(name) if e["ExitCode"] == 0]
                if passed:
                    times.append(instant(str(passed[0]["End"]))
                                 - instant(str(state["StartedAt"])))
                    break
                time.sleep(0.2)
    return times


def stays_healthy(image: str, limit_mib: int, extra: list[str], seconds: float = 30) -> bool:
    """Healthy within 30 s and then for `seconds`: every probe passes, no OOM kill."""
    memory = [f"--memory={limit_mib}m", f"--memory-swap={limit_mib}m"]
    with container(image, *memory, *extra, *HEALTH) as name:
        deadline = time.monotonic() + 30
        while inspect(name).get("Health", {}).get("Status") != "healthy":
            if time.monotonic() > deadline or not inspect(name)["Running"]:
                return False
            time.sleep(0.5)
        pid = int(inspect(name)["Pid"])
        since = time.time()
        deadline = time.monotonic() + seconds
        codes: dict[str, int] = {}
        while time.monotonic() < deadline:
            state = inspect(name)
            if not state["Running"]:
                return False
            codes.update((str(e["Start"]), int(e["ExitCode"]))
                         for e in health_log(name) if instant(str(e["Start"])) >= since)
            time.sleep(1.5)
        return set(codes.values()) <= {0} and len(codes) >= seconds / 2 and oom_kills(pid) == 0


def smallest_limit(image: str, limits: list[int], extra: list[str]
                   ) -> tuple[int | None, dict[int, bool]]:
    """Walk down the limits until one fails; returns the last that held and every result."""
    results: dict[int, bool] = {}
    smallest = None
    for limit in sorted(limits, reverse=True):
        results[limit] = stays_healthy(image, limit, extra)
        if not results[limit]:
            break
        smallest = limit
    return smallest, results


def idle_memory(extra: list[str]) -> dict[str, float]:
    """MiB: the service's RSS (anon, file) and its container's memory cgroup, idle."""
    with container(IMAGE, *extra, *HEALTH) as name:
        time.sleep(15)
        pid = int(inspect(name)["Pid"])
        status = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        kib = {key: int(status[key].split()[0]) for key in ("VmRSS", "RssAnon", "RssFile")}
        cgroup = memory_cgroup(pid)
        usage = cgroup / ("memory.usage_in_bytes" if (cgroup / "memory.usage_in_bytes").exists()
                          else "memory.current")
        stat = counters(cgroup / "memory.stat")
        return {"rss": kib["VmRSS"] / 1024, "rss_anon": kib["RssAnon"] / 1024,
                "rss_file": kib["RssFile"] / 1024,
                "cgroup": int(usage.read_text()) / 2**20,
                "cgroup_page_cache": stat.get("cache", stat.get("file", 0)) / 2**20,
                "cgroup_shmem": stat.get("shmem", 0) / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--limits", default="64,56,48,44,40")
    parser.add_argument("--compare", metavar="IMAGE", help="another hc image to measure too")
    args = parser.parse_args()
    limits = [int(x) for x in args.limits.split(",")]
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True,
                      check=False).returncode != 0:
        sys.exit(f"bench_container: no {IMAGE}: run scripts/image.sh")
    build_noop()
    version = docker("version", "-f", "{{.Server.Version}}").strip()
    size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE))
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; Docker engine {version}; {os.cpu_count()} "
          f"cores; {IMAGE} {size / 1e6:.1f} MB unpacked")

    images = [IMAGE, *([args.compare] if args.compare else [])]
    times = probe_times([*images, NOOP], args.seconds)
    noop = statistics.median(times[NOOP])
    print(f"1. Docker-measured probe time, medians of the passing probes in {args.seconds:g} s, "
          f"side by side: {NOOP} (/busybox true) {noop:.0f} ms ({len(times[NOOP])} probes)")
    for image in images:
        if not times[image]:
            print(f"   {image}: no passing probe")
            continue
        ratio = statistics.median(times[image]) / noop
        print(f"   {image}: {statistics.median(times[image]):.0f} ms ({len(times[image])} "
              f"probes), {ratio:.2f}x the no-op (goal <= 3): {'met' if ratio <= 3 else 'NOT MET'}")

    healthy = start_to_healthy(5)
    print(f"2. start to healthy: median {statistics.median(healthy):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in healthy)})")

    runs = [(IMAGE, label, extra) for label, extra in TMP_MOUNTS]
    if args.compare:
        runs.append((args.compare, TMP_MOUNTS[0][0], TMP_MOUNTS[0][1]))
    for image, label, extra in runs:
        smallest, results = smallest_limit(image, limits, extra)
        tried = ", ".join(f"{k} MiB {'held' if v else 'failed'}" for k, v in results.items())
        print(f"3. smallest --memory that keeps {image} healthy, {label}: "
              f"{f'{smallest} MiB' if smallest else 'none'} ({tried})")

    for label, extra in TMP_MOUNTS:
        memory = idle_memory(extra)
        print(f"4. idle service, {label}: RSS {memory['rss']:.1f} MiB (anon "
              f"{memory['rss_anon']:.1f}, file {memory['rss_file']:.1f}); container cgroup "
              f"{memory['cgroup']:.1f} MiB, of which page cache {memory['cgroup_page_cache']:.1f}"
              f" (tmpfs {memory['cgroup_shmem']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
