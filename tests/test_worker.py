from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from helpers.workflows import SlowStepWorkflow, slow_step
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorAutoscaling, PollerBehaviorSimpleMaximum, WorkerTuner

from shadow_sdk import SettingsError, ShadowPlugin, ShadowSettings, ShadowWorker

WORKER_PROCESS = Path(__file__).parent / "helpers" / "worker_process.py"


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


async def test_tuning_settings_reach_the_worker(temporal_client: Client, task_queue: str) -> None:
    """Poller limits and rate limits are the worker's, not just remembered settings."""
    settings = ShadowSettings(
        temporal_task_queue=task_queue,
        worker_workflow_task_pollers=3,
        worker_activity_task_pollers=4,
        worker_max_activities_per_second=50,
        worker_max_task_queue_activities_per_second=200,
    )

    config = ShadowWorker(temporal_client, settings, activities=[slow_step]).worker.config(
        active_config=True
    )

    assert config.get("workflow_task_poller_behavior") == PollerBehaviorSimpleMaximum(3)
    assert config.get("activity_task_poller_behavior") == PollerBehaviorSimpleMaximum(4)
    assert config.get("max_activities_per_second") == 50
    assert config.get("max_task_queue_activities_per_second") == 200


async def test_poller_autoscaling_keeps_the_maximum(
    temporal_client: Client, task_queue: str
) -> None:
    settings = ShadowSettings(
        temporal_task_queue=task_queue,
        worker_poller_autoscaling=True,
        worker_activity_task_pollers=8,
    )

    config = ShadowWorker(temporal_client, settings, activities=[slow_step]).worker.config(
        active_config=True
    )

    activity_pollers = config.get("activity_task_poller_behavior")
    workflow_pollers = config.get("workflow_task_poller_behavior")
    assert isinstance(activity_pollers, PollerBehaviorAutoscaling)
    assert activity_pollers.maximum == 8
    assert isinstance(workflow_pollers, PollerBehaviorAutoscaling)
    assert workflow_pollers.maximum == 100


async def test_poller_autoscaling_below_five_polls_starts(
    temporal_client: Client, task_queue: str
) -> None:
    """temporalio begins with 5 polls; a smaller maximum used to stop the worker at start."""
    settings = ShadowSettings(
        temporal_task_queue=task_queue,
        worker_poller_autoscaling=True,
        worker_workflow_task_pollers=2,
        worker_activity_task_pollers=3,
    )

    async with ShadowWorker(
        temporal_client, settings, workflows=[SlowStepWorkflow], activities=[slow_step]
    ):
        result = await temporal_client.execute_workflow(
            SlowStepWorkflow.run, 0.1, id=f"few-polls-{uuid.uuid4()}", task_queue=task_queue
        )

    assert result == "finished"


async def test_the_resource_based_tuner_runs_workflows(
    temporal_client: Client, task_queue: str
) -> None:
    """WORKER_TUNER=resource-based hands the slots to Temporal's tuner, which really runs work."""
    settings = ShadowSettings(
        temporal_task_queue=task_queue,
        worker_tuner="resource-based",
        worker_target_memory_usage=0.9,
        worker_target_cpu_usage=0.95,
    )

    async with ShadowWorker(
        temporal_client, settings, workflows=[SlowStepWorkflow], activities=[slow_step]
    ) as worker:
        result = await temporal_client.execute_workflow(
            SlowStepWorkflow.run, 0.1, id=f"tuned-{uuid.uuid4()}", task_queue=task_queue
        )

    config = worker.worker.config(active_config=True)
    assert isinstance(config.get("tuner"), WorkerTuner)
    assert config.get("max_concurrent_activities") is None
    assert result == "finished"
