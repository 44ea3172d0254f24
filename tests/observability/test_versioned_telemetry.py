"""A versioned worker process tells its version in its metrics and logs; an unversioned one not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import temporalio.service
from helpers.workers import worker_process
from helpers.workflows import SlowStepWorkflow
from temporalio.client import Client

from shadow_sdk import WorkerDeployment
from shadow_sdk.testing import DevServer, Scrape, WorkerProcess

pytestmark = pytest.mark.slow

VERSION_LABELS = ("deployment_name", "build_id")


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(arguments=["--headless"]) as server:
        yield server


@pytest.fixture
async def client(server: DevServer) -> Client:
    return await Client.connect(server.address)


async def make_current(rollout: WorkerDeployment, build_id: str) -> None:
    """Make ``build_id`` current once the server knows it: a version exists once it polls."""
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(temporalio.service.RPCError):
                return await rollout.set_current(build_id)
            await asyncio.sleep(0.2)


async def stop(worker: WorkerProcess) -> list[dict[str, Any]]:
    """SIGTERM, as Kubernetes stops a pod; the JSON records it logged, every line one."""
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait) == 0, worker.output
    return [json.loads(line) for line in worker.output.splitlines() if line.strip()]


async def scrape_once_counted(worker: WorkerProcess, name: str) -> Scrape:
    """/metrics once it counts ``name``: the core records a completion after it is sent."""
    async with asyncio.timeout(30):
        while not (metrics := await worker.ops.scrape()).value(name):
            await asyncio.sleep(0.2)
    return metrics


def telemetry(metrics: Scrape) -> list[dict[str, str]]:
    """The labels of every sample of the SDK core's and shadow_sdk's metrics."""
    return [
        sample.labels
        for sample in metrics.samples
        if sample.name.startswith(("temporal_", "shadow_")) and sample.name != "shadow_worker_info"
    ]


async def test_a_versioned_worker_labels_its_metrics_and_logs_with_its_version(
    client: Client, server: DevServer, task_queue: str, tmp_path: Path
) -> None:
    """TEMPORAL_DEPLOYMENT_NAME and TEMPORAL_WORKER_BUILD_ID, exactly as set, on every series
    of the core and of shadow_sdk, in shadow_worker_info, and on every JSON log record."""
    deployment_name, build_id = f"orders-{uuid.uuid4().hex[:8]}", "2026-12-06.3"
    version = {"deployment_name": deployment_name, "build_id": build_id}
    async with worker_process(
        tmp_path,
        server.address,
        task_queue,
        LOG_FORMAT="json",
        TEMPORAL_DEPLOYMENT_NAME=deployment_name,
        TEMPORAL_WORKER_BUILD_ID=build_id,
    ) as worker:
        async with asyncio.timeout(30):
            await worker.wait_for_ready()
        await make_current(WorkerDeployment(client, deployment_name), build_id)
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 0.1, id=f"versioned-{uuid.uuid4()}", task_queue=task_queue
        )
        assert await handle.result() == "finished"
        metrics = await scrape_once_counted(worker, "temporal_workflow_completed_total")
        records = await stop(worker)

    series = telemetry(metrics)
    assert series
    assert all(labels.items() >= version.items() for labels in series)
    assert metrics.value("shadow_workflows_started_total", **version) == 1
    assert metrics.value("temporal_workflow_completed_total", **version) == 1
    assert metrics.value("temporal_worker_task_slots_available", **version) > 0
    assert metrics.label_sets("shadow_worker_info") == [version]
    assert metrics.value("shadow_worker_info") == 1
    assert records
    assert all(record.items() >= version.items() for record in records)
    workflow_line = next(r for r in records if r["message"] == "starting a slow step")
    assert workflow_line.items() >= {
        **version, "workflow_id": handle.id, "task_queue": task_queue
    }.items()  # fmt: skip


async def test_an_unversioned_worker_has_no_version_in_its_metrics_or_logs(
    client: Client, server: DevServer, task_queue: str, tmp_path: Path
) -> None:
    async with worker_process(tmp_path, server.address, task_queue, LOG_FORMAT="json") as worker:
        async with asyncio.timeout(30):
            await worker.wait_for_ready()
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 0.1, id=f"unversioned-{uuid.uuid4()}", task_queue=task_queue
        )
        assert await handle.result() == "finished"
        metrics = await scrape_once_counted(worker, "temporal_workflow_completed_total")
        records = await stop(worker)

    series = telemetry(metrics)
    assert metrics.value("shadow_workflows_started_total") == 1
    assert [labels for labels in series if set(VERSION_LABELS) & set(labels)] == []
    assert metrics.label_sets("shadow_worker_info") == []
    assert any(r["message"] == "starting a slow step" for r in records)
    assert [record for record in records if set(VERSION_LABELS) & set(record)] == []
