"""A worker process as Kubernetes runs it: probes, signals, the drain, logs and exit codes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest
from helpers.handles import wait_until_activity_runs
from helpers.workers import worker_process
from helpers.workflows import SlowStepWorkflow, StubbornWorkflow, slow_step
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from shadow_sdk import ShadowPlugin, ShadowSettings, ShadowWorker
from shadow_sdk.auth import AuthInterceptor, TokenIssuer
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.testing import BackgroundProcess, connect_caller, free_port, start_dev_server

pytestmark = pytest.mark.slow


def history_events(history: WorkflowHistory) -> list[EventType.ValueType]:
    return [event.event_type for event in history.events]


async def finish_elsewhere(
    client: Client, task_queue: str, handles: list[WorkflowHandle[object, str]]
) -> list[str]:
    """Run the workflows' remaining tasks on a new worker, as the next pod would."""
    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[SlowStepWorkflow],
        activities=[slow_step],
    ):
        return list(await asyncio.gather(*(handle.result() for handle in handles)))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_turns_ready_off_drains_running_activities_then_exits_0(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path, sig: signal.Signals
) -> None:
    """Every running activity completes during the drain; every workflow then finishes."""
    client = dev_server_env.client
    address = client.service_client.config.target_host
    async with worker_process(
        tmp_path, address, task_queue, WORKER_GRACEFUL_SHUTDOWN_TIMEOUT="30"
    ) as worker:
        async with asyncio.timeout(30):
            await worker.wait_for_ready()
        handles = [
            await client.start_workflow(
                SlowStepWorkflow.run, 2.0, id=f"drain-{n}-{uuid.uuid4()}", task_queue=task_queue
            )
            for n in range(3)
        ]
        for handle in handles:
            await wait_until_activity_runs(handle)

        worker.send_signal(sig)
        await asyncio.to_thread(worker.wait_for_output, "worker stopping")
        ready_while_draining = await worker.ops.get("/ready")
        live_while_draining = await worker.ops.get("/live")
        code = await asyncio.to_thread(worker.wait)

    assert code == 0, worker.output
    assert f"received {sig.name}, shutting down gracefully" in worker.output
    assert ready_while_draining == (503, "not ready: draining\n")
    assert live_while_draining[0] == 200
    for handle in handles:
        events = history_events(await handle.fetch_history())
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in events
    results = await finish_elsewhere(client, task_queue, handles)
    assert results == ["finished during shutdown"] * 3


async def test_activities_outlasting_the_graceful_timeout_are_retried(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Past the timeout the activity is cancelled, the worker still exits 0, and the attempt
    is retried by the next worker: the timeout bounds the drain, it loses no work."""
    client = dev_server_env.client
    address = client.service_client.config.target_host
    async with worker_process(
        tmp_path, address, task_queue, WORKER_GRACEFUL_SHUTDOWN_TIMEOUT="0.5"
    ) as worker:
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 4.0, id=f"cut-{uuid.uuid4()}", task_queue=task_queue
        )
        await wait_until_activity_runs(handle)

        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait)

    assert code == 0, worker.output
    assert "in-flight activities have up to 0.5 s to finish" in worker.output
    pending = (await handle.describe()).raw_description.pending_activities
    assert [activity.attempt for activity in pending] == [2]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED not in history_events(
        await handle.fetch_history()
    )
    assert await finish_elsewhere(client, task_queue, [handle]) == ["finished"]


async def test_past_the_hard_cap_the_process_exits_1(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """An activity that ignores cancellation cannot hold the pod: the cap ends the wait."""
    client = dev_server_env.client
    address = client.service_client.config.target_host
    async with worker_process(
        tmp_path,
        address,
        task_queue,
        WORKER_GRACEFUL_SHUTDOWN_TIMEOUT="0.5",
        WORKER_SHUTDOWN_TIMEOUT="2",
    ) as worker:
        handle = await client.start_workflow(
            StubbornWorkflow.run, 60.0, id=f"stubborn-{uuid.uuid4()}", task_queue=task_queue
        )
        await wait_until_activity_runs(handle)

        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 20)
    await handle.terminate()

    assert code == 1, worker.output
    assert "worker did not stop within 2 s (WORKER_SHUTDOWN_TIMEOUT)" in worker.output


async def test_a_second_signal_stops_at_once(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """While draining, another SIGTERM ends the process as SIGTERM does without handlers."""
    client = dev_server_env.client
    address = client.service_client.config.target_host
    async with worker_process(
        tmp_path, address, task_queue, WORKER_GRACEFUL_SHUTDOWN_TIMEOUT="60"
    ) as worker:
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 60.0, id=f"impatient-{uuid.uuid4()}", task_queue=task_queue
        )
        await wait_until_activity_runs(handle)
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait_for_output, "worker stopping")

        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 10)

    assert code == -signal.SIGTERM


async def test_probes_answer_while_the_process_is_still_connecting(
    tmp_path: Path, task_queue: str
) -> None:
    """A Temporal address that accepts connections but never answers: live, not ready."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        async with worker_process(tmp_path, address, task_queue) as worker:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(OSError):
                        live = await worker.ops.get("/live")
                        break
                    await asyncio.sleep(0.05)
            ready = await worker.ops.get("/ready")
            health = json.loads((await worker.ops.get("/health"))[1])

    assert live == (200, "live\n")
    assert ready == (503, "not ready: starting\n")
    assert (health["status"], health["ready"]) == ("starting", False)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:{closed_port}", "temporal.invalid:7233"],
    ids=["refused", "unresolvable"],
)
async def test_an_unreachable_temporal_keeps_the_process_live_and_waiting(
    tmp_path: Path, task_queue: str, address: str
) -> None:
    """Refused or not resolvable yet: the worker waits, logging the address once, not ready."""
    address = address.format(closed_port=free_port())
    async with worker_process(tmp_path, address, task_queue, WORKER_CONNECT_TIMEOUT="1") as worker:
        await asyncio.to_thread(worker.wait_for_output, "cannot reach Temporal at")
        await asyncio.sleep(3.5)  # Attempts at about 0, 1 and 3 s: a streak of failures.
        live = await worker.ops.get("/live")
        ready = await worker.ops.get("/ready")
        still_running = worker.returncode is None

    assert still_running, worker.output
    assert live == (200, "live\n")
    assert ready == (503, "not ready: starting\n")
    assert worker.output.count(f"cannot reach Temporal at {address} (TEMPORAL_ADDRESS)") == 1


async def test_a_worker_started_before_temporal_polls_once_temporal_answers(
    tmp_path: Path, task_queue: str
) -> None:
    """A port that never answers, for longer than the connect timeout, then a server on it."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        address = f"127.0.0.1:{port}"
        async with worker_process(
            tmp_path, address, task_queue, WORKER_CONNECT_TIMEOUT="1"
        ) as worker:
            await asyncio.to_thread(worker.wait_for_output, "cannot reach Temporal at")
            await asyncio.sleep(1.5)
            ready_while_waiting = await worker.ops.get("/ready")
            silent.close()
            async with await start_dev_server(port=port) as env:
                async with asyncio.timeout(30):
                    await worker.wait_for_ready()
                result = await env.client.execute_workflow(
                    SlowStepWorkflow.run, 0.1, id=f"late-{uuid.uuid4()}", task_queue=task_queue
                )
                worker.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(worker.wait)

    assert ready_while_waiting == (503, "not ready: starting\n")
    assert result == "finished"
    assert code == 0, worker.output
    assert worker.output.count(f"cannot reach Temporal at {address} (TEMPORAL_ADDRESS)") == 1
    assert "no answer within 1 s (WORKER_CONNECT_TIMEOUT)" in worker.output
    assert f"reached Temporal at {address} after" in worker.output


async def test_an_unknown_namespace_stops_the_process_with_code_2(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Waiting cannot create a namespace: that is a setting to fix, named, no traceback."""
    address = dev_server_env.client.service_client.config.target_host
    async with worker_process(
        tmp_path, address, task_queue, TEMPORAL_NAMESPACE="no-such-namespace"
    ) as worker:
        code = await asyncio.to_thread(worker.wait, 30)

    assert code == 2, worker.output
    assert (
        f"TEMPORAL_NAMESPACE='no-such-namespace': the Temporal service at {address} "
        "(TEMPORAL_ADDRESS) has no such namespace"
    ) in worker.output
    assert "Traceback" not in worker.output


async def test_a_setting_to_fix_stops_the_process_before_it_waits_for_temporal(
    tmp_path: Path,
) -> None:
    """No task queue: waiting for an unreachable server would only hide it."""
    address = f"127.0.0.1:{free_port()}"
    async with worker_process(tmp_path, address, "") as worker:
        code = await asyncio.to_thread(worker.wait, 30)

    assert code == 2, worker.output
    assert "TEMPORAL_TASK_QUEUE: a worker needs a task queue to poll" in worker.output
    assert "cannot reach Temporal" not in worker.output


async def test_keys_and_a_policy_that_do_not_build_stop_the_process_before_it_waits(
    tmp_path: Path,
) -> None:
    """Settings hold no keys or policy; the worker builds them first, and lists what fails."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "policy.yaml").write_text("roles:\n  ops: [workflow:strat]\n")
    address = f"127.0.0.1:{free_port()}"
    async with worker_process(
        tmp_path,
        address,
        "orders",
        CODEC_KEYS_DIR=str(tmp_path / "keys"),
        AUTH_POLICY_PATH=str(tmp_path / "policy.yaml"),
    ) as worker:
        code = await asyncio.to_thread(worker.wait, 30)

    assert code == 2, worker.output
    assert f"CODEC_KEYS_DIR={str(tmp_path / 'keys')!r}: holds no key files" in worker.output
    assert worker.output.count(f"AUTH_POLICY_PATH: {tmp_path / 'policy.yaml'}: role 'ops'") == 1
    assert "cannot reach Temporal" not in worker.output
    assert "Traceback" not in worker.output


async def test_a_taken_metrics_port_stops_the_process_and_names_it(
    tmp_path: Path, task_queue: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with worker_process(
            tmp_path, "127.0.0.1:1", task_queue, METRICS_PORT=str(port)
        ) as worker:
            code = await asyncio.to_thread(worker.wait, 30)

    assert code == 2, worker.output
    assert f"METRICS_PORT={port}: cannot listen on 127.0.0.1:{port}" in worker.output
    assert "Traceback" not in worker.output


SECRET_KEY = bytes(range(32))
HS256_SECRET = "process-test-hs256-secret-of-32-bytes!"
API_KEY = "process-test-api-key-never-logged"


async def test_json_logs_carry_the_temporal_context_and_no_secret(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Every line is JSON; workflow and activity lines say which run they belong to."""
    encoded_key = base64.b64encode(SECRET_KEY).decode()
    token = TokenIssuer(hs256_secret=HS256_SECRET).issue("tester", ["admin"])
    worker_token = TokenIssuer(hs256_secret=HS256_SECRET).issue("worker", ["admin"])
    secrets = [encoded_key, HS256_SECRET, API_KEY, token, worker_token]
    address = dev_server_env.client.service_client.config.target_host
    client = await connect_caller(
        dev_server_env.client,
        ShadowPlugin(
            codec=EncryptionCodec(KeyRing({"2026-11": SECRET_KEY})),
            auth=AuthInterceptor(token=token),
        ),
    )
    async with worker_process(
        tmp_path,
        address,
        task_queue,
        LOG_FORMAT="json",
        CODEC_KEYS=json.dumps({"2026-11": encoded_key}),
        AUTH_HS256_SECRET=HS256_SECRET,
        AUTH_TOKEN=worker_token,
        TEMPORAL_API_KEY=API_KEY,
        TEMPORAL_TLS="false",
    ) as worker:
        async with asyncio.timeout(30):
            await worker.wait_for_ready()
        handle = await client.start_workflow(
            SlowStepWorkflow.run, 0.2, id=f"logged-{uuid.uuid4()}", task_queue=task_queue
        )
        assert await handle.result() == "finished"
        health = (await worker.ops.get("/health"))[1]
        metrics = (await worker.ops.get("/metrics"))[1]
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait) == 0, worker.output

    records = [json.loads(line) for line in worker.output.splitlines() if line.strip()]
    workflow_line = next(r for r in records if r["message"] == "starting a slow step")
    activity_line = next(r for r in records if r["message"] == "slow step runs for 0.2 s")
    run = {"workflow_id": handle.id, "run_id": handle.result_run_id}
    assert workflow_line.items() >= {
        **run, "workflow_type": "SlowStepWorkflow", "attempt": 1, "task_queue": task_queue
    }.items()  # fmt: skip
    assert activity_line.items() >= {
        **run, "workflow_type": "SlowStepWorkflow", "activity_type": "slow_step", "attempt": 1
    }.items()  # fmt: skip
    assert {r["level"] for r in records} <= {"debug", "info", "warning", "error", "critical"}
    for secret in secrets:
        assert secret not in worker.output
        assert secret not in health
        assert secret not in metrics


CLIENT_OF_ANOTHER_RUNTIME = """
import asyncio, sys
from temporalio.client import Client
from shadow_sdk import ShadowSettings, run_and_exit, run_worker

async def main():
    client = await Client.connect(sys.argv[1])  # Before run_worker makes its runtime.
    await run_worker(ShadowSettings(temporal_task_queue=sys.argv[2]), client=client)

run_and_exit(main())
"""


def test_a_client_of_another_runtime_is_named_as_unseen_by_ready(
    dev_server_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Its polls go to a runtime nobody drains: /ready could not see them fail."""
    address = dev_server_env.client.service_client.config.target_host
    command = [sys.executable, "-c", CLIENT_OF_ANOTHER_RUNTIME, address, task_queue]
    with BackgroundProcess(command, {**os.environ, "METRICS_PORT": str(free_port())}) as worker:
        worker.start(until="reports to another temporalio Runtime")
        worker.stop()

    assert "leave client out and run_worker connects with its own runtime" in worker.output
