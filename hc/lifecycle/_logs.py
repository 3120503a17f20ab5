"""Logging of a service: where log lines go and how they look."""

from __future__ import annotations

import logging
import sys

from hc.config import redact_url


class RedactingFormatter(logging.Formatter):
    """Log lines with URL passwords hidden, whatever code produced them."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


def setup_logging(level: str) -> None:
    """Log lines of `level` and above to stderr, passwords in URLs hidden."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
