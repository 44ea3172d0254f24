"""One workflow per activity."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .activities import greet, linger


@workflow.defn
class GreetWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(greet, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class LingerWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_activity(
            linger,
            seconds,
            start_to_close_timeout=timedelta(seconds=seconds + 30),
            heartbeat_timeout=timedelta(seconds=10),
        )
