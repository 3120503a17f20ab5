#!/usr/bin/env python3
"""Benchmark the watcher: `hc serve` checking many targets against local servers.

    python scripts/bench_watcher.py [--targets 200] [--interval 1] [--duration 60]

Starts a few `redis-server`s and one helper process (an HTTP server answering 200 with
keep-alive, a TCP server that accepts and closes), then `hc serve` with the targets split evenly
over tcp, http and redis. After a warm-up it measures, over `--duration` seconds, the CPU time
and resident memory of the `hc serve` process (from /proc) and the scheduler's lateness (from
its `hc_scheduler_lateness_seconds` histogram, quantiles interpolated within buckets as
Prometheus' histogram_quantile does). Stops itself: every process it started is ended by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REDIS_SERVERS = 4
WARM_UP = 5.0
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the local servers -----------------------------------------------------------------------
async def _http_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    writer.close()


async def _tcp_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def serve_local(http_port: int, tcp_port: int) -> None:
    """The helper process: HTTP and TCP servers until terminated."""
    async def main() -> None:
        await asyncio.start_server(_http_connection, "127.0.0.1", http_port, backlog=1024)
        await asyncio.start_server(_tcp_connection, "127.0.0.1", tcp_port, backlog=1024)
        await asyncio.Event().wait()

    asyncio.run(main())


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--maxclients", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return proc, port


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on port {port}")


def specs(count: int, interval: float, http_port: int, tcp_port: int,
          redis_ports: list[int]) -> Iterator[str]:
    for n in range(count):
        kind = ("tcp", "http", "redis")[n % 3]
        if kind == "tcp":
            url = f"tcp://127.0.0.1:{tcp_port}"
        elif kind == "http":
            url = f"http://127.0.0.1:{http_port}/t{n}"
        else:
            url = f"redis://127.0.0.1:{redis_ports[n % len(redis_ports)]}/0"
        yield f"{url},name={kind}-{n},interval={interval:g}"


# -- measuring -------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


def scrape(port: int) -> dict[str, dict[str, float]]:
    """Lateness buckets (le -> count) and check counters of one /metrics scrape."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {"lateness": {}, "checks": {}, "failures": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hc_scheduler_lateness_seconds_bucket":
                found["lateness"][sample.labels["le"]] = sample.value
            elif sample.name == "hc_target_check_seconds_count":
                found["checks"][sample.labels["target"]] = sample.value
            elif sample.name == "hc_target_check_failures_total":
                found["failures"][sample.labels["target"]] = sample.value
    return found


def quantile(q: float, before: dict[str, float], after: dict[str, float]) -> float:
    """The q-quantile of what was observed between two scrapes of a histogram."""
    bounds = sorted((float(le), after[le] - before.get(le, 0.0)) for le in after)
    total = bounds[-1][1]
    rank, low, below = q * total, 0.0, 0.0
    for high, count in bounds:
        if count >= rank:
            if high == float("inf"):
                return low
            return low + (high - low) * (rank - below) / max(count - below, 1e-9)
        low, below = high, count
    return low


def ready(port: int) -> bool:
    with contextlib.suppress(OSError):
        url = f"http://127.0.0.1:{port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    return False


def stop(proc: subprocess.Popen[bytes] | multiprocessing.Process) -> None:
    """End a process we started, by its PID."""
    if isinstance(proc, multiprocessing.Process):
        proc.terminate()
        proc.join(10)
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    started: list[subprocess.Popen[bytes] | multiprocessing.Process] = []
    try:
        http_port, tcp_port, hc_port = free_port(), free_port(), free_port()
        helper = multiprocessing.Process(target=serve_local, args=(http_port, tcp_port),
                                         daemon=True)
        helper.start()
        started.append(helper)
        redis = [start_redis(workdir) for _ in range(REDIS_SERVERS)]
        started += [proc for proc, _ in redis]
        deadline = time.monotonic() + 20
        for port in (http_port, tcp_port, *(port for _, port in redis)):
            wait_port(port, deadline)
        config = workdir / "hc.toml"
        targets = list(specs(args.targets, args.interval, http_port, tcp_port,
                             [port for _, port in redis]))
        config.write_text(f"targets = {json.dumps(targets)}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HC_")}
        with (workdir / "hc.log").open("wb") as log:
            hc = subprocess.Popen(
                [sys.executable, "-m", "hc", "serve", "--config", str(config), "--host",
                 "127.0.0.1", "--port", str(hc_port), "--state-dir", str(workdir / "state")],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started.append(hc)
        deadline = time.monotonic() + 30
        while not ready(hc_port):
            if time.monotonic() > deadline or hc.poll() is not None:
                raise SystemExit("bench: hc serve did not become ready; see "
                                 f"{workdir / 'hc.log'}")
            time.sleep(0.1)
        time.sleep(WARM_UP)
        first, cpu0, wall0 = scrape(hc_port), cpu_seconds(hc.pid), time.monotonic()
        peak = 0
        while time.monotonic() - wall0 < args.duration:
            peak = max(peak, rss_bytes(hc.pid))
            time.sleep(1.0)
        last, cpu1, wall1 = scrape(hc_port), cpu_seconds(hc.pid), time.monotonic()
        end_rss = rss_bytes(hc.pid)
        peak = max(peak, end_rss)
    finally:
        for proc in reversed(started):
            stop(proc)
    elapsed = wall1 - wall0
    checks = sum(last["checks"].values()) - sum(first["checks"].values())
    failures = sum(last["failures"].values()) - sum(first["failures"].values())
    return {
        "targets": args.targets, "interval_s": args.interval, "duration_s": round(elapsed, 1),
        "checks_per_s": round(checks / elapsed, 1), "failed_checks": int(failures),
        "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "rss_mib_peak": round(peak / 2**20, 1), "rss_mib_end": round(end_rss / 2**20, 1),
        "lateness_ms_p50": round(1000 * quantile(0.5, first["lateness"], last["lateness"]), 2),
        "lateness_ms_p99": round(1000 * quantile(0.99, first["lateness"], last["lateness"]), 2),
        "cores": os.cpu_count(), "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hc-bench-") as tmp:
        result = measure(args, Path(tmp))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
