"""`start task-processing` as a process, against a worker process on a dev server."""

from __future__ import annotations

import json
import uuid

from shadow_sdk.testing import Cli, StartWorker, WorkerProcess


async def test_start_runs_the_workflow_on_the_worker(worker: WorkerProcess, cli: Cli) -> None:
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


async def test_a_task_id_runs_once(worker: WorkerProcess, cli: Cli) -> None:
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


async def test_a_failed_workflow_exits_1_with_its_cause(worker: WorkerProcess, cli: Cli) -> None:
    """A task the workflow rejects makes the command fail and say why."""
    code, stdout, _ = await cli(
        "start", "task-processing", "   ", "--notify=ada@example.com", "--json"
    )

    assert code == 1
    report = json.loads(stdout)
    assert report["status"] == "failed"
    assert report["error"].startswith("InvalidTask: task ")
    assert report["error"].endswith("is invalid: text is empty")


async def test_metrics_count_the_workflow_the_worker_ran(
    start_worker: StartWorker, cli: Cli
) -> None:
    """/metrics counts the task processing workflow the worker completed."""
    worker = await start_worker()

    code, _, _ = await cli(
        "start", "task-processing", "count me", "--notify=ada@example.com", "--json", env=worker.env
    )

    assert code == 0
    closed = worker.scrape().value(
        "shadow_workflows_closed_total", workflow_type="TaskProcessingWorkflow", outcome="completed"
    )
    assert closed == 1
