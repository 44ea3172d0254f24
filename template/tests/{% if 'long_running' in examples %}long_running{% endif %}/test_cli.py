"""End-to-end test of `start long-running`: the worker and the starter as processes."""

from __future__ import annotations

import json

from shadow_sdk.testing import Cli, WorkerProcess


async def test_a_job_continues_as_new_until_it_is_done(worker: WorkerProcess, cli: Cli) -> None:
    """4 chunks at 2 per run take 2 runs, and the total counts every record once."""
    code, stdout, stderr = await cli(
        "start", "long-running", "2000", "--chunk-size=500", "--chunks-per-run=2", "--json"
    )

    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["status"] == "completed"
    assert report["result"] == {
        "job_id": report["workflow_id"].removeprefix("long-running-"),
        "records": 2000,
        "total": sum(index % 1000 for index in range(2000)),
        "runs": 2,
    }
