"""tests/helpers/worker_process.py as a process, started and stopped from a test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from shadow_sdk.testing import WorkerProcess

WORKER_PROCESS = Path(__file__).with_name("worker_process.py")


@contextlib.asynccontextmanager
async def worker_process(
    home: Path, address: str, task_queue: str, **env: str
) -> AsyncIterator[WorkerProcess]:
    """Start the worker process with settings from its environment; always stop it.

    It is not waited for: a test waits for what it needs (``wait_for_ready()``, a line).
    """
    worker = WorkerProcess(
        [sys.executable, str(WORKER_PROCESS)],
        {
            **os.environ,
            "HOME": str(home),
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_TASK_QUEUE": task_queue,
            **env,
        },
    ).start(until=None)
    try:
        yield worker
    finally:
        if worker.returncode is None:
            worker.kill()
        await asyncio.to_thread(worker.wait)
