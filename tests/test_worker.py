from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from workflows import SlowStepWorkflow, slow_step

from shadow_sdk import SettingsError, ShadowPlugin, ShadowSettings, ShadowWorker

WORKER_PROCESS = Path(__file__).with_name("worker_process.py")


async def wait_until_activity_runs(handle: WorkflowHandle[object, object]) -> None:
    async with asyncio.timeout(30):
        while True:
            description = await handle.describe()
            pending = description.raw_description.pending_activities
            if pending and pending[0].state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                return
            await asyncio.sleep(0.05)


async def test_applies_settings_to_the_worker(temporal_client: Client, task_queue: str) -> None:
    """Task queue, slots, cache size and graceful timeout come from the settings."""
    settings = ShadowSettings(
        temporal_task_queue=task_queue,
        worker_max_concurrent_activities=7,
        worker_max_concurrent_workflow_tasks=3,
        worker_max_cached_workflows=11,
        worker_graceful_shutdown_timeout=12,
    )

    worker = ShadowWorker(temporal_client, settings, activities=[slow_step]).worker
    config = worker.config(active_config=True)

    assert worker.task_queue == task_queue
    assert config.get("max_concurrent_activities") == 7
    assert config.get("max_concurrent_workflow_tasks") == 3
    assert config.get("max_cached_workflows") == 11
    assert config.get("graceful_shutdown_timeout") == timedelta(seconds=12)


async def test_a_worker_without_task_queue_is_named(temporal_client: Client) -> None:
    """The task queue has no sensible default, so a worker without one stops at start-up."""
    with pytest.raises(SettingsError) as excinfo:
        ShadowWorker(temporal_client, ShadowSettings(), activities=[slow_step])

    assert excinfo.value.problems == ("TEMPORAL_TASK_QUEUE: a worker needs a task queue to poll",)


async def test_a_worker_that_must_authorize_needs_a_verifier(
    temporal_client: Client, task_queue: str
) -> None:
    """AUTH_REQUIRED stops a worker that could not verify tokens, not a client that sends one."""
    settings = ShadowSettings(temporal_task_queue=task_queue, auth_required=True, auth_token="t")

    with pytest.raises(SettingsError) as excinfo:
        ShadowWorker(temporal_client, settings, activities=[slow_step])

    assert excinfo.value.problems == (
        "AUTH_REQUIRED: a worker needs AUTH_HS256_SECRET, AUTH_PUBLIC_KEY_PATH or AUTH_JWKS_PATH "
        "to verify tokens",
    )


async def test_explicit_worker_options_win_over_settings(
    temporal_client: Client, task_queue: str
) -> None:
    """Code can still override a setting for one worker."""
    settings = ShadowSettings(temporal_task_queue=task_queue, worker_max_cached_workflows=11)

    worker = ShadowWorker(
        temporal_client, settings, activities=[slow_step], max_cached_workflows=0
    ).worker

    assert worker.config(active_config=True).get("max_cached_workflows") == 0


async def test_runs_workflows_inside_its_context(temporal_client: Client, task_queue: str) -> None:
    """As an async context manager it polls for the block's duration; tests use it so."""
    settings = ShadowSettings(temporal_task_queue=task_queue)

    async with ShadowWorker(
        temporal_client, settings, workflows=[SlowStepWorkflow], activities=[slow_step]
    ) as worker:
        result = await temporal_client.execute_workflow(
            SlowStepWorkflow.run, 0.1, id=f"slow-{uuid.uuid4()}", task_queue=task_queue
        )

    assert result == "finished"
    assert worker.worker.is_shutdown


async def test_request_shutdown_ends_run(temporal_client: Client, task_queue: str) -> None:
    """run() returns normally once shutdown is requested, which makes the process exit 0."""
    shadow_worker = ShadowWorker(
        temporal_client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[SlowStepWorkflow],
        activities=[slow_step],
    )
    running = asyncio.create_task(shadow_worker.run())
    result = await temporal_client.execute_workflow(
        SlowStepWorkflow.run, 0.1, id=f"slow-{uuid.uuid4()}", task_queue=task_queue
    )

    shadow_worker.request_shutdown()
    await asyncio.wait_for(running, timeout=30)

    assert result == "finished"
    assert shadow_worker.worker.is_shutdown


async def test_restores_the_signal_handlers_it_replaced(
    temporal_client: Client, task_queue: str
) -> None:
    """After run(), SIGTERM and SIGINT are handled as they were before it."""

    def custom(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, custom)
    sigint_handler = signal.getsignal(signal.SIGINT)
    try:
        shadow_worker = ShadowWorker(
            temporal_client, ShadowSettings(temporal_task_queue=task_queue), activities=[slow_step]
        )
        running = asyncio.create_task(shadow_worker.run())
        await asyncio.sleep(0.5)
        shadow_worker.request_shutdown()
        await asyncio.wait_for(running, timeout=30)

        assert signal.getsignal(signal.SIGTERM) is custom
        assert signal.getsignal(signal.SIGINT) is sigint_handler
    finally:
        signal.signal(signal.SIGTERM, before)


async def test_a_worker_that_cannot_start_says_why_and_never_claims_to_poll(
    dev_server_env: WorkflowEnvironment, task_queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing namespace fails on entry with the server's reason, before any 'polling' log."""
    client = await Client.connect(
        dev_server_env.client.service_client.config.target_host,
        namespace="no-such-namespace",
        plugins=[ShadowPlugin()],
    )
    caplog.set_level(logging.INFO, logger="shadow_sdk")

    with pytest.raises(Exception, match="no-such-namespace"):
        async with ShadowWorker(
            client, ShadowSettings(temporal_task_queue=task_queue), activities=[slow_step]
        ):
            pytest.fail("the block must not run")

    assert "worker polling" not in caplog.text


@contextlib.asynccontextmanager
async def worker_process(
    client: Client, task_queue: str, home: Path, graceful_shutdown_timeout: float
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run tests/worker_process.py as a service would run its worker, and always stop it."""
    env = {
        **os.environ,
        "HOME": str(home),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "WORKER_GRACEFUL_SHUTDOWN_TIMEOUT": str(graceful_shutdown_timeout),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER_PROCESS),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop(process: asyncio.subprocess.Process, sig: signal.Signals) -> str:
    """Send ``sig`` and return everything the process printed until it exited."""
    process.send_signal(sig)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return output.decode()


def history_events(history: WorkflowHistory) -> list[EventType.ValueType]:
    return [event.event_type for event in history.events]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_drains_in_flight_activities_then_exits_0(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path, sig: signal.Signals
) -> None:
    """A signalled worker lets its running activity finish, then exits 0; nothing is lost."""
    client = dev_server_env.client
    async with worker_process(client, task_queue, tmp_path, graceful_shutdown_timeout=30) as worker:
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 2.0, id=f"drain-{uuid.uuid4()}", task_queue=task_queue
        )
        await wait_until_activity_runs(handle)

        output = await stop(worker, sig)

    assert worker.returncode == 0, output
    assert f"received {sig.name}, shutting down gracefully" in output
    events = history_events(await handle.fetch_history())
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in events
    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[SlowStepWorkflow],
        activities=[slow_step],
    ):
        assert await handle.result() == "finished during shutdown"


async def test_activities_outlasting_the_graceful_timeout_are_retried(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Past the timeout the activity is cancelled, the worker still exits 0, and the attempt
    is retried by the next worker: the timeout bounds the drain, it loses no work."""
    client = dev_server_env.client
    async with worker_process(
        client, task_queue, tmp_path, graceful_shutdown_timeout=0.5
    ) as worker:
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 4.0, id=f"cut-{uuid.uuid4()}", task_queue=task_queue
        )
        await wait_until_activity_runs(handle)

        output = await stop(worker, signal.SIGTERM)

    assert worker.returncode == 0, output
    assert "in-flight activities have up to 0.5 s to finish" in output
    pending = (await handle.describe()).raw_description.pending_activities
    assert [activity.attempt for activity in pending] == [2]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED not in history_events(
        await handle.fetch_history()
    )
    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[SlowStepWorkflow],
        activities=[slow_step],
    ):
        assert await handle.result() == "finished"


async def test_a_second_signal_stops_at_once(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """While draining, another SIGTERM ends the process as SIGTERM does without handlers."""
    client = dev_server_env.client
    async with worker_process(client, task_queue, tmp_path, graceful_shutdown_timeout=60) as worker:
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 60.0, id=f"impatient-{uuid.uuid4()}", task_queue=task_queue
        )
        await wait_until_activity_runs(handle)
        assert worker.stdout is not None
        worker.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            while b"worker stopping" not in await worker.stdout.readline():
                pass

        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), timeout=10)

    assert worker.returncode == -signal.SIGTERM
