"""End-to-end tests of the service's processes on a dev server: the worker, and `list`."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from shadow_sdk.testing import Cli, CommandResult, StartWorker, WorkerProcess
from temporalio.client import Client


async def test_the_worker_serves_probes_health_and_metrics(worker: WorkerProcess) -> None:
    """/ready answers 200 while the worker polls; /health says so; /metrics is Prometheus'."""
    ready = worker.get("/ready")
    health = json.loads(worker.get("/health")[1])
    metrics = worker.get("/metrics")

    assert ready[0] == 200
    assert health["status"] == "polling"
    assert health["task_queue"] == worker.env["TEMPORAL_TASK_QUEUE"]
    assert metrics[0] == 200
    assert "# TYPE process_cpu_seconds_total counter" in metrics[1]


async def test_sigterm_stops_the_worker_cleanly(start_worker: StartWorker) -> None:
    """The worker drains and exits 0 on SIGTERM, as Kubernetes stops it."""
    worker = await start_worker()

    code = worker.stop()

    assert code == 0, worker.output
    assert "worker stopped" in worker.output


async def test_invalid_settings_stop_the_command_with_their_names(
    cli: Cli, service_env: dict[str, str]
) -> None:
    """A bad variable is named at start-up, before anything connects."""
    code, _, stderr = await cli("worker", env={**service_env, "TEMPORAL_ADDRESS": "no-port"})

    assert code == 2
    assert "TEMPORAL_ADDRESS='no-port': expected host:port" in stderr


async def test_reload_refuses_a_versioned_worker(cli: Cli, service_env: dict[str, str]) -> None:
    """`worker --reload` is for development: a build id must not name changing code."""
    env = {
        **service_env,
        "TEMPORAL_DEPLOYMENT_NAME": "reload-test",
        "TEMPORAL_WORKER_BUILD_ID": "b1",
    }
    code, _, stderr = await cli("worker", "--reload", env=env)

    assert code == 2
    assert "TEMPORAL_DEPLOYMENT_NAME: a versioned worker cannot reload" in stderr


async def test_list_selects_workflows_by_type_status_and_time_without_keys(
    cli: Cli, service_env: dict[str, str], service_client: Client, task_queue: str
) -> None:
    """`list` reads what Temporal indexes, never a payload: it runs without encryption keys."""
    env = {name: value for name, value in service_env.items() if name != "CODEC_KEYS"}
    env["TEMPORAL_TASK_QUEUE"] = task_queue

    async def start(workflow_type: str) -> str:
        # No worker polls the test's task queue: each workflow runs until terminated.
        handle = await service_client.start_workflow(
            workflow_type,
            {"customer": "private"},
            id=f"{workflow_type}-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        return handle.id

    first = await start("Invoice")
    await asyncio.sleep(0.1)
    between = datetime.now(UTC)
    await asyncio.sleep(0.1)
    second, refund = await start("Invoice"), await start("Refund")
    await service_client.get_workflow_handle(second).terminate("listed as terminated")

    by_type, terminated, running, since, window, limited = await asyncio.gather(
        cli("list", "--type", "Invoice", "--json", env=env),
        cli("list", "--status", "terminated", env=env),
        cli("list", "--status", "running", "--json", env=env),
        cli("list", "--since", between.isoformat(), "--json", env=env),
        cli("list", "--since", "1h", "--until", between.isoformat(), "--verbose", env=env),
        cli("list", "--limit", "1", "--json", env=env),
    )

    def ids(result: CommandResult) -> set[str]:
        assert result[0] == 0, result
        return {workflow["workflow_id"] for workflow in json.loads(result[1])["workflows"]}

    assert ids(by_type) == {first, second}
    assert json.loads(by_type[1])["query"] == (
        f"TaskQueue = '{task_queue}' AND WorkflowType IN ('Invoice')"
    )
    assert terminated[0] == 0, terminated
    header, *rows = terminated[1].splitlines()
    assert header.split() == ["WORKFLOW", "ID", "TYPE", "STATUS", "STARTED", "CLOSED"]
    assert [row.split()[:3] for row in rows] == [[second, "Invoice", "terminated"]]
    assert ids(running) == {first, refund}
    assert all(w["close_time"] is None for w in json.loads(running[1])["workflows"])
    assert ids(since) == {second, refund}
    assert window[0] == 0, window
    assert [row.split()[0] for row in window[1].splitlines()[1:]] == [first]
    assert f"query: TaskQueue = '{task_queue}' AND StartTime >= '" in window[2]
    assert len(ids(limited)) == 1


async def test_list_refuses_a_bad_option_with_its_value(cli: Cli) -> None:
    status, since = await asyncio.gather(
        cli("list", "--status", "sleeping"), cli("list", "--since", "yesterday")
    )

    assert status[0] == 2
    assert "argument --status: invalid choice: 'sleeping'" in status[2]
    assert since[0] == 2
    assert "argument --since: 'yesterday' is neither a time ago" in since[2]
