"""Activities that say which version of this file they ran."""

from __future__ import annotations

import asyncio

from temporalio import activity

VERSION = "v1"


@activity.defn
async def greet() -> str:
    """This file's version."""
    return VERSION


@activity.defn
async def linger(seconds: float) -> str:
    """Work for ``seconds``, heartbeating; the version, and whether a drain came meanwhile."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        activity.heartbeat()
        await asyncio.sleep(0.1)
    return f"{VERSION}, drained" if activity.is_worker_shutdown() else VERSION
