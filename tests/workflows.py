"""Workflows and activities the SDK's tests run on real Temporal servers.

They live in a module of their own because the workflow sandbox imports
workflow code from files.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity, workflow


class Greeting(BaseModel):
    name: str
    sent_at: datetime


class Reply(BaseModel):
    text: str
    greeting_sent_at: datetime


@activity.defn
async def compose_reply(greeting: Greeting) -> Reply:
    return Reply(text=f"Hello, {greeting.name}!", greeting_sent_at=greeting.sent_at)


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, greeting: Greeting) -> Reply:
        return await workflow.execute_activity(
            compose_reply, greeting, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class TotalWorkflow:
    """Adds amounts of money; Decimal is what the default converter cannot encode."""

    @workflow.run
    async def run(self, amounts: list[Decimal]) -> Decimal:
        return sum(amounts, Decimal(0))


@workflow.defn
class SleepWorkflow:
    @workflow.run
    async def run(self, days: int) -> str:
        await workflow.sleep(timedelta(days=days))
        return f"slept {days} days"


@activity.defn
async def slow_step(seconds: float) -> str:
    """Work for ``seconds``, heartbeating, and tell whether the worker began shutting down."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        activity.heartbeat()
        await asyncio.sleep(0.1)
    return "finished during shutdown" if activity.is_worker_shutdown() else "finished"


@workflow.defn
class SlowStepWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_activity(
            slow_step,
            seconds,
            start_to_close_timeout=timedelta(seconds=seconds + 30),
            heartbeat_timeout=timedelta(seconds=10),
        )
