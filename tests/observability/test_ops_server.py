"""The ops server's probes follow the worker: starting, polling, draining."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import prometheus_client
import pytest
from helpers.handles import wait_until_activity_runs
from helpers.workflows import SlowStepWorkflow, slow_step
from temporalio.client import Client

from shadow_sdk import SettingsError, ShadowSettings, ShadowWorker
from shadow_sdk.observability import OpsServer
from shadow_sdk.testing import OpsClient


def ops_server(port: int = 0) -> OpsServer:
    return OpsServer(registry=prometheus_client.CollectorRegistry(), host="127.0.0.1", port=port)


def client_of(server: OpsServer) -> OpsClient:
    return OpsClient(f"http://127.0.0.1:{server.port}")


async def test_before_a_worker_exists_it_is_live_but_not_ready() -> None:
    """While the process connects, Kubernetes must not send traffic or restart it."""
    async with ops_server() as server:
        live = await client_of(server).get("/live")
        ready = await client_of(server).get("/ready")
        status, body = await client_of(server).get("/health")

    assert live == (200, "live\n")
    assert ready == (503, "not ready: starting\n")
    health = json.loads(body)
    assert (status, health["status"], health["ready"]) == (200, "starting", False)
    assert set(health["versions"]) == {"shadow_sdk", "temporalio", "python"}


async def test_a_taken_port_stops_start_up_and_names_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(SettingsError) as excinfo:
            await ops_server(port).start()

    assert excinfo.value.problems[0].startswith(f"METRICS_PORT={port}: cannot listen on")


async def test_ready_only_while_polling_and_not_once_draining(
    temporal_client: Client, task_queue: str
) -> None:
    settings = ShadowSettings(temporal_task_queue=task_queue, worker_graceful_shutdown_timeout=30)
    async with ops_server() as server:
        worker = ShadowWorker(
            temporal_client,
            settings,
            workflows=[SlowStepWorkflow],
            activities=[slow_step],
            ops_server=server,
        )
        running = asyncio.create_task(worker.run())
        async with asyncio.timeout(30):
            while (await client_of(server).get("/ready"))[0] != 200:
                await asyncio.sleep(0.05)
        polling = json.loads((await client_of(server).get("/health"))[1])
        handle = await temporal_client.start_workflow(
            SlowStepWorkflow.run, 1.5, id=f"drain-{uuid.uuid4()}", task_queue=task_queue
        )
        await wait_until_activity_runs(handle)

        worker.request_shutdown()
        draining_ready = await client_of(server).get("/ready")
        draining = json.loads((await client_of(server).get("/health"))[1])
        draining_live = await client_of(server).get("/live")
        await asyncio.wait_for(running, timeout=30)

    assert polling["status"] == "polling"
    assert polling["ready"] is True
    assert polling["task_queue"] == task_queue
    assert polling["namespace"] == "default"
    assert polling["temporal"]["reachable"] is True
    assert draining_ready == (503, "not ready: draining\n")
    assert (draining["status"], draining["ready"]) == ("draining", False)
    assert draining_live[0] == 200
    assert worker.state == "stopped"
