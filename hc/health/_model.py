"""Plain data of the health kit: statuses, check results, reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.Enum):
    """Outcome of a check; `warn` still counts as healthy (HTTP 200)."""

    PASS = "pass"  # noqa: S105 (a status, not a password)
    WARN = "warn"
    FAIL = "fail"

    @property
    def ok(self) -> bool:
        return self is not Status.FAIL

    @staticmethod
    def worst(statuses: list[Status]) -> Status:
        order = (Status.PASS, Status.WARN, Status.FAIL)
        return max(statuses, key=order.index, default=Status.PASS)


class Pending(enum.Enum):
    """Returned by a check with nothing to report yet (e.g. its first probe still runs): the
    check stays pending, and readiness and startup wait for it (the `started` line)."""

    PENDING = "pending"


PENDING = Pending.PENDING

CHECK_OUTPUT_LIMIT = 200
"""Characters of a check's output that are kept: in reports, the state snapshot and a watched
target's reason (a probe's whole output must fit the 4096 bytes Docker keeps)."""


@dataclass(frozen=True)
class Result:
    """What one run of a check found. `output` is shown to probes: keep secrets out of it."""

    status: Status
    output: str = ""
    observed: float | None = None
    unit: str = ""


@dataclass(frozen=True)
class Line:
    """One check in a report: its latest result and when it was taken (monotonic seconds)."""

    name: str
    result: Result
    time: float | None = None
    wall: float | None = None
    kind: str = ""

    @property
    def pending(self) -> bool:
        return self.time is None


@dataclass(frozen=True)
class Report:
    """The health of one endpoint (`livez`, `readyz`, `startupz`, `healthz`) right now."""

    name: str
    status: Status
    lines: list[Line] = field(default_factory=list)
