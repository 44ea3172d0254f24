"""End-to-end tests of the command line on a dev server: the worker and a starter, as processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable

from prometheus_client.parser import text_string_to_metric_families

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


async def http_get(url: str) -> tuple[int, str]:
    """GET ``url``: its status and body, errors included."""

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return await asyncio.to_thread(get)


async def test_start_runs_the_workflow_on_the_worker(
    worker: asyncio.subprocess.Process, cli: Cli
) -> None:
    """`start task-processing --json` prints the workflow id and the worker's result."""
    task_id = uuid.uuid4().hex[:12]

    code, stdout, _ = await cli(
        "start",
        "task-processing",
        "hello temporal world",
        "--notify=ada@example.com",
        f"--task-id={task_id}",
        "--json",
    )

    assert code == 0
    report = json.loads(stdout)
    assert report["workflow_id"] == f"task-processing-{task_id}"
    assert report["new"] is True
    assert report["status"] == "completed"
    assert report["result"]["word_count"] == 3
    assert report["result"]["notification_id"] == f"task-processing-{task_id}/notify"


async def test_a_task_id_runs_once(worker: asyncio.subprocess.Process, cli: Cli) -> None:
    """Starting the same task again reports the first run instead of processing it twice."""
    task = ["start", "task-processing", "once only", "--notify=ada@example.com", "--json"]
    task_id = f"--task-id={uuid.uuid4().hex[:12]}"

    first = json.loads((await cli(*task, task_id))[1])
    code, stdout, _ = await cli(*task, task_id)

    again = json.loads(stdout)
    assert code == 0
    assert again["new"] is False
    assert again["run_id"] == first["run_id"]
    assert again["result"] == first["result"]


async def test_a_failed_workflow_exits_1_with_its_cause(
    worker: asyncio.subprocess.Process, cli: Cli
) -> None:
    """A task the workflow rejects makes the command fail and say why."""
    code, stdout, _ = await cli(
        "start", "task-processing", "   ", "--notify=ada@example.com", "--json"
    )

    assert code == 1
    report = json.loads(stdout)
    assert report["status"] == "failed"
    assert report["error"].startswith("InvalidTask: task ")
    assert report["error"].endswith("is invalid: text is empty")


async def test_an_order_is_fulfilled_or_undone(
    worker: asyncio.subprocess.Process, cli: Cli
) -> None:
    """`start order-fulfilment` ships a paid order; a declined card fails it with the refusal."""
    order = ["start", "order-fulfilment", "book", "--address=1 Main St", "--json"]

    shipped = await cli(*order)
    declined = await cli(*order, "--payment-token=tok_declined")

    assert shipped[0] == 0, shipped
    assert json.loads(shipped[1])["result"]["tracking_number"].startswith("track-")
    assert declined[0] == 1, declined
    assert json.loads(declined[1])["error"].startswith("PaymentDeclined: card tok_declined")


async def test_the_worker_serves_probes_and_metrics(
    worker: asyncio.subprocess.Process, cli: Cli, service_env: dict[str, str]
) -> None:
    """/ready answers 200 while the worker polls; /metrics counts the workflow it ran."""
    ops = f"http://127.0.0.1:{service_env['METRICS_PORT']}"
    assert (await http_get(f"{ops}/ready"))[0] == 200

    code, _, _ = await cli(
        "start", "task-processing", "count me", "--notify=ada@example.com", "--json"
    )
    status, text = await http_get(f"{ops}/metrics")

    assert (code, status) == (0, 200)
    closed = {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "shadow_workflows_closed_total"
        and sample.labels["workflow_type"] == "TaskProcessingWorkflow"
    }
    assert closed == {"completed": 1}
    health = json.loads((await http_get(f"{ops}/health"))[1])
    assert health["status"] == "polling"
    assert health["task_queue"] == service_env["TEMPORAL_TASK_QUEUE"]


async def test_sigterm_stops_the_worker_cleanly(worker: asyncio.subprocess.Process) -> None:
    """The worker drains and exits 0 on SIGTERM, as Kubernetes stops it."""
    worker.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)

    assert worker.returncode == 0, output.decode()
    assert b"worker stopped" in output


async def test_invalid_settings_stop_the_command_with_their_names(
    cli: Cli, settings_env: dict[str, str]
) -> None:
    """A bad variable is named at start-up, before anything connects."""
    env = {**os.environ, **settings_env, "TEMPORAL_ADDRESS": "no-port"}

    code, _, stderr = await cli("worker", env=env)

    assert code == 2
    assert "TEMPORAL_ADDRESS='no-port': expected host:port" in stderr
