"""What the resilience tests share: metrics, calls through a breaker, workflows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import prometheus_client
import pytest
import redis.asyncio
import temporalio.common
from temporalio.client import Client, WorkflowHandle

from shadow_sdk import ShadowSettings, ShadowWorker
from shadow_sdk.observability import TemporalMetricsCollector, create_runtime, registry_for
from shadow_sdk.resilience import CircuitBreaker, CircuitState
from shadow_sdk.testing import Scrape


class Metrics:
    """A worker's runtime whose meter a helper reports to, read back the way Prometheus does."""

    def __init__(self) -> None:
        self.runtime, buffer = create_runtime()
        self.registry = registry_for(TemporalMetricsCollector(buffer))

    @property
    def meter(self) -> temporalio.common.MetricMeter:
        return self.runtime.metric_meter

    def scrape(self) -> Scrape:
        return Scrape.parse(prometheus_client.generate_latest(self.registry).decode())

    def requests(self, cache: str, tier: str, outcome: str) -> float:
        """``shadow_cache_requests_total`` of a cache's tier and outcome."""
        return self.scrape().value(
            "shadow_cache_requests_total", cache=cache, tier=tier, outcome=outcome
        )

    def errors(self, cache: str, **labels: str) -> float:
        """``shadow_cache_errors_total`` of a cache, narrowed by ``labels``."""
        return self.scrape().value("shadow_cache_errors_total", cache=cache, **labels)


class Workflows:
    """A ShadowWorker on the test's task queue, and workflows started on it with unique ids.

    Args:
        client: The client the worker and the workflows use.
        task_queue: The test's own task queue.
        workflows: Registered on the worker.
        activities: Registered on the worker.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        *,
        workflows: Sequence[type],
        activities: Sequence[Callable[..., Any]],
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self._workflows = workflows
        self._activities = activities

    @contextlib.asynccontextmanager
    async def worker(self) -> AsyncIterator[Workflows]:
        """The worker polls while the block runs, and drains when it ends."""
        async with ShadowWorker(
            self.client,
            ShadowSettings(temporal_task_queue=self.task_queue),
            workflows=self._workflows,
            activities=self._activities,
        ):
            yield self

    async def start(self, run: Callable[..., Any], *args: Any, **options: Any) -> WorkflowHandle:
        """Start the workflow whose run method is ``run`` with ``args``, on the test's queue."""
        return await self.client.start_workflow(
            run, args=args, id=f"test-{uuid.uuid4()}", task_queue=self.task_queue, **options
        )

    async def execute(self, run: Callable[..., Any], *args: Any) -> Any:
        """Start the workflow under a worker of its own, and return its result."""
        async with self.worker():
            return await (await self.start(run, *args)).result()


class Boom(Exception):
    """What the guarded dependency raises."""


async def succeed() -> str:
    return "ok"


async def fail() -> str:
    raise Boom("down")


async def outcome(breaker: CircuitBreaker, ok: bool) -> None:
    """One call through ``breaker`` that succeeds or fails; the failure is swallowed."""
    if ok:
        assert await breaker.call(succeed) == "ok"
    else:
        with pytest.raises(Boom):
            await breaker.call(fail)


async def calls(breaker: CircuitBreaker, pattern: str) -> None:
    """Calls in order: ``s`` succeeds, ``f`` fails."""
    for char in pattern:
        await outcome(breaker, char == "s")


async def open_circuit(breaker: CircuitBreaker) -> None:
    """Fail until the breaker opens."""
    while breaker.state is not CircuitState.OPEN:
        await outcome(breaker, ok=False)


# Cached functions.

LOGGER = "shadow_sdk.resilience"


class Counted:
    """``function`` counts its calls and returns ``result(*args)``; ``gate`` holds it until set."""

    def __init__(self, result: Callable[..., object] = lambda *args: list(args)) -> None:
        self.calls = 0
        self.result = result
        self.gate = asyncio.Event()
        self.gate.set()

        async def function(*args: object) -> object:
            self.calls += 1
            await self.gate.wait()
            return self.result(*args)

        self.function = function


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno == logging.WARNING
    ]


async def keys_of(client: redis.asyncio.Redis, name: str) -> list[str]:
    return sorted([key.decode() async for key in client.scan_iter(f"shadow-cache:{name}:*")])
