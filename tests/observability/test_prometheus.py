"""The bridge from the Temporal runtime's metric buffer to one Prometheus registry."""

from __future__ import annotations

import asyncio

import prometheus_client

from shadow_sdk.observability import (
    Observability,
    TemporalMetricsCollector,
    create_runtime,
    registry_for,
)
from shadow_sdk.observability._prometheus import BUFFER_SIZE
from shadow_sdk.testing import Scrape

VERSION = {"deployment_name": "orders", "build_id": "2026-12-06.3"}


def observability(labels: dict[str, str] | None = None) -> Observability:
    runtime, buffer = create_runtime()
    collector = TemporalMetricsCollector(buffer, labels=labels)
    return Observability(runtime=runtime, collector=collector, registry=registry_for(collector))


def exposed(obs: Observability) -> Scrape:
    return Scrape.parse(prometheus_client.generate_latest(obs.registry).decode())


def test_counters_gauges_and_histograms_keep_their_kind_labels_and_values() -> None:
    obs = observability()
    meter = obs.runtime.metric_meter
    jobs = meter.create_counter("jobs", "Jobs done")
    jobs.add(3, {"kind": "a", "urgent": True})
    jobs.add(2, {"kind": "a", "urgent": True})
    jobs.add(1, {"kind": "b", "urgent": False})
    depth = meter.create_gauge("queue_depth", "Items waiting")
    depth.set(7)
    depth.set(4)
    wait = meter.create_histogram_float("wait", "Time waited", "s")
    for seconds in (0.02, 0.2, 2.0):
        wait.record(seconds)
    meter.create_histogram("batch_size", "Items per batch").record(30)

    metrics = exposed(obs)

    assert metrics.types["jobs"] == "counter"
    assert metrics.value("jobs_total", kind="a", urgent="true") == 5
    assert metrics.value("jobs_total", kind="b", urgent="false") == 1
    assert metrics.types["queue_depth"] == "gauge"
    assert metrics.value("queue_depth") == 4
    # A duration gets the _seconds suffix and second buckets; others do not.
    assert metrics.types["wait_seconds"] == "histogram"
    assert metrics.value("wait_seconds_count") == 3
    assert metrics.value("wait_seconds_sum") == 2.22
    assert metrics.value("wait_seconds_bucket", le="0.025") == 1
    assert metrics.value("wait_seconds_bucket", le="0.25") == 2
    assert metrics.value("wait_seconds_bucket", le="+Inf") == 3
    assert metrics.value("batch_size_bucket", le="25.0") == 0
    assert metrics.value("batch_size_bucket", le="50.0") == 1
    # The process's own metrics share the registry.
    assert metrics.types["process_cpu_seconds"] == "counter"


def test_counters_accumulate_across_scrapes() -> None:
    obs = observability()
    counter = obs.runtime.metric_meter.create_counter("ticks")
    counter.add(1)
    first = exposed(obs).value("ticks_total")
    counter.add(1)

    assert (first, exposed(obs).value("ticks_total")) == (1, 2)


async def test_drains_the_buffer_even_when_nobody_scrapes() -> None:
    """More updates than the buffer holds, with no scrape between: none is dropped."""
    obs = observability()
    counter = obs.runtime.metric_meter.create_counter("events")
    half = BUFFER_SIZE * 3 // 4
    async with obs:
        for _ in range(half):
            counter.add(1)
        await asyncio.sleep(1.5)
        for _ in range(half):
            counter.add(1)

    assert exposed(obs).value("events_total") == 2 * half


def test_fixed_labels_reach_every_series_and_the_info_metric() -> None:
    """A versioned worker's version labels each series, even over a same-named attribute."""
    obs = observability(VERSION)
    meter = obs.runtime.metric_meter
    meter.create_counter("jobs").add(2, {"kind": "a", "build_id": "stale"})
    meter.create_gauge("queue_depth").set(7)
    meter.create_histogram_float("wait", unit="s").record(0.2)

    metrics = exposed(obs)

    for name in ("jobs_total", "queue_depth", "wait_seconds_count", "wait_seconds_bucket"):
        label_sets = metrics.label_sets(name)
        assert label_sets, name
        assert all(labels.items() >= VERSION.items() for labels in label_sets), name
    assert metrics.value("jobs_total", kind="a", **VERSION) == 2
    assert metrics.types["shadow_worker_info"] == "gauge"  # An info metric, in the text format.
    assert metrics.label_sets("shadow_worker_info") == [VERSION]
    assert metrics.value("shadow_worker_info") == 1


def test_without_fixed_labels_there_is_no_version_and_no_info_metric() -> None:
    obs = observability()
    obs.runtime.metric_meter.create_counter("jobs").add(1, {"kind": "a"})

    metrics = exposed(obs)

    assert metrics.label_sets("jobs_total") == [{"kind": "a"}]
    assert "shadow_worker_info" not in {sample.name for sample in metrics.samples}
