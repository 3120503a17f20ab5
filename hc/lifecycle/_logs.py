"""Logging of a service: where log lines go and how they look, as text or as JSON.

Both formats hide passwords in URLs, whatever code produced the line (targets scrub their own
passwords from what they log before it gets here).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from hc.config import redact_url

TEXT_LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = ("target", "check", "status", "reason")
"""What a log call may pass with `extra=` for the JSON format: the target or health check a
line is about, its status (pass, warn, fail) and the reason given."""


class RedactingFormatter(logging.Formatter):
    """Log lines with URL passwords hidden, whatever code produced them."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time` (RFC 3339, UTC), `level`, `logger`, `message`, the
    FIELDS the record carries, and `exception` (the traceback) when there is one; passwords in
    URLs hidden in every value."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((name, record.__dict__[name]) for name in FIELDS if name in record.__dict__)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps({key: redact_url(value) if isinstance(value, str) else value
                           for key, value in line.items()})


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log lines of `level` and above to stderr, as `text` or `json` (one object per line),
    passwords in URLs hidden."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else RedactingFormatter(TEXT_LAYOUT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
