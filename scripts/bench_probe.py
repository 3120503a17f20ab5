"""Cost of one `hc healthcheck`, side by side: the static binary against the same code unfrozen.

    python scripts/bench_probe.py [--runs 30] [--binary dist/hc]

Starts `dist/hc serve` on a free loopback port, then runs each probe variant `--runs` times,
interleaved so that machine noise hits every variant alike, and prints the median wall time and
CPU time (user+sys of the probe and all its children) per probe, with ratios to the unfrozen
probe. Bounded: stops by itself after the runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    cpu_before, wall_before = children_cpu(), time.perf_counter()
    code = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=30, check=False).returncode
    return time.perf_counter() - wall_before, children_cpu() - cpu_before, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--binary", default=str(ROOT / "dist" / "hc"))
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"bench_probe: {args.binary} is missing: run scripts/build.sh first")

    port = free_port()
    state_dir = tempfile.mkdtemp(prefix="hc-bench-")
    env = {**os.environ, "HC_PORT": str(port), "HC_HOST": "127.0.0.1",
           "HC_STATE_DIR": state_dir}
    env = {k: v for k, v in env.items() if "proxy" not in k.lower()}
    server = subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    variants = {
        "static binary (dist/hc)": [args.binary, "healthcheck"],
        "unfrozen (python -m hc)": [sys.executable, "-m", "hc", "healthcheck"],
    }
    try:
        deadline = time.monotonic() + 30
        while measure(variants["unfrozen (python -m hc)"], env)[2] != 0:
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("bench_probe: the service never became healthy")
            time.sleep(0.2)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, command in variants.items():
                wall, cpu, code = measure(command, env)
                if code != 0:
                    sys.exit(f"bench_probe: {name} probe failed with exit {code}")
                results[name].append((wall, cpu))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)

    base = results["unfrozen (python -m hc)"]
    base_wall = statistics.median(w for w, _ in base)
    base_cpu = statistics.median(c for _, c in base)
    print(f"{args.runs} probes per variant, interleaved; medians per probe; "
          f"{os.cpu_count()} cores; binary {os.path.getsize(args.binary) / 2**20:.1f} MiB")
    print(f"{'variant':28} {'wall ms':>8} {'cpu ms':>8} {'wall x':>7} {'cpu x':>7}")
    for name, samples in results.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        print(f"{name:28} {wall * 1000:8.1f} {cpu * 1000:8.1f} {wall / base_wall:7.2f} "
              f"{cpu / base_cpu:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
