"""One Prometheus registry for the Temporal SDK core's metrics and shadow_sdk's own."""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import prometheus_client
import prometheus_client.registry
import temporalio.common
import temporalio.runtime
from prometheus_client.metrics_core import Metric

BUCKETS_SECONDS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
"""Upper bounds of the latency histograms, in seconds (then +Inf)."""
BUCKETS_OTHER = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
"""Upper bounds of histograms that are not durations (then +Inf)."""
BUFFER_SIZE = 100_000
"""Metric updates the SDK core may hold before they are drained."""

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    bounds: Sequence[float]
    counts: list[int] = field(init=False)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1


@dataclass(frozen=True)
class _Meta:
    name: str
    kind: int
    description: str


class TemporalMetricsCollector(prometheus_client.registry.Collector):
    """Turns the SDK core's buffered metric updates into Prometheus metrics.

    The Temporal SDK core records its own metrics (task slots, latencies,
    polls, completed workflows) and every metric made with a Temporal
    ``MetricMeter``, shadow_sdk's included, into a
    :class:`temporalio.runtime.MetricBuffer`. This collector drains that buffer
    whenever Prometheus scrapes, and on :meth:`drain` in between, and keeps
    counters, gauges and histograms so that a single registry serves them all.
    Durations are histograms in seconds, named with a ``_seconds`` suffix.

    Args:
        buffer: The buffer of the runtime whose metrics to collect.
    """

    def __init__(self, buffer: temporalio.runtime.MetricBuffer) -> None:
        self._buffer = buffer
        self._lock = threading.Lock()
        # The core hands out the same metric and attribute objects for the same metric
        # and attribute set; caching by id() is safe as the caches keep them alive.
        self._meta: dict[int, tuple[temporalio.runtime.BufferedMetric, _Meta]] = {}
        self._labels: dict[int, tuple[temporalio.common.MetricAttributes, Labels]] = {}
        self._counters: dict[tuple[str, Labels], float] = {}
        self._gauges: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], _Histogram] = {}

    def drain(self) -> None:
        """Apply every buffered update; call it often enough that the buffer never fills."""
        with self._lock:
            for update in self._buffer.retrieve_updates():
                meta = self._meta_of(update.metric)
                key = (meta.name, self._labels_of(update.attributes))
                value = float(update.value)
                if meta.kind == temporalio.runtime.BUFFERED_METRIC_KIND_COUNTER:
                    self._counters[key] = self._counters.get(key, 0.0) + value
                elif meta.kind == temporalio.runtime.BUFFERED_METRIC_KIND_GAUGE:
                    self._gauges[key] = value
                else:
                    bounds = BUCKETS_SECONDS if meta.name.endswith("_seconds") else BUCKETS_OTHER
                    histogram = self._histograms.setdefault(key, _Histogram(bounds))
                    histogram.observe(value)

    def collect(self) -> Iterator[Metric]:
        """See base class."""
        self.drain()
        with self._lock:
            families: dict[str, Metric] = {}
            for _, meta in self._meta.values():
                typ = {0: "counter", 1: "gauge"}.get(meta.kind, "histogram")
                families.setdefault(meta.name, Metric(meta.name, meta.description, typ))
            for (name, labels), value in self._counters.items():
                families[name].add_sample(f"{name}_total", dict(labels), value)
            for (name, labels), value in self._gauges.items():
                families[name].add_sample(name, dict(labels), value)
            for (name, labels), histogram in self._histograms.items():
                _add_histogram(families[name], name, dict(labels), histogram)
        yield from families.values()

    def _meta_of(self, metric: temporalio.runtime.BufferedMetric) -> _Meta:
        cached = self._meta.get(id(metric))
        if cached is not None:
            return cached[1]
        name = metric.name
        if metric.unit == "s" and not name.endswith("_seconds"):
            name += "_seconds"
        meta = _Meta(name, metric.kind, metric.description or name)
        self._meta[id(metric)] = (metric, meta)
        return meta

    def _labels_of(self, attributes: temporalio.common.MetricAttributes) -> Labels:
        cached = self._labels.get(id(attributes))
        if cached is not None:
            return cached[1]
        labels = tuple(sorted((key, _label_value(value)) for key, value in attributes.items()))
        self._labels[id(attributes)] = (attributes, labels)
        return labels


def _add_histogram(
    family: Metric, name: str, labels: dict[str, str], histogram: _Histogram
) -> None:
    cumulative = 0
    for bound, count in zip([*histogram.bounds, math.inf], histogram.counts, strict=True):
        cumulative += count
        le = "+Inf" if math.isinf(bound) else repr(float(bound))
        family.add_sample(f"{name}_bucket", {**labels, "le": le}, cumulative)
    family.add_sample(f"{name}_count", labels, histogram.count)
    family.add_sample(f"{name}_sum", labels, histogram.total)


def _label_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def registry_for(collector: TemporalMetricsCollector) -> prometheus_client.CollectorRegistry:
    """A registry with the Temporal metrics of ``collector`` and the process's own."""
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    return registry
