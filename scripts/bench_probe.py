"""Cost of one `hc healthcheck`, side by side with a plain Python floor, in one run.

    python3 scripts/bench_probe.py [--runs 15] [--extra NAME=COMMAND ...]

Starts `dist/hc serve` on a free loopback port and runs, interleaved so that machine noise hits
every variant alike, each of:

- floor: `/usr/bin/python3 -I -S -c` a raw-socket `GET /readyz` and nothing else;
- unfrozen: `/usr/bin/python3 -S -E -s -m hc healthcheck` from this checkout (no `site`, as in
  the frozen binary);
- onedir: PyInstaller's onedir build of build/spec/hc.spec (build/pyinstaller/hc/hc), the
  reference that shows what "one file" costs on top;
- onefile, onefile+staticx: the same spec as a PyInstaller onefile, bare and wrapped by staticx
  (the packaging hc shipped before its own launcher), when scripts/bench_references.sh has
  built them into build/bench/;
- dist/hc: the shipped single file;
- any `--extra NAME=COMMAND` (say, an earlier release's binary, or `env -C DIR python3 -m hc`
  for an earlier checkout), run with the same probe arguments.

For each: the median wall time, CPU time (user+sys of the probe and every process under it)
and peak RSS (the largest process of the probe's tree), with ratios to the floor, then the
goals of the probe's cost checked against these figures. Debian's /usr/bin/python3 is the
interpreter the binary bundles, so the floor and the unfrozen probe use it too. Bounded: stops by
itself after the runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
FLOOR = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
sock.sendall(b"GET /readyz HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
data = b""
while chunk := sock.recv(65536):
    data += chunk
sys.exit(0 if data.split(b" ", 2)[1:2] == [b"200"] else 1)
"""
MEASURE = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
      os.waitstatus_to_exitcode(status))
"""
"""Runs one probe and prints its wall time, CPU time and peak RSS. A small process of its own:
a child's peak RSS starts at what its parent had resident when it forked (~8 MiB here, below
every variant), and wait4 folds every waited-for process of the probe into the figures."""
GOALS = (
    # (what, variant, figure, limit): figure of variant / figure of the floor <= limit
    ("1. dist/hc CPU", "dist/hc", "cpu", 4.0),
    ("6. unfrozen probe CPU", "unfrozen", "cpu", 1.5),
)
RSS_GOAL_MIB = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MiB, exit code) of one run of `command`."""
    out = subprocess.run([PYTHON, "-I", "-S", "-c", MEASURE, *command], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    wall, cpu, rss_kib, code = out.split()
    return float(wall), float(cpu), int(rss_kib) / 1024, int(code)


def variants(port: int, extras: list[str]) -> dict[str, list[str]]:
    probe = ["healthcheck", "--host", "127.0.0.1", "--port", str(port)]
    found = {
        "floor": [PYTHON, "-I", "-S", "-c", FLOOR, str(port)],
        "unfrozen": [PYTHON, "-S", "-E", "-s", "-m", "hc", *probe],
        "onedir": [str(ROOT / "build" / "pyinstaller" / "hc" / "hc"), *probe],
        "onefile": [str(ROOT / "build" / "bench" / "hc-onefile"), *probe],
        "onefile+staticx": [str(ROOT / "build" / "bench" / "hc-staticx"), *probe],
        "dist/hc": [str(ROOT / "dist" / "hc"), *probe],
    }
    for extra in extras:
        name, _, command = extra.partition("=")
        found[name] = [*shlex.split(command), *probe]
    missing = [name for name, command in found.items() if not shutil.which(command[0])]
    for name in missing:
        if name in ("onefile", "onefile+staticx"):
            print(f"(no {name}: run scripts/bench_references.sh to include it)")
            del found[name]
        else:
            sys.exit(f"bench_probe: {found[name][0]} is missing: run scripts/build.sh")
    return found


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = subprocess.run([PYTHON, "-V"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Linux {platform.release()}, "
            f"{python} ({PYTHON})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=COMMAND",
                        help="another hc command to probe the same way")
    args = parser.parse_args()

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="hc-bench-"))
    tmp = work / "tmp"
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HC_") and "proxy" not in k.lower()}
    env.update(HC_STATE_DIR=str(work / "state"), TMPDIR=str(tmp))
    commands = variants(port, args.extra)
    server = subprocess.Popen([str(ROOT / "dist" / "hc"), "serve", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    try:
        deadline = time.monotonic() + 30
        while measure(commands["unfrozen"], env)[3] != 0:
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("bench_probe: the service never became healthy")
            time.sleep(0.2)
        for name, command in commands.items():  # warm-up: dist/hc unpacks its cache here
            if measure(command, env)[3] != 0:
                sys.exit(f"bench_probe: {name} probe failed")
        for _ in range(args.runs):
            for name, command in commands.items():
                wall, cpu, rss, code = measure(command, env)
                if code != 0:
                    sys.exit(f"bench_probe: {name} probe failed with exit {code}")
                results[name].append((wall, cpu, rss))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    medians = {name: tuple(statistics.median(sample[i] for sample in samples) for i in range(3))
               for name, samples in results.items()}
    floor_wall, floor_cpu, _ = medians["floor"]
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {machine()}")
    print(f"{args.runs} probes per variant, interleaved; medians per probe; dist/hc "
          f"{(ROOT / 'dist' / 'hc').stat().st_size / 2**20:.1f} MiB")
    print(f"{'variant':18} {'wall ms':>8} {'CPU ms':>8} {'peak RSS MiB':>13} {'wall x':>7} "
          f"{'CPU x':>6}")
    for name, (wall, cpu, rss) in medians.items():
        print(f"{name:18} {wall * 1000:8.1f} {cpu * 1000:8.1f} {rss:13.1f} "
              f"{wall / floor_wall:7.2f} {cpu / floor_cpu:6.2f}")
    print("goals:")
    figure_index = {"wall": 0, "cpu": 1}
    for what, name, figure, limit in GOALS:
        ratio = medians[name][figure_index[figure]] / medians["floor"][figure_index[figure]]
        print(f"  {what}: {ratio:.2f}x the floor (goal <= {limit:g}x): "
              f"{'met' if ratio <= limit else 'NOT MET'}")
    peak = max(rss for _, _, rss in results["dist/hc"])
    print(f"  2. largest process of a dist/hc probe: {peak:.1f} MiB at most (goal <= "
          f"{RSS_GOAL_MIB:g} MiB): {'met' if peak <= RSS_GOAL_MIB else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
