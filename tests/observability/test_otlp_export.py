"""Spans reach a real OTLP/HTTP collector; a collector that is down costs spans, never work.

The worker and the client run as processes configured by their environment only, as
services run them, and export to a receiver that decodes the protobuf export requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from helpers.otlp_receiver import OTLPReceiver, ReceivedSpan, otlp_receiver
from helpers.workers import worker_process
from helpers.workflows import SlowStepWorkflow
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from shadow_sdk.observability._tracing import SPAN_FLUSH_TIMEOUT
from shadow_sdk.testing import CommandResult, WorkerProcess, run_command

pytestmark = pytest.mark.slow

TRACED_CLIENT = Path(__file__).parents[1] / "helpers" / "traced_client.py"
# How far past its shutdown cap a stopping worker may still be alive: the span flush,
# plus room for a loaded machine. Without the flush bound it is 7 to 30 s and more.
EXIT_SLACK = SPAN_FLUSH_TIMEOUT + 4
INSTANCE_ID = "service.instance.id"


async def run_traced_client(workflow_id: str, **env: str) -> CommandResult:
    """Run tests/helpers/traced_client.py, which starts the workflow and waits for its result."""
    async with asyncio.timeout(60):
        return await run_command(
            [sys.executable, str(TRACED_CLIENT), workflow_id], env={**os.environ, **env}
        )


def without_instance_id(span: ReceivedSpan) -> dict[str, object]:
    return {key: value for key, value in span.resource.items() if key != INSTANCE_ID}


def only(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, [span.name for span in spans]
    return matching[0]


async def test_one_trace_crosses_client_and_worker_processes_to_the_collector(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Each process exports its own spans with its own resource; the links make one trace."""
    address = dev_server_env.client.service_client.config.target_host
    workflow_id = f"exported-{uuid.uuid4()}"
    with otlp_receiver() as receiver:
        async with worker_process(
            tmp_path,
            address,
            task_queue,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            # A platform's usual way to name a service and where it runs.
            OTEL_RESOURCE_ATTRIBUTES="service.name=orders-worker,deployment.environment=proof",
        ) as worker:
            async with asyncio.timeout(30):
                await worker.wait_for_ready()
            traced_client = await run_traced_client(
                workflow_id,
                TEMPORAL_ADDRESS=address,
                TEMPORAL_TASK_QUEUE=task_queue,
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_SERVICE_NAME="orders-cli",
            )
            worker.send_signal(signal.SIGTERM)
            worker_code = await asyncio.to_thread(worker.wait)
        spans = receiver.spans()

    assert traced_client == (0, "finished\n", "")
    assert worker_code == 0, worker.output
    start = only(spans, "StartWorkflow:SlowStepWorkflow")
    run = only(spans, "RunWorkflow:SlowStepWorkflow")
    schedule = only(spans, "StartActivity:slow_step")
    attempt = only(spans, "RunActivity:slow_step")
    worker_spans = (run, schedule, attempt)
    assert len({span.span.trace_id for span in spans}) == 1
    assert len(start.span.trace_id) == 16
    assert start.span.trace_id != bytes(16)
    assert start.span.parent_span_id == b""
    assert run.span.parent_span_id == start.span.span_id
    assert schedule.span.parent_span_id == run.span.span_id
    assert attempt.span.parent_span_id == schedule.span.span_id
    assert [span.span.kind for span in (start, run, schedule, attempt)] == [
        Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_SERVER
    ]  # fmt: skip
    for span in (start, run, schedule, attempt):
        assert span.attributes["temporalWorkflowID"] == workflow_id
        assert span.span.end_time_unix_nano >= span.span.start_time_unix_nano > 0
    assert attempt.attributes["temporalRunID"] == run.attributes["temporalRunID"]
    sdk = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": importlib.metadata.version("opentelemetry-sdk"),
    }
    # Each process is an instance with an id of its own.
    instances = [uuid.UUID(span.resource[INSTANCE_ID]) for span in (start, *worker_spans)]
    assert len(set(instances)) == 2
    assert len(set(instances[1:])) == 1
    # The client is named by OTEL_SERVICE_NAME, the worker by OTEL_RESOURCE_ATTRIBUTES.
    assert without_instance_id(start) == {**sdk, "service.name": "orders-cli"}
    worker_resource = {**sdk, "service.name": "orders-worker", "deployment.environment": "proof"}
    assert [without_instance_id(span) for span in worker_spans] == [worker_resource] * 3


@contextlib.asynccontextmanager
async def traced_worker(
    env: WorkflowEnvironment, task_queue: str, home: Path, endpoint: str
) -> AsyncIterator[WorkerProcess]:
    """A worker process exporting to ``endpoint`` every 0.1 s, with a 1 s drain and a 2 s cap."""
    address = env.client.service_client.config.target_host
    async with worker_process(
        home,
        address,
        task_queue,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        WORKER_GRACEFUL_SHUTDOWN_TIMEOUT="1",
        WORKER_SHUTDOWN_TIMEOUT="2",
    ) as worker:
        async with asyncio.timeout(30):
            await worker.wait_for_ready()
        yield worker


async def run_workflows(client: Client, task_queue: str, count: int) -> list[str]:
    return [
        await client.execute_workflow(
            SlowStepWorkflow.run, 0.1, id=f"untraced-{uuid.uuid4()}", task_queue=task_queue
        )
        for _ in range(count)
    ]


async def stop_within_cap(worker: WorkerProcess) -> int:
    """SIGTERM the worker; it must be gone within its 2 s cap plus the span flush."""
    worker.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(worker.wait, 2 + EXIT_SLACK)


async def wait_for_span(receiver: OTLPReceiver, name: str) -> None:
    async with asyncio.timeout(30):
        while not any(span.name == name for span in receiver.spans()):
            await asyncio.sleep(0.05)


def assert_export_failure_logged_not_raised(output: str) -> None:
    assert "opentelemetry.exporter.otlp.proto.http" in output, output
    assert "Traceback" not in output, output
    assert "worker stopped" in output, output


async def test_a_collector_that_goes_away_costs_spans_not_workflows(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Spans flow while it runs; once it is gone (connections refused) workflows still
    complete, the failures are logged, and the worker stops within its cap plus the flush."""
    with otlp_receiver() as receiver:
        async with traced_worker(dev_server_env, task_queue, tmp_path, receiver.endpoint) as worker:
            before = await run_workflows(dev_server_env.client, task_queue, 1)
            await wait_for_span(receiver, "RunActivity:slow_step")
            receiver.stop()
            received = receiver.spans()
            while_down = await run_workflows(dev_server_env.client, task_queue, 3)
            await asyncio.to_thread(worker.wait_for_output, "Connection refused")
            code = await stop_within_cap(worker)

    assert before + while_down == ["finished"] * 4
    # Named by nothing else, a worker is named after its task queue.
    assert {span.resource["service.name"] for span in received} == {task_queue}
    assert code == 0, worker.output
    assert_export_failure_logged_not_raised(worker.output)
    assert f"spans not exported within {SPAN_FLUSH_TIMEOUT:g} s of shutdown" in worker.output


@contextlib.contextmanager
def silent_collector() -> Iterator[str]:
    """A collector address that accepts connections and never answers; yield its endpoint."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


async def test_a_collector_that_never_answers_holds_nothing_up(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """The worst case: every export waits for its timeout. Workflows do not, and the worker
    still stops within its cap plus the flush, saying why spans were dropped."""
    with silent_collector() as endpoint:
        async with traced_worker(dev_server_env, task_queue, tmp_path, endpoint) as worker:
            results = await run_workflows(dev_server_env.client, task_queue, 3)
            code = await stop_within_cap(worker)

    assert results == ["finished"] * 3
    assert code == 0, worker.output
    assert "Traceback" not in worker.output, worker.output
    assert f"spans not exported within {SPAN_FLUSH_TIMEOUT:g} s of shutdown" in worker.output
