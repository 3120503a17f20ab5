"""Entry point of the `hc` command and of the frozen binary.

`hc healthcheck` goes straight to the probe, before Typer or the service is imported: each probe
pays for every import (Typer ~50 ms, httpx ~70 ms), and Docker runs it every few seconds.
Only `hc healthcheck --help` takes the slow path, for Typer's help page.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType


def _stop_while_starting(signum: int, frame: FrameType | None) -> None:
    from hc import exits

    sys.exit(exits.OK)


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["healthcheck"] and not {"--help", "-h"} & set(argv[1:]):
        from hc.probe import main as probe_main

        sys.exit(probe_main(argv[1:]))
    # Importing the service takes most of a second. A SIGTERM then (`docker stop` right after
    # start) must still end the process with exit 0, not kill it: a bootloader running as PID 1
    # reports death by a signal as exit 2. `hc serve` installs its own handlers once running.
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_while_starting)
    from hc.cli import run

    run()


if __name__ == "__main__":
    main()
