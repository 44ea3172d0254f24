"""run_with_reload(): a worker restarted on a code change drains first, then runs the new code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import uuid
from pathlib import Path

import pytest
from helpers.handles import wait_until_activity_runs
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from shadow_sdk import SettingsError, ShadowSettings, run_with_reload
from shadow_sdk.testing import WorkerProcess, free_port

SERVICE = Path(__file__).parent / "helpers" / "reloading_service"


async def wait_for_count(worker: WorkerProcess, text: str, count: int) -> None:
    """Wait up to 60 s until the worker printed ``text`` ``count`` times."""
    async with asyncio.timeout(60):
        while worker.output.count(text) < count:
            assert worker.returncode is None, worker.output
            await asyncio.sleep(0.1)


async def test_a_change_drains_the_running_worker_then_runs_the_new_code(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """An activity in flight at the edit completes on the old code; the next runs the new."""
    shutil.copytree(SERVICE, tmp_path / "reloading_service")
    activities = tmp_path / "reloading_service" / "activities.py"
    client = dev_server_env.client
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PYTHONPATH": str(tmp_path),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "WORKER_GRACEFUL_SHUTDOWN_TIMEOUT": "30",
    }
    supervisor = WorkerProcess(
        [sys.executable, "-m", "reloading_service", "--reload"], env, name="reloading worker"
    )
    children: list[int] = []
    try:
        await asyncio.to_thread(supervisor.start)
        children += map(int, re.findall(r"worker started \(pid (\d+)\)", supervisor.output))
        assert (
            await client.execute_workflow(
                "GreetWorkflow", id=f"greet-{uuid.uuid4()}", task_queue=task_queue, result_type=str
            )
            == "v1"
        )
        lingering = await client.start_workflow(
            "LingerWorkflow",
            3.0,
            id=f"linger-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=str,
        )
        await wait_until_activity_runs(lingering)

        activities.write_text(activities.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
        await wait_for_count(supervisor, "worker polling", 2)
        children += map(int, re.findall(r"worker started \(pid (\d+)\)", supervisor.output))

        greeted = await client.execute_workflow(
            "GreetWorkflow", id=f"greet-{uuid.uuid4()}", task_queue=task_queue, result_type=str
        )
        lingered = await lingering.result()
        events = [event.event_type async for event in lingering.fetch_history_events()]
        supervisor.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(supervisor.wait)
    finally:
        for pid in set(children):
            # A supervisor stopped by a failing test leaves its children: they run in
            # process groups of their own.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if supervisor.returncode is None:
            supervisor.kill()

    assert greeted == "v2"
    assert lingered == "v1, drained"
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in events
    assert "activities.py changed, stopping the worker" in supervisor.output
    assert supervisor.output.count("worker stopping") == 2
    assert code == 0, supervisor.output


async def test_a_worker_for_a_shared_cluster_reloads_with_a_warning(tmp_path: Path) -> None:
    """TLS (or an API key) suggests a cluster others use: it reloads, but says so."""
    shutil.copytree(SERVICE, tmp_path / "reloading_service")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PYTHONPATH": str(tmp_path),
        # Nothing listens there: the worker waits for Temporal until it is stopped.
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_TASK_QUEUE": "reload-warning",
        "TEMPORAL_TLS": "true",
    }
    supervisor = WorkerProcess(
        [sys.executable, "-m", "reloading_service", "--reload"], env, name="reloading worker"
    )
    children: list[int] = []
    try:
        await asyncio.to_thread(supervisor.start, until="watching")
        children += map(int, re.findall(r"worker started \(pid (\d+)\)", supervisor.output))
        supervisor.send_signal(signal.SIGTERM)
        await asyncio.to_thread(supervisor.wait)
    finally:
        for pid in set(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if supervisor.returncode is None:
            supervisor.kill()

    assert "connects with TLS or an API key" in supervisor.output
    assert "received SIGTERM, stopping" in supervisor.output


async def test_a_versioned_worker_refuses_to_reload(tmp_path: Path) -> None:
    """A build id names one code: reloading under it is refused, naming the variable."""
    settings = ShadowSettings(temporal_deployment_name="orders", temporal_worker_build_id="b1")

    with pytest.raises(SettingsError, match="TEMPORAL_DEPLOYMENT_NAME: a versioned worker"):
        await run_with_reload(["true"], settings=settings, watch=[tmp_path])


async def test_nothing_to_watch_is_refused(tmp_path: Path) -> None:
    """Paths that do not exist cannot be watched: the error names them."""
    with pytest.raises(ValueError, match="watch: none of .*missing exists"):
        await run_with_reload(["true"], settings=ShadowSettings(), watch=[tmp_path / "missing"])
