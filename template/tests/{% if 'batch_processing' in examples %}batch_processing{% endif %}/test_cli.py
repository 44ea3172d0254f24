"""End-to-end test of `start batch-processing`: the worker and the starter as processes."""

from __future__ import annotations

import json

from shadow_sdk.testing import Cli, WorkerProcess


async def test_a_batch_reports_the_documents_it_could_not_index(
    worker: WorkerProcess, cli: Cli
) -> None:
    """The batch completes, and names the deleted document with its reason."""
    code, stdout, stderr = await cli(
        "start",
        "batch-processing",
        "doc-1",
        "doc-deleted",
        "doc-2",
        "--max-concurrency=2",
        "--json",
    )

    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["status"] == "completed"
    assert report["result"]["indexed"] == 2
    assert report["result"]["failed"] == [
        {"document_id": "doc-deleted", "reason": "NotFound: document 'doc-deleted' does not exist"}
    ]
