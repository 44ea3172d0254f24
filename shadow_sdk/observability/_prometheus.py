"""One Prometheus registry for the Temporal SDK core's metrics and shadow_sdk's own."""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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
BUFFER_SIZE = 25_000
"""Metric updates the SDK core may hold before they are drained.

The core allocates every slot up front, about 100 bytes each, so the buffer is sized
with the drain interval (``Observability`` drains four times a second): 100,000
updates a second fit. A worker makes about 70 per workflow (its slot gauges, task
latencies, polls): 3,200 a second at 47 workflows a second here. A full buffer drops
updates, and the core logs an error saying so.
"""

Labels = tuple[tuple[str, str], ...]
Listener = Callable[[Sequence[tuple[str, Labels, float]]], None]
"""Called with the ``(name, labels, value)`` updates of one drain, in order."""


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

    Attribute names become label names as they are: give metrics attributes that
    are valid Prometheus label names (``http_method``, not ``http.method``), as
    the SDK core's and shadow_sdk's are. ``prometheus_client`` 0.26 turns the
    characters Prometheus does not allow into underscores when it exposes them;
    older releases may not.

    Args:
        buffer: The buffer of the runtime whose metrics to collect.
        labels: Labels added to every series, over an attribute of the same name:
            the process's Worker Deployment Version (``deployment_name``,
            ``build_id``). The runtime's ``TelemetryConfig(global_tags=...)`` does
            not reach a buffer's updates, hence here. They are the same on every
            series of a process, so they add no series to Prometheus, which tells
            processes apart already, and ``sum by (build_id) (...)`` compares the
            versions of a rollout without a join. :func:`registry_for` also
            exposes them once, as ``shadow_worker_info``.
    """

    def __init__(
        self,
        buffer: temporalio.runtime.MetricBuffer,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._buffer = buffer
        self.labels: dict[str, str] = dict(labels or {})
        self._lock = threading.Lock()
        # Keyed by what is exported, so the tables grow with the series, never with the
        # number of metric handles or attribute sets the core hands out (a new one per
        # handle made, for instance per workflow run).
        self._meta: dict[str, _Meta] = {}
        self._counters: dict[tuple[str, Labels], float] = {}
        self._gauges: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], _Histogram] = {}
        self._listeners: list[Listener] = []

    @property
    def entries(self) -> int:
        """Entries in the collector's tables: one per metric family and one per series.

        What the collector holds grows with this number, which is bounded by what
        ``/metrics`` exports, and not with the number of workflows or activities run.
        """
        with self._lock:
            return len(self._meta) + len(self._counters) + len(self._gauges) + len(self._histograms)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with the ``(name, labels, value)`` updates of every drain.

        Listeners run under the collector's lock, in the thread that drains; they must
        be quick and must not call back into the collector.
        """
        with self._lock:
            self._listeners.append(listener)

    def drain(self) -> None:
        """Apply every buffered update; call it often enough that the buffer never fills."""
        with self._lock:
            updates = self._buffer.retrieve_updates()
            # The core hands out one object per metric handle and attribute set, the same
            # across updates: resolving each once per drain saves most of the work, and
            # nothing is kept past the drain (ids are only unique while the updates live).
            metas: dict[int, _Meta] = {}
            labels_of: dict[int, Labels] = {}
            drained: list[tuple[str, Labels, float]] = []
            for update in updates:
                meta = metas.get(id(update.metric))
                if meta is None:
                    meta = metas[id(update.metric)] = self._meta_of(update.metric)
                labels = labels_of.get(id(update.attributes))
                if labels is None:
                    labels = labels_of[id(update.attributes)] = _labels(
                        update.attributes, self.labels
                    )
                key = (meta.name, labels)
                value = float(update.value)
                if meta.kind == temporalio.runtime.BUFFERED_METRIC_KIND_COUNTER:
                    self._counters[key] = self._counters.get(key, 0.0) + value
                elif meta.kind == temporalio.runtime.BUFFERED_METRIC_KIND_GAUGE:
                    self._gauges[key] = value
                else:
                    bounds = BUCKETS_SECONDS if meta.name.endswith("_seconds") else BUCKETS_OTHER
                    histogram = self._histograms.setdefault(key, _Histogram(bounds))
                    histogram.observe(value)
                if self._listeners:
                    drained.append((meta.name, labels, value))
            for listener in self._listeners:
                listener(drained)

    def collect(self) -> Iterator[Metric]:
        """See base class."""
        self.drain()
        with self._lock:
            families: dict[str, Metric] = {}
            for meta in self._meta.values():
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
        name = metric.name
        if metric.unit == "s" and not name.endswith("_seconds"):
            name += "_seconds"
        meta = self._meta.get(name)
        if meta is None:
            meta = self._meta[name] = _Meta(name, metric.kind, metric.description or name)
        return meta


def _labels(attributes: temporalio.common.MetricAttributes, fixed: Mapping[str, str]) -> Labels:
    labels = {key: _label_value(value) for key, value in attributes.items()}
    return tuple(sorted({**labels, **fixed}.items()))


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
    """A registry with the Temporal metrics of ``collector`` and the process's own.

    When the collector has fixed labels (a versioned worker), they are also exposed
    as ``shadow_worker_info{deployment_name="...",build_id="..."} 1``, after the
    Prometheus ``*_info`` convention: the ``process_*`` and ``python_*`` metrics
    do not carry them, and a join on the instance
    (``* on (instance) group_left (build_id) shadow_worker_info``) attributes
    those to a version too; ``count by (build_id) (shadow_worker_info)`` counts
    the processes of each version.
    """
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    if collector.labels:
        info = prometheus_client.Info(
            "shadow_worker", "The Worker Deployment Version this worker runs as", registry=registry
        )
        info.info(collector.labels)
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    return registry
