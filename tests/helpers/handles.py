"""Waiting on workflows from the client's side."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle


async def wait_until_activity_runs(handle: WorkflowHandle[object, object]) -> None:
    """Wait up to 30 s until the workflow's first pending activity has started on a worker."""
    async with asyncio.timeout(30):
        while True:
            description = await handle.describe()
            pending = description.raw_description.pending_activities
            if pending and pending[0].state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                return
            await asyncio.sleep(0.05)
