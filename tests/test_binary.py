"""The single-file binary dist/hc on this host (scripts/build.sh builds it): its launcher unpacks
the bundle once into a private cache dir, every later run reuses it, and nothing is left over.

Each test gives the binary a fresh TMPDIR, so the first run in it unpacks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hc import exits
from hc.config import PROBE
from hc.probe import WATCHDOG_GRACE
from tests.conftest import FAST, ServeFactory, clean_env, free_port

BINARY = Path(__file__).resolve().parent.parent / "dist" / "hc"
CACHE_NAME = re.compile(rf"^hc-{os.geteuid()}-[0-9a-f]{{32}}$")

pytestmark = pytest.mark.binary


@pytest.fixture(scope="module", autouse=True)
def _binary_built() -> None:
    """Without dist/hc: fail in CI (it must run there), skip elsewhere."""
    if not os.access(BINARY, os.X_OK):
        message = f"{BINARY} is missing: run scripts/build.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> dict[str, str]:
    """A fresh, empty TMPDIR (1777, like /tmp) for the binary, in a clean environment."""
    root = tmp_path / "tmp"
    root.mkdir()
    root.chmod(0o1777)
    return clean_env({"TMPDIR": str(root)})


Spawn = Callable[..., "subprocess.Popen[Any]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """`subprocess.Popen` whose processes are killed at the test's end if still running, so a
    failed or timed-out test leaves no service behind."""
    processes: list[subprocess.Popen[Any]] = []

    def start(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        processes.append(subprocess.Popen(*args, **kwargs))
        return processes[-1]

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def run_binary(*args: str, env: dict[str, str], timeout: float = 30
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BINARY), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def entries(env: dict[str, str]) -> list[str]:
    return sorted(os.listdir(env["TMPDIR"]))


def cache_dir(env: dict[str, str]) -> Path:
    (name,) = entries(env)
    assert CACHE_NAME.match(name), name
    return Path(env["TMPDIR"]) / name


def snapshot(tree: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, size, mtime) of every entry below `tree`."""
    return {str(p): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in tree.rglob("*")}


def test_first_run_unpacks_into_one_private_cache_dir(tmpdir_env: dict[str, str]) -> None:
    result = run_binary("--version", env=tmpdir_env)

    assert result.returncode == exits.OK, result.stderr
    assert result.stdout.startswith("hc ")
    cache = cache_dir(tmpdir_env)
    info = cache.stat()
    assert info.st_uid == os.geteuid()
    assert info.st_mode & 0o777 == 0o700


def test_later_runs_reuse_the_cache_and_write_nothing(tmpdir_env: dict[str, str],
                                                      hc_serve: ServeFactory) -> None:
    run_binary("--version", env=tmpdir_env)
    cache = cache_dir(tmpdir_env)
    before = snapshot(cache)
    service = hc_serve()

    for _ in range(3):
        probe = run_binary(PROBE, *service.probe_args(), env=tmpdir_env)
        assert probe.returncode == exits.OK, probe.stderr

    assert entries(tmpdir_env) == [cache.name]
    assert snapshot(cache) == before


def test_a_damaged_cache_is_unpacked_again(tmpdir_env: dict[str, str]) -> None:
    run_binary("--version", env=tmpdir_env)
    library = cache_dir(tmpdir_env) / "_internal" / "libpython3.11.so.1.0"
    size = library.stat().st_size
    library.write_bytes(b"damaged")

    result = run_binary("--version", env=tmpdir_env)

    assert result.returncode == exits.OK, result.stderr
    assert library.stat().st_size == size
    assert len(entries(tmpdir_env)) == 1


@pytest.mark.parametrize("mode", [0o755, 0o770], ids=["readable-by-others", "group-writable"])
def test_a_cache_dir_others_could_touch_is_refused_in_one_line(tmpdir_env: dict[str, str],
                                                              mode: int) -> None:
    run_binary("--version", env=tmpdir_env)
    cache = cache_dir(tmpdir_env)
    cache.chmod(mode)

    result = run_binary("--version", env=tmpdir_env)

    assert result.returncode == exits.FAILURE
    assert result.stderr == (f"hc: cache dir {cache} is not a private directory of uid "
                             f"{os.geteuid()}; remove it or set TMPDIR\n")


def test_a_temp_dir_writable_by_all_without_sticky_bit_is_refused(
        tmpdir_env: dict[str, str]) -> None:
    os.chmod(tmpdir_env["TMPDIR"], 0o777)  # noqa: S103 (the unsafe setup under test)

    result = run_binary("--version", env=tmpdir_env)

    assert result.returncode == exits.FAILURE
    assert "writable by others without the sticky bit" in result.stderr
    assert result.stderr.count("\n") == 1
    assert entries(tmpdir_env) == []


def test_concurrent_first_runs_share_one_cache(tmpdir_env: dict[str, str],
                                              spawn: Spawn) -> None:
    runs = [spawn([str(BINARY), "--version"], env=tmpdir_env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]

    outputs = [run.communicate(timeout=60) for run in runs]

    assert [run.returncode for run in runs] == [exits.OK] * 8, outputs
    assert all(out.startswith("hc ") for out, _ in outputs)
    cache_dir(tmpdir_env)  # exactly one entry: the cache, no half-unpacked leftovers


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_temp_dir_fails_in_one_line_and_leaves_no_partial_copy(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=1777", "tmpfs", str(small)],
                   check=True)
    try:
        result = run_binary("--version", env=clean_env({"TMPDIR": str(small)}))

        assert result.returncode == exits.FAILURE
        assert "No space left on device" in result.stderr
        assert result.stderr.count("\n") == 1
        assert os.listdir(small) == []  # the half-unpacked dir is gone
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_a_truncated_binary_says_it_is_damaged(tmpdir_env: dict[str, str],
                                               tmp_path: Path) -> None:
    broken = tmp_path / "hc"
    broken.write_bytes(BINARY.read_bytes()[:-100])
    broken.chmod(0o755)

    result = subprocess.run([str(broken), "--version"], env=tmpdir_env, capture_output=True,
                            text=True, timeout=30, check=False)

    assert result.returncode == exits.FAILURE
    assert result.stderr.startswith("hc: this binary's bundle is damaged")
    assert result.stderr.count("\n") == 1


def test_a_host_library_path_does_not_replace_the_bundled_c_library(
        tmpdir_env: dict[str, str], tmp_path: Path) -> None:
    impostors = tmp_path / "lib"
    impostors.mkdir()
    for name in ("libc.so.6", "libz.so.1", "libpython3.11.so.1.0"):
        (impostors / name).write_bytes(b"\x7fELF not a library")

    result = run_binary("--version", env={**tmpdir_env, "LD_LIBRARY_PATH": str(impostors)})

    assert result.returncode == exits.OK, result.stderr


def test_runs_by_relative_path_and_through_path(tmpdir_env: dict[str, str]) -> None:
    relative = subprocess.run(["./hc", "--version"], cwd=BINARY.parent, env=tmpdir_env,
                              capture_output=True, text=True, timeout=30, check=False)
    on_path = subprocess.run(["hc", "--version"], capture_output=True, text=True, timeout=30,
                             env={**tmpdir_env, "PATH": str(BINARY.parent)}, check=False)

    assert relative.returncode == exits.OK, relative.stderr
    assert on_path.returncode == exits.OK, on_path.stderr


def test_the_service_is_one_process_named_hc(tmpdir_env: dict[str, str], tmp_path: Path,
                                             spawn: Spawn) -> None:
    service = spawn(
        [str(BINARY), "serve", "--host", "127.0.0.1", "--port", str(free_port()),
         "--state-dir", str(tmp_path / "state")], env={**tmpdir_env, **FAST},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        assert service.poll() is None
        assert Path(f"/proc/{service.pid}/comm").read_text().strip() == "hc"
        assert Path(f"/proc/{service.pid}/task/{service.pid}/children").read_text() == ""
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(10) == exits.OK


@pytest.mark.parametrize("delay", [0.01, 0.05, 0.2, 0.5])
def test_sigterm_while_starting_ends_in_exit_0(tmpdir_env: dict[str, str], tmp_path: Path,
                                               spawn: Spawn, delay: float) -> None:
    """At any moment of start-up (unpacking, loading Python, importing the service), a stop
    request ends the service cleanly: the launcher keeps SIGTERM pending until hc handles it."""
    service = spawn(
        [str(BINARY), "serve", "--host", "127.0.0.1", "--port", str(free_port()),
         "--state-dir", str(tmp_path / "state")], env=tmpdir_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    service.send_signal(signal.SIGTERM)

    _, stderr = service.communicate(timeout=15)

    assert service.returncode == exits.OK, stderr


def test_sweeps_unused_dirs_of_killed_unpacking_and_other_builds(
        tmpdir_env: dict[str, str], tmp_path: Path, spawn: Spawn) -> None:
    uid = os.geteuid()
    root = Path(tmpdir_env["TMPDIR"])
    killed = root / f".hc-{uid}-{'a' * 32}-Xy12Ab"
    other_build = root / f"hc-{uid}-{'b' * 32}"
    in_use = root / f"hc-{uid}-{'c' * 32}"
    for directory in (killed, other_build, in_use):
        (directory / "_internal").mkdir(parents=True)
        (directory / "_internal" / "lib.so").write_bytes(b"x")
        os.utime(directory, (time.time() - 3600,) * 2)
    user = spawn(["sleep", "60"], cwd=in_use)
    env = {**tmpdir_env, **FAST}
    service = spawn(
        [str(BINARY), "serve", "--host", "127.0.0.1", "--port", str(free_port()),
         "--state-dir", str(tmp_path / "state"), "--sweep-age", "1"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while (killed.exists() or other_build.exists()) and time.monotonic() < deadline:
            time.sleep(0.2)

        assert not killed.exists() and not other_build.exists()
        assert in_use.exists()
        assert len([n for n in os.listdir(root) if CACHE_NAME.match(n)]) == 2  # own + in use
    finally:
        user.kill()
        user.wait(10)
        service.send_signal(signal.SIGTERM)
        service.wait(10)


def test_a_probe_of_a_silent_port_ends_within_its_documented_bound(
        tmpdir_env: dict[str, str], silent_port: int, tmp_path: Path) -> None:
    """`--timeout` counted from the probe's start, plus WATCHDOG_GRACE at worst, plus the
    binary's own start-up (tens of milliseconds; a generous 0.3 s here for a noisy machine)."""
    run_binary("--version", env=tmpdir_env)  # the cache is unpacked: a probe's usual start
    started = time.monotonic()
    result = run_binary(PROBE, "--port", str(silent_port), "--state-dir", str(tmp_path),
                        "--timeout", "1", env=tmpdir_env)
    elapsed = time.monotonic() - started

    assert result.returncode == exits.FAILURE
    assert "no answer within the timeout" in result.stdout
    assert elapsed < 1 + WATCHDOG_GRACE + 0.3


def test_a_temp_dir_too_long_for_the_loader_path_is_refused_in_one_line(
        tmpdir_env: dict[str, str]) -> None:
    deep = Path(tmpdir_env["TMPDIR"]).joinpath(*["d" * 100] * 5)
    deep.mkdir(parents=True)

    result = run_binary("--version", env={**tmpdir_env, "TMPDIR": str(deep)})

    assert result.returncode == exits.FAILURE
    assert result.stderr.startswith("hc: the loader path ")
    assert "set TMPDIR to a shorter directory" in result.stderr
    assert result.stderr.count("\n") == 1
    assert os.listdir(deep) == []  # refused before unpacking anything
