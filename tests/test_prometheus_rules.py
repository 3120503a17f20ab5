"""deploy/prometheus/hc-alerts.yml: rules Prometheus accepts (`promtool check rules`), alerts
that fire when their unit tests say (`promtool test rules`), on series hc really publishes."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hc.config import SERVE, load
from hc.health import Health
from hc.watcher import Watcher

RULES = Path(__file__).parent.parent / "deploy" / "prometheus" / "hc-alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(Debian package prometheus; scripts/deps.sh installs it)")
ONE_OF_EACH_KIND = ["redis://127.0.0.1:1", "sentinel://127.0.0.1:1/mymaster",
                    "http://127.0.0.1:1/", "tcp://127.0.0.1:1"]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), *args], cwd=RULES.parent, capture_output=True,
                          text=True, timeout=60, check=False)


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@needs_promtool
def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    tested = promtool("test", "rules", "hc-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def published_series() -> set[str]:
    """Every series name /metrics may hold, for targets of every kind (none checked yet)."""
    watcher = Watcher.from_settings(Health(), load(SERVE, {"target": ONE_OF_EACH_KIND}, env={}))
    body, _ = watcher.metrics.render("")
    asyncio.run(watcher.close())
    names = set()
    for family in text_string_to_metric_families(body.decode()):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def test_every_series_the_rules_use_is_one_hc_publishes() -> None:
    used = set(re.findall(r"\bhc_[a-z0-9_]+", RULES.read_text()))
    assert used, "no hc series in the rules"
    assert used <= published_series(), used - published_series()
