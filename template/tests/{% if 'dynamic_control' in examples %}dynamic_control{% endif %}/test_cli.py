"""End-to-end test of the rollout's commands: the worker and the command line as processes."""

from __future__ import annotations

import json

from shadow_sdk.testing import Cli, WorkerProcess
from temporalio.client import Client


async def test_a_rollout_is_steered_from_the_command_line(
    worker: WorkerProcess, cli: Cli, service_client: Client
) -> None:
    """Start, pause, status, resume, a rejected update and a cancel, each one command."""
    start = ["start", "rollout", "web-1", "web-2", "--version=1.2.3", "--interval=3600"]
    code, stdout, _ = await cli(*start, "--no-wait", "--json")
    assert code == 0, stdout
    workflow_id = json.loads(stdout)["workflow_id"]

    paused = await cli("control", "pause", workflow_id)
    status = await cli("control", "status", workflow_id, "--json")
    resumed = await cli("control", "resume", workflow_id)
    rejected = await cli("control", "add-targets", workflow_id, "web-1")
    cancelled = await cli("control", "cancel", workflow_id, "--reason=enough")
    report = await service_client.get_workflow_handle(workflow_id).result()

    assert paused[0] == 0, paused
    assert status[0] == 0, status
    state = json.loads(status[1])
    assert (state["status"], state["paused"], state["steps"]) == ("paused", True, 2)
    assert resumed[0] == 0, resumed
    assert rejected[0] == 1, rejected
    assert (
        f"{workflow_id}: targets not added: InvalidInput: already in the rollout: web-1\n"
        in rejected[2]
    )
    assert cancelled[0] == 0, cancelled
    assert report == {
        "version": "1.2.3",
        "status": "cancelled",
        "deployed": ["web-1"],
        "skipped": ["web-2"],
        "reason": "enough",
    }
