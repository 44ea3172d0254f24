"""Workflows and activities the SDK's tests run on real Temporal servers.

They live in a module of their own because the workflow sandbox imports
workflow code from files.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.auth import current_identity
    from shadow_sdk.resilience import cached, circuit_breaker


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
    activity.logger.info("slow step runs for %g s", seconds)
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        activity.heartbeat()
        await asyncio.sleep(0.1)
    return "finished during shutdown" if activity.is_worker_shutdown() else "finished"


@workflow.defn
class SlowStepWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        workflow.logger.info("starting a slow step")
        return await workflow.execute_activity(
            slow_step,
            seconds,
            start_to_close_timeout=timedelta(seconds=seconds + 30),
            heartbeat_timeout=timedelta(seconds=10),
        )


@workflow.defn
class GuardedWorkflow:
    """Collects items sent as signals and updates until told to finish."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.finished = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.finished)
        return self.items

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.query
    def current(self) -> list[str]:
        return self.items

    @workflow.update
    def add_checked(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @add_checked.validator
    def _validate_add_checked(self, item: str) -> None:
        if not item:
            raise ValueError("empty item")

    @workflow.update
    def add_unchecked(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)


@activity.defn
async def who_called() -> str:
    identity = current_identity()
    return "nobody" if identity is None else identity.subject


@workflow.defn
class WhoCalledChildWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            who_called, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class WhoCalledWorkflow:
    """Reports the identity its activity and its child workflow's activity see."""

    @workflow.run
    async def run(self, sleep_days: int) -> list[str]:
        mine = await workflow.execute_activity(
            who_called, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(timedelta(days=sleep_days))
        childs = await workflow.execute_child_workflow(
            WhoCalledChildWorkflow.run, id=f"{workflow.info().workflow_id}-child"
        )
        return [mine, childs]


@workflow.defn
class AuditedWorkflow:
    """Runs an activity for every `record` signal; the activity reports whose call it serves."""

    def __init__(self) -> None:
        self.callers: list[str] = []
        self.finished = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.finished)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.callers

    @workflow.signal
    async def record(self) -> None:
        caller = await workflow.execute_activity(
            who_called, start_to_close_timeout=timedelta(seconds=10)
        )
        self.callers.append(caller)

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.update
    async def record_now(self) -> str:
        caller = await workflow.execute_activity(
            who_called, start_to_close_timeout=timedelta(seconds=10)
        )
        self.callers.append(caller)
        return caller


@workflow.defn
class ShortCronWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "ran"


@activity.defn
async def flaky_step(failures: int) -> int:
    """Fail the first ``failures`` attempts, then return the attempt that succeeded."""
    attempt = activity.info().attempt
    if attempt <= failures:
        raise ApplicationError(f"attempt {attempt} fails on purpose")
    return attempt


@workflow.defn
class OutcomeWorkflow:
    """Ends the way it is asked to: ``complete``, ``fail``, ``cancel`` (waits) or ``continue``."""

    @workflow.run
    async def run(self, outcome: str) -> str:
        if outcome == "continue":
            workflow.continue_as_new("complete")
        if outcome == "fail":
            raise ApplicationError("asked to fail", non_retryable=True)
        if outcome == "cancel":
            await workflow.wait_condition(lambda: False)
        attempt = await workflow.execute_activity(
            flaky_step,
            1,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        return f"completed on attempt {attempt}"


@activity.defn
async def stubborn_step(seconds: float) -> str:
    """Run for ``seconds`` and ignore cancellation: what a hard shutdown cap is for."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(remaining)
    return "finished"


@workflow.defn
class StubbornWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_activity(
            stubborn_step, seconds, start_to_close_timeout=timedelta(seconds=seconds + 30)
        )


@workflow.defn
class SlowFirstTaskWorkflow:
    """Blocks its first workflow task for ``seconds``, longer than its task timeout.

    The history of a first attempt holds three events (started, task scheduled,
    task started); a retried task sees more, and does not block again.
    """

    @workflow.run
    async def run(self, seconds: float) -> str:
        if workflow.info().get_current_history_length() <= 3:
            with workflow.unsafe.sandbox_unrestricted():
                time.sleep(seconds)  # noqa: ASYNC251  Blocking is the point.
        return "done"


async def _work(seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        activity.heartbeat()
        await asyncio.sleep(0.05)


@activity.defn
async def square_step(index: int, seconds: float) -> int:
    """Work for ``seconds``, heartbeating, then return ``index`` squared."""
    await _work(seconds)
    return index * index


@cached(ttl=timedelta(minutes=10))
async def _shared_square(index: int, seconds: float) -> int:
    await _work(seconds)
    return index * index


@activity.defn
async def shared_square_step(index: int, seconds: float) -> int:
    """As ``square_step``, cached and behind a breaker: Redis shares both when configured."""
    breaker = circuit_breaker("fault-tests", consecutive_failures=3, open_duration=1)
    return await breaker.call(_shared_square, index, seconds)


@workflow.defn
class SquaresWorkflow:
    """Squares ``0 .. steps - 1`` one activity after the other; survives worker and server loss.

    A 2 s heartbeat timeout lets Temporal retry an attempt whose worker died soon.
    """

    @workflow.run
    async def run(self, steps: int, seconds: float, shared: bool) -> list[int]:
        activity_fn = shared_square_step if shared else square_step
        return [
            await workflow.execute_activity(
                activity_fn,
                args=[index, seconds],
                start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=2),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=200), backoff_coefficient=1.0
                ),
            )
            for index in range(steps)
        ]


@activity.defn
async def echo(text: str) -> str:
    """``text``, unchanged."""
    return text


@workflow.defn
class PairWorkflow:
    """Schedules two activities in one workflow task, then returns both results."""

    @workflow.run
    async def run(self, text: str) -> list[str]:
        """Echo ``text`` as activity ``first`` and ``text!`` as activity ``second``."""
        timeout = timedelta(seconds=30)
        first = workflow.execute_activity(
            echo, text, activity_id="first", start_to_close_timeout=timeout
        )
        second = workflow.execute_activity(
            echo, f"{text}!", activity_id="second", start_to_close_timeout=timeout
        )
        return list(await asyncio.gather(first, second))
