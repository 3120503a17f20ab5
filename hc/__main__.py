"""Entry point of the `hc` command and of the frozen binary.

`hc healthcheck` goes straight to the probe, before Typer or the service is imported: each probe
pays for every import (Typer ~50 ms, httpx ~70 ms), and Docker runs it every few seconds.
Only `hc healthcheck --help` takes the slow path, for Typer's help page.

The single-file binary's launcher starts Python with SIGTERM and SIGINT blocked: a stop that
arrives while hc starts then waits, instead of killing the process (exit 143) or, for PID 1 in
a container, being dropped. Each path unblocks them as soon as it has its own handlers.
"""

from __future__ import annotations

import os
import signal
import sys

from hc import exits

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_while_starting(signum: int, frame: object) -> None:
    """`hc serve` before its lifecycle runs: a stop request ends it cleanly."""
    sys.exit(exits.OK)


def _interrupt_probe(signum: int, frame: object) -> None:
    """`hc healthcheck` interrupted (Ctrl-C, a kill): one line and unhealthy, no traceback."""
    os.write(1, f"unhealthy: probe interrupted by {signal.Signals(signum).name}\n".encode())
    os._exit(exits.FAILURE)


def _handle_stop_signals(handler: Callable[[int, object], None]) -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["healthcheck"] and not {"--help", "-h"} & set(argv[1:]):
        _handle_stop_signals(_interrupt_probe)
        from hc.probe import main as probe_main

        sys.exit(probe_main(argv[1:]))
    # Importing the service takes a while. A SIGTERM then (`docker stop` right after start) must
    # still end the process with exit 0; `hc serve` installs its own handlers once running.
    _handle_stop_signals(_stop_while_starting)
    from hc.cli import run

    run()


if __name__ == "__main__":
    main()
