"""Prometheus metrics of the watcher, in a registry of its own (not prometheus-client's global
one, so embedding hc never mixes its series with the host application's).

Per-target series are produced at scrape time from the scheduler's state: a scrape costs one
pass over the targets and no series outlives what it describes. Besides the `hc_target_*`
series of every target, each kind declares its own (`Kind.series`) and its probers' details
give their samples. Label `target` is the target's name, never its URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hc.health import Status
from hc.watcher._model import Series
from hc.watcher._scheduler import TargetState

CHECK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0)
LATENESS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
                    0.5, 1.0, 2.0)


class Metrics:
    """The registry behind /metrics: target series, those of the kinds in use, check timings,
    the process."""

    def __init__(self, states: Sequence[TargetState], series: Iterable[Series] = ()) -> None:
        self.registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.registry.register(_TargetCollector(states, series))
        self._check_seconds = Histogram(
            "hc_target_check_seconds", "Time a target check took, timeouts included.",
            ("target", "kind"), buckets=CHECK_BUCKETS, registry=self.registry)
        self._lateness = Histogram(
            "hc_scheduler_lateness_seconds", "How late target checks started against their "
            "schedule, waiting for a free slot included.", buckets=LATENESS_BUCKETS,
            registry=self.registry)

    def observe(self, state: TargetState, duration: float, lateness: float) -> None:
        """Record one finished check."""
        self._check_seconds.labels(state.target.name, _kind(state)).observe(duration)
        self._lateness.observe(lateness)

    def render(self, accept: str) -> tuple[bytes, str]:
        """(body, content type) for a scrape, in the format the Accept header asks for."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def _kind(state: TargetState) -> str:
    return state.target.kind or "unknown"


def _family(series: Series) -> CounterMetricFamily | GaugeMetricFamily:
    family = CounterMetricFamily if series.counter else GaugeMetricFamily
    return family(series.name, series.help, labels=("target", *series.labels))


class _TargetCollector(Collector):
    def __init__(self, states: Sequence[TargetState], series: Iterable[Series]) -> None:
        self.states = states
        self.series = {s.name: s for s in series}  # kinds may share a series (one family)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hc_target_up", "1 when the last check of the target passed or "
                               "warned, 0 when it failed.", labels=("target", "kind"))
        failures = GaugeMetricFamily("hc_target_consecutive_failures", "Checks of the target "
                                     "failed in a row.", labels=("target", "kind"))
        failed = CounterMetricFamily("hc_target_check_failures", "Failed checks of the "
                                     "target since the watcher started.",
                                     labels=("target", "kind"))
        checked = GaugeMetricFamily("hc_target_last_check_timestamp_seconds", "When the last "
                                    "check of the target ended (Unix time).",
                                    labels=("target", "kind"))
        families = {name: _family(series) for name, series in self.series.items()}
        for state in self.states:
            last = state.last
            if last is None:
                continue
            labels = [state.target.name, _kind(state)]
            up.add_metric(labels, float(last.status is not Status.FAIL))
            failures.add_metric(labels, state.consecutive_failures)
            failed.add_metric(labels, state.failures)
            checked.add_metric(labels, state.checked_at or 0.0)
            if state.details is None:
                continue
            for series, values, value in state.details.samples():
                families[series.name].add_metric([state.target.name, *values], value)
        yield from (up, failures, failed, checked, *families.values())
