"""Exit codes: the one definition used by the CLI, the probe, the docs and the tests."""

OK = 0
"""`serve`: clean stop after SIGTERM/SIGINT. `healthcheck`: healthy."""
FAILURE = 1
"""`serve`: runtime failure such as a port in use. `healthcheck`: unhealthy, for any reason."""
USAGE = 2
"""`serve` and other Typer commands: bad command line (Click). Never used by `healthcheck`."""
CONFIG = 78
"""`serve`: bad configuration (EX_CONFIG from sysexits.h)."""
