"""Faults a worker service lives through: a killed worker, a server restart, a Redis outage.

Each test runs real processes on loopback (the worker as a service runs it, a
Temporal dev server, a redis-server), breaks one of them while activities run,
and checks that every workflow still completes with the right result.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest
import redis.asyncio
from helpers.handles import wait_until_activity_runs
from helpers.workers import worker_process
from helpers.workflows import SquaresWorkflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from shadow_sdk.testing import DevServer, RedisServer

pytestmark = pytest.mark.slow

Handle = WorkflowHandle[SquaresWorkflow, list[int]]


async def start_squares(
    client: Client, task_queue: str, count: int, *, steps: int, seconds: float, shared: bool = False
) -> list[Handle]:
    return [
        await client.start_workflow(
            SquaresWorkflow.run,
            args=[steps, seconds, shared],
            id=f"squares-{n}-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        for n in range(count)
    ]


async def results(handles: list[Handle], *, within: float = 60) -> list[list[int]]:
    async with asyncio.timeout(within):
        return list(await asyncio.gather(*(handle.result() for handle in handles)))


async def test_workflows_complete_after_a_worker_is_killed_with_activities_in_flight(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """SIGKILL gives no chance to drain: the attempts time out and the next worker retries."""
    client = dev_server_env.client
    address = client.service_client.config.target_host
    async with worker_process(tmp_path, address, task_queue) as first:
        async with asyncio.timeout(30):
            await first.wait_for_ready()
        handles = await start_squares(client, task_queue, 4, steps=3, seconds=1.0)
        for handle in handles:
            await wait_until_activity_runs(handle)
        first.kill()
        killed = await asyncio.to_thread(first.wait)
    async with worker_process(tmp_path, address, task_queue) as second:
        finished = await results(handles)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait) == 0, second.output

    assert killed == -signal.SIGKILL
    assert finished == [[0, 1, 4]] * 4
    # History keeps the started event of the attempt that completed: attempt 2 for an
    # activity the killed worker was running.
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for handle in handles
        for event in (await handle.fetch_history()).events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert 2 in attempts, attempts


async def test_workflows_complete_across_a_server_restart_and_ready_follows_the_polls(
    task_queue: str, tmp_path: Path
) -> None:
    """The server goes away mid-run: /ready turns 503 past the grace, 200 once it is back."""
    with DevServer(database=tmp_path / "temporal.db").start() as server:
        client = await Client.connect(server.address)
        async with worker_process(
            tmp_path, server.address, task_queue, WORKER_POLL_FAILURE_GRACE="1"
        ) as worker:
            async with asyncio.timeout(30):
                await worker.wait_for_ready()
            handles = await start_squares(client, task_queue, 4, steps=3, seconds=1.0)
            await wait_until_activity_runs(handles[0])

            await asyncio.to_thread(server.stop)
            async with asyncio.timeout(30):
                during = await worker.wait_for_ready(503)
            await asyncio.to_thread(server.start)
            async with asyncio.timeout(60):
                await worker.wait_for_ready()
            finished = await results(handles)

    assert during == "not ready: stalled\n"
    assert finished == [[0, 1, 4]] * 4
    assert f"is Temporal at {server.address} (TEMPORAL_ADDRESS) up and reachable?" in (
        worker.output
    )
    assert "polls go through again: ready" in worker.output


async def test_workflows_complete_through_a_redis_outage(
    dev_server_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    """Breakers and caches fall back to the process while Redis is down, and use it again."""
    client = dev_server_env.client
    address = client.service_client.config.target_host
    async with worker_process(tmp_path, address, task_queue, REDIS_URL=redis_server.url) as worker:
        async with asyncio.timeout(30):
            await worker.wait_for_ready()
        handles = await start_squares(client, task_queue, 4, steps=4, seconds=0.5, shared=True)
        await wait_until_activity_runs(handles[0])

        redis_server.stop()
        await asyncio.sleep(2)
        redis_server.start()  # Empty: whatever it cached is gone.
        finished = await results(handles)

        # The worker writes to Redis again once its cooldown after the errors is over.
        keys: list[bytes] = []
        store = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            async with asyncio.timeout(30):
                for attempt in range(1000):
                    later = await start_squares(
                        client, task_queue, 1, steps=1, seconds=0.01 + attempt / 1000, shared=True
                    )
                    assert await results(later) == [[0]]
                    keys = [key async for key in store.scan_iter(f"shadow-cache:{task_queue}:*")]
                    if keys:
                        break
                    await asyncio.sleep(0.5)
        finally:
            await store.aclose()

    assert finished == [[0, 1, 4, 9]] * 4
    assert keys
    assert "circuit breaker 'fault-tests': shared state is unavailable" in worker.output
    assert "circuit breaker 'fault-tests': shared state is available again" in worker.output
