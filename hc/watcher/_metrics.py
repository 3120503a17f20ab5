"""Prometheus metrics of the watcher, in a registry of its own (not prometheus-client's global
one, so embedding hc never mixes its series with the host application's).

Per-target gauges are produced at scrape time from the scheduler's state: a scrape costs one
pass over the targets and no series outlives what it describes. Label `target` is the target's
name, never its URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
from hc.watcher._scheduler import TargetState

CHECK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0)
LATENESS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
                    0.5, 1.0, 2.0)


class Metrics:
    """The registry behind /metrics: target and Redis series, check timings, the process."""

    def __init__(self, states: Sequence[TargetState]) -> None:
        self.registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.registry.register(_TargetCollector(states))
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


class _TargetCollector(Collector):
    def __init__(self, states: Sequence[TargetState]) -> None:
        self.states = states

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
        role = GaugeMetricFamily("hc_redis_role", "1 for the role the Redis target has, 0 for "
                                 "the other.", labels=("target", "role"))
        replicas = GaugeMetricFamily("hc_redis_connected_replicas", "Replicas linked to the "
                                     "Redis primary.", labels=("target",))
        lag = GaugeMetricFamily("hc_redis_replication_lag_bytes", "The Redis primary's offset "
                                "minus the lowest offset a linked replica acknowledged.",
                                labels=("target",))
        link = GaugeMetricFamily("hc_redis_primary_link_up", "1 when the Redis replica's link "
                                 "to its primary is up.", labels=("target",))
        last_io = GaugeMetricFamily("hc_redis_primary_last_io_seconds", "Seconds since the "
                                    "Redis replica last heard from its primary.",
                                    labels=("target",))
        changes = CounterMetricFamily("hc_redis_role_changes", "Role changes (failovers) of "
                                      "the Redis target seen since the watcher started.",
                                      labels=("target",))
        for state in self.states:
            last = state.last
            if last is None:
                continue
            labels = [state.target.name, _kind(state)]
            up.add_metric(labels, float(last.status is not Status.FAIL))
            failures.add_metric(labels, state.consecutive_failures)
            failed.add_metric(labels, state.failures)
            checked.add_metric(labels, state.checked_at or 0.0)
            name = [state.target.name]
            if state.redis is not None:
                changes.add_metric(name, state.redis.role_changes)
            info = last.redis
            if info is None:
                continue  # no answer this time: nothing current to report
            for each in ("primary", "replica"):
                role.add_metric([*name, each], float(info.role == each))
            if info.role == "primary":
                replicas.add_metric(name, info.replicas)
                if info.lag_bytes is not None:
                    lag.add_metric(name, info.lag_bytes)
            else:
                link.add_metric(name, float(bool(info.link_up)))
                if info.last_io_seconds is not None:
                    last_io.add_metric(name, info.last_io_seconds)
        yield from (up, failures, failed, checked, role, replicas, lag, link, last_io, changes)
