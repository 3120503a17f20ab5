"""The state snapshot the service publishes for the probe: one small JSON file, one schema.

Written atomically (temp file + rename) so a reader sees the old or the new snapshot, never half
of one. Times are `time.monotonic()` readings: CLOCK_MONOTONIC is shared by every process on the
host (and in its containers), so the probe can compute ages immune to wall-clock jumps.
The probe reads it on every run, so it imports only `os`, `json` and `_thread` (the schema's
TypedDicts exist for the type checker only).
"""

from __future__ import annotations

import _thread
import json
import os

from hc.config import probe_address

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TypedDict

    class CheckState(TypedDict):
        """One check as last run."""

        status: str
        """pass, warn or fail."""
        tags: list[str]
        time: float | None
        """When it last ran (monotonic); None while pending."""
        output: str
        """Its output, cut to the kit's CHECK_OUTPUT_LIMIT; never an exception's message."""
        pending: bool

    class BeatState(TypedDict):
        """One heartbeat."""

        last: float
        """Its last beat (monotonic)."""
        max_age: float

    class HealthState(TypedDict):
        """What the health kit publishes (`Health.snapshot()`)."""

        pid: int
        started: float
        first_round_done: bool
        draining: bool
        status: str
        checks: dict[str, CheckState]
        heartbeats: dict[str, BeatState]

    class Snapshot(HealthState):
        """The whole file: the kit's state, when it was written and how often it is."""

        format: int
        written: float
        interval: float

FORMAT = 2
"""Version of the file's schema; a reader refuses any other (2: the file name holds the host)."""
MAX_BYTES = 256 * 1024
_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_SHAPE = {"format": int, "pid": int, "started": float, "first_round_done": bool,
          "draining": bool, "status": str, "checks": dict, "heartbeats": dict,
          "written": float, "interval": float}
_CHECK_SHAPE = {"status": str, "tags": list, "output": str, "pending": bool}
_BEAT_SHAPE = {"last": float, "max_age": float}


class StateError(OSError):
    """The snapshot cannot be written or read; the message is one line."""


def default_dir() -> str:
    """`/dev/shm/hc-<uid>` when /dev/shm is usable, else `<tmp>/hc-<uid>`.

    Per-user names keep another local user from planting a snapshot in a shared tmpfs.
    """
    name = f"hc-{os.geteuid()}"
    shm = "/dev/shm"  # noqa: S108 (a per-user dir below it, checked for ownership)
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return os.path.join(shm, name)
    import tempfile  # only without /dev/shm: the probe's fast path does not pay for it

    return os.path.join(tempfile.gettempdir(), name)


def path_for(state_dir: str, host: str, port: int, uds: str = "") -> str:
    """The snapshot file of the service listening on host:port (or on unix socket `uds`).

    Keyed by the address a probe connects to, so services on 127.0.0.1:P and 127.0.0.2:P each
    have their own file, and one listening on 0.0.0.0 is found by a probe of 127.0.0.1.
    """
    return os.path.join(state_dir or default_dir(), f"state-{_key(host, port, uds)}.json")


def socket_for(state_dir: str, host: str, port: int) -> str:
    """The unix socket beside the snapshot through which the probe reaches the service
    listening on host:port when others share that port (`reuse_port`)."""
    return os.path.join(state_dir or default_dir(), f"http-{_key(host, port)}.sock")


def _key(host: str, port: int, uds: str = "") -> str:
    """The part of a file name that tells one service's files from another's."""
    where = uds.strip("/") if uds else f"{probe_address(host)}-{port}"
    return "".join(c if c in _KEY_CHARACTERS else "_" for c in where)


def _private_name(directory: str, prefix: str) -> str:
    """A file name in our own 0700 dir that no other writer (process or thread) uses."""
    return os.path.join(directory, f".{prefix}-{os.getpid()}-{_thread.get_ident()}")


def _create(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                   0o600)


def prepare(path: str) -> None:
    """Create the snapshot's directory (0700), or check an existing one: a directory of ours
    that nobody else may write to (else another user could plant a healthy-looking snapshot).
    Raises StateError."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except FileExistsError:
        raise StateError(f"state dir {directory} is not a directory") from None
    except OSError as exc:
        raise StateError(f"state dir {directory} cannot be created: {exc.strerror}") from None
    info = os.stat(directory)
    if info.st_uid != os.geteuid():
        raise StateError(f"state dir {directory} belongs to uid {info.st_uid}, not to us")
    if info.st_mode & 0o022:
        raise StateError(f"state dir {directory} is writable by others (mode "
                         f"{info.st_mode & 0o7777:04o}); chmod 700 it or use another")
    try:
        trial = _private_name(directory, "probe")
        os.close(_create(trial))
        os.unlink(trial)
    except OSError as exc:
        raise StateError(f"state dir {directory} is not writable: {exc.strerror}") from None


def write(path: str, health: HealthState, written: float, interval: float) -> None:
    """Replace the snapshot atomically; raises StateError on failure."""
    snapshot: Snapshot = {"format": FORMAT, **health, "written": written, "interval": interval}
    data = json.dumps(snapshot, separators=(",", ":")).encode()
    tmp = _private_name(os.path.dirname(path), "state")
    try:
        with os.fdopen(_create(tmp), "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:  # noqa: SIM105 (contextlib would cost the probe ~1 ms of imports)
            os.unlink(tmp)
        except OSError:
            pass
        raise StateError(f"cannot write state snapshot {path}: {exc.strerror}") from None


def read(path: str) -> Snapshot:
    """Load a snapshot; raises StateError (one line) when missing, too big or not a snapshot
    of this schema."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise StateError(f"state snapshot {path} is missing (service not running?)") from None
    except OSError as exc:
        raise StateError(f"cannot read state snapshot {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise StateError(f"state snapshot {path} is larger than {MAX_BYTES} bytes")
    try:
        snapshot = json.loads(data)
    except ValueError:
        raise StateError(f"state snapshot {path} is not valid JSON") from None
    if not _fits(snapshot, _SHAPE) or snapshot["format"] != FORMAT \
            or not all(_fits(c, _CHECK_SHAPE) for c in snapshot["checks"].values()) \
            or not all(_fits(b, _BEAT_SHAPE) for b in snapshot["heartbeats"].values()):
        raise StateError(f"state snapshot {path} has an unknown format")
    result: Snapshot = snapshot
    return result


def _fits(value: object, shape: Mapping[str, type]) -> bool:
    """A JSON object with every key of `shape` of its type (an int passes as a float)."""
    if not isinstance(value, dict):
        return False
    for key, kind in shape.items():
        item = value.get(key)
        if kind is float and isinstance(item, int) and not isinstance(item, bool):
            continue
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            return False
    return True


def remove(path: str) -> None:
    """Delete the snapshot on a clean stop, so a later probe cannot read a dead service's state."""
    try:  # noqa: SIM105 (contextlib would cost the probe ~1 ms of imports)
        os.unlink(path)
    except FileNotFoundError:
        pass
