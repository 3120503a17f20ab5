"""The health kit: register checks and heartbeats, read reports. Free of the rest of hc.

    from hc.health import Health, Result, Status

    health = Health()

    @health.check("db", tags=("ready",), timeout=2)
    async def db() -> Result:
        await pool.ping()
        return Result(Status.PASS)

    worker = health.heartbeat("worker", max_age=30)   # worker.beat() in the loop

Checks run in the background (`await health.run()`); `health.report("readyz")` reads the cache.
"""

from hc.endpoints import ENDPOINTS, TAGS
from hc.health._builtin import LoopLag, MemoryLimit, rss_bytes
from hc.health._model import (
    CHECK_OUTPUT_LIMIT,
    PENDING,
    Line,
    Pending,
    Report,
    Result,
    Status,
)
from hc.health._registry import CheckFn, Health, Heartbeat
from hc.health._render import JSON_TYPE, as_dict, as_json, line_text, text

__all__ = [
    "CHECK_OUTPUT_LIMIT",
    "ENDPOINTS",
    "JSON_TYPE",
    "PENDING",
    "TAGS",
    "CheckFn",
    "Health",
    "Heartbeat",
    "Line",
    "LoopLag",
    "MemoryLimit",
    "Pending",
    "Report",
    "Result",
    "Status",
    "as_dict",
    "as_json",
    "line_text",
    "rss_bytes",
    "text",
]
