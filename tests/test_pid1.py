"""`hc serve` as PID 1 (e.g. pip-installed in a slim image): it reaps orphaned children.

The service runs as PID 1 of a new PID namespace (`unshare --pid --fork`); a shell entered into
that namespace starts two short sleeps and exits, orphaning them to hc.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hc import exits
from tests.conftest import FAST, clean_env, free_port, run_hc

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
    reason="needs root, unshare and nsenter (util-linux)")


def _namespace_states(pid: int) -> list[str]:
    """The state letters of every process in the PID namespace of `pid`."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    states = []
    for other in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{other}/ns/pid") == namespace:
                states.append(Path(f"/proc/{other}/stat").read_text().rsplit(")", 1)[1].split()[0])
        except OSError:
            continue
    return states


def test_hc_as_pid_1_reaps_orphaned_children(tmp_path: Path) -> None:
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--state-dir", str(tmp_path)]
    unshare = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "hc", "serve",
         *flags], env=clean_env(FAST), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while run_hc("healthcheck", *flags).returncode != exits.OK:
            assert unshare.poll() is None and time.monotonic() < deadline, "never healthy"
            time.sleep(0.1)
        children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
        hc_pid = int(children[0])
        nspid = Path(f"/proc/{hc_pid}/status").read_text().split("NSpid:")[1].split("\n")[0]
        assert nspid.split()[-1] == "1", "hc is not PID 1 of its namespace"

        subprocess.run(["nsenter", "--target", str(hc_pid), "--pid", "--", "sh", "-c",
                        "sleep 0.2 & sleep 0.2 & exit 0"], check=True, timeout=10)
        time.sleep(1.5)

        assert "Z" not in _namespace_states(hc_pid)
        os.kill(hc_pid, signal.SIGTERM)
        assert unshare.wait(10) == exits.OK
    finally:
        if unshare.poll() is None:
            unshare.kill()
            unshare.wait(10)
