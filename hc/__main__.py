"""Entry point of the `hc` command and of the frozen binary.

`hc healthcheck` goes straight to the probe, before Typer or the service is imported: each probe
pays for every import (Typer ~50 ms, httpx ~70 ms), and Docker runs it every few seconds.
Only `hc healthcheck --help` takes the slow path, for Typer's help page.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["healthcheck"] and not {"--help", "-h"} & set(argv[1:]):
        from hc.probe import main as probe_main

        sys.exit(probe_main(argv[1:]))
    from hc.cli import run

    run()


if __name__ == "__main__":
    main()
