"""The state snapshot the service publishes for the probe: one small JSON file.

Written atomically (temp file + rename) so a reader sees the old or the new snapshot, never half
of one. Times are `time.monotonic()` readings: CLOCK_MONOTONIC is shared by every process on the
host (and in its containers), so the probe can compute ages immune to wall-clock jumps.
The probe reads it on every run, so it imports only `os`, `json` and `_thread`.
"""

from __future__ import annotations

import _thread
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT = 1
MAX_BYTES = 256 * 1024
_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


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


def path_for(state_dir: str, port: int, uds: str = "") -> str:
    """The snapshot file of the service listening on `port` (or on unix socket `uds`)."""
    directory = state_dir or default_dir()
    key = "".join(c if c in _KEY_CHARACTERS else "_" for c in uds.strip("/")) if uds else port
    return os.path.join(directory, f"state-{key}.json")


def socket_for(state_dir: str, port: int) -> str:
    """The unix socket beside the snapshot through which the probe reaches the service
    listening on `port` when others share that port (`reuse_port`)."""
    return os.path.join(state_dir or default_dir(), f"http-{port}.sock")


def _private_name(directory: str, prefix: str) -> str:
    """A file name in our own 0700 dir that no other writer (process or thread) uses."""
    return os.path.join(directory, f".{prefix}-{os.getpid()}-{_thread.get_ident()}")


def _create(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                   0o600)


def prepare(path: str) -> None:
    """Create the snapshot's directory (0700) and prove it is writable, or raise StateError."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.stat(directory)
        if info.st_uid != os.geteuid():
            raise StateError(f"state dir {directory} belongs to uid {info.st_uid}, not to us")
        trial = _private_name(directory, "probe")
        os.close(_create(trial))
        os.unlink(trial)
    except StateError:
        raise
    except OSError as exc:
        raise StateError(f"state dir {directory} is not writable: {exc.strerror}") from None


def write(path: str, snapshot: dict[str, Any]) -> None:
    """Replace the snapshot atomically; raises StateError on failure."""
    data = json.dumps({"format": FORMAT, **snapshot}, separators=(",", ":")).encode()
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


def read(path: str) -> dict[str, Any]:
    """Load a snapshot; raises StateError (one line) when missing, too big or not a snapshot."""
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
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise StateError(f"state snapshot {path} has an unknown format")
    return snapshot


def remove(path: str) -> None:
    """Delete the snapshot on a clean stop, so a later probe cannot read a dead service's state."""
    try:  # noqa: SIM105 (contextlib would cost the probe ~1 ms of imports)
        os.unlink(path)
    except FileNotFoundError:
        pass
