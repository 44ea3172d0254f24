"""tests/helpers/worker_process.py as a process, waited on from a test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from helpers.scrape import get
from shadow_sdk.testing import WorkerProcess

WORKER_PROCESS = Path(__file__).with_name("worker_process.py")


class Worker(WorkerProcess):
    """tests/helpers/worker_process.py running, waited on from a test's event loop."""

    @property
    def ops_port(self) -> int:
        return int(self.env["METRICS_PORT"])

    async def wait_for_line(self, text: str) -> None:
        await asyncio.to_thread(self.wait_for_output, text, 30)

    async def wait_until_ready(self) -> None:
        async with asyncio.timeout(30):
            while True:
                assert self.returncode is None, self.output
                with contextlib.suppress(OSError):
                    if (await get(self.ops_port, "/ready"))[0] == 200:
                        return
                await asyncio.sleep(0.05)

    async def exit_code(self, within: float = 60) -> int:
        """Wait up to ``within`` seconds for the process to exit."""
        return await asyncio.to_thread(self.wait, within)


@contextlib.asynccontextmanager
async def worker_process(
    home: Path, address: str, task_queue: str, **env: str
) -> AsyncIterator[Worker]:
    """Start the worker process with settings from its environment; always stop it."""
    worker = Worker(
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
        await worker.exit_code()
