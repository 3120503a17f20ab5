"""Reports as Kubernetes-style text and as `application/health+json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hc.health._model import CHECK_OUTPUT_LIMIT, Line, Report, Status

JSON_TYPE = "application/health+json"


def line_text(line: Line) -> str:
    """`[+]name ok`, `[+]name warn: why` or `[-]name failed: why`."""
    result = line.result
    output = result.output[:CHECK_OUTPUT_LIMIT]
    if line.pending:
        return f"[+]{line.name} ok (pending)"
    if result.status is Status.PASS:
        return f"[+]{line.name} ok"
    word = "warn" if result.status is Status.WARN else "failed"
    mark = "+" if result.status.ok else "-"
    return f"[{mark}]{line.name} {word}" + (f": {output}" if output else "")


def text(report: Report, *, verbose: bool) -> str:
    """Plain text: `ok` when healthy; failed lines (all lines with verbose) and a verdict."""
    if report.status.ok and not verbose:
        return "ok\n"
    shown = report.lines if verbose else [x for x in report.lines if not x.result.status.ok]
    verdict = "passed" if report.status.ok else "failed"
    return "".join(line_text(x) + "\n" for x in shown) + f"{report.name} check {verdict}\n"


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def as_dict(report: Report, *, version: str = "") -> dict[str, Any]:
    """The report in the health+json draft's shape (status, checks: name -> [component])."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for line in report.lines:
        item: dict[str, Any] = {"status": line.result.status.value}
        if line.result.output:
            item["output"] = line.result.output[:CHECK_OUTPUT_LIMIT]
        if line.result.observed is not None:
            item["observedValue"] = line.result.observed
            if line.result.unit:
                item["observedUnit"] = line.result.unit
        if line.kind:
            item["componentType"] = line.kind
        if line.pending:
            item["pending"] = True
        when = _iso(line.wall)
        if when:
            item["time"] = when
        checks[line.name] = [item]
    body: dict[str, Any] = {"status": report.status.value, "description": report.name}
    if version:
        body["version"] = version
    body["checks"] = checks
    return body


def as_json(report: Report, *, version: str = "") -> str:
    return json.dumps(as_dict(report, version=version), separators=(",", ":")) + "\n"
