"""Saga compensation on a real time-skipping Temporal server, and replays of what ran."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers.resilience import Workflows
from saga_workflows import LEDGER, BookTripWorkflow, Trip, book, cancel, notify
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Replayer

from shadow_sdk import ShadowPlugin
from shadow_sdk.resilience import COMPENSATION_FAILED, QUICK, Saga


@pytest.fixture(autouse=True)
def ledger() -> list[tuple[str, str]]:
    LEDGER.clear()
    return LEDGER


class Trips(Workflows):
    """Trips booked by a worker on the test's task queue; each run is replayed afterwards."""

    async def run(self, trip: Trip) -> tuple[WorkflowHandle[Any, Any], BaseException | None]:
        """Book ``trip`` to its end, then replay its history: what failed it, if anything."""
        cause: BaseException | None = None
        async with self.worker():
            handle = await self.start(BookTripWorkflow.run, trip)
            try:
                await handle.result()
            except WorkflowFailureError as error:
                cause = error.cause
        await self.replay(handle)
        return handle, cause

    async def replay(self, handle: WorkflowHandle[Any, Any]) -> None:
        """Replaying the history with the same code must reproduce every command."""
        replayer = Replayer(workflows=[BookTripWorkflow], plugins=[ShadowPlugin()])
        await replayer.replay_workflow(await handle.fetch_history())


@pytest.fixture
def trips(temporal_client: Client, task_queue: str) -> Trips:
    return Trips(
        temporal_client, task_queue, workflows=[BookTripWorkflow], activities=[book, cancel, notify]
    )


def root_cause(error: BaseException | None) -> ApplicationError:
    while error is not None and not isinstance(error, ApplicationError):
        error = error.__cause__ or getattr(error, "cause", None)
    assert isinstance(error, ApplicationError)
    return error


async def test_a_failed_step_undoes_the_completed_ones_newest_first(
    trips: Trips, ledger: list[tuple[str, str]]
) -> None:
    _, cause = await trips.run(Trip(fail_at="flight"))

    assert ledger == [
        ("book", "car"),
        ("book", "hotel"),
        ("book", "flight"),
        ("cancel", "hotel-booking"),
        ("cancel", "car-booking"),
    ]
    assert root_cause(cause).type == "Unavailable"


async def test_a_completed_saga_undoes_nothing(trips: Trips, ledger: list[tuple[str, str]]) -> None:
    handle, cause = await trips.run(Trip())

    assert cause is None
    assert await handle.result() == ["car-booking", "hotel-booking", "flight-booking"]
    assert [entry for entry in ledger if entry[0] != "book"] == []


async def test_compensations_registered_as_callables_run_too(
    trips: Trips, ledger: list[tuple[str, str]]
) -> None:
    """An error raised by the workflow itself compensates every step, the callable first."""
    _, cause = await trips.run(Trip(fail_at="after-booking"))

    assert ledger[3:] == [
        ("notify", "trip booked, then undone"),
        ("cancel", "flight-booking"),
        ("cancel", "hotel-booking"),
        ("cancel", "car-booking"),
    ]
    assert root_cause(cause).type == "Declined"


async def test_cancelling_the_workflow_compensates_then_ends_cancelled(
    trips: Trips, ledger: list[tuple[str, str]]
) -> None:
    async with trips.worker():
        handle = await trips.start(BookTripWorkflow.run, Trip(fail_at="wait"))
        # The ledger shows a booking as soon as its activity runs; the workflow registers
        # the compensation only once it has the activity's result, so wait for that.
        async with asyncio.timeout(30):
            while len(await handle.query(BookTripWorkflow.bookings)) < 2:
                await asyncio.sleep(0.05)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as excinfo:
            await handle.result()

    assert isinstance(excinfo.value.cause, CancelledError)
    assert ledger == [
        ("book", "car"),
        ("book", "hotel"),
        ("cancel", "hotel-booking"),
        ("cancel", "car-booking"),
    ]
    await trips.replay(handle)


async def test_failed_compensations_are_reported_together_after_running_the_rest(
    trips: Trips, ledger: list[tuple[str, str]]
) -> None:
    trip = Trip(fail_at="flight", failing_compensations=["hotel", "car"])

    _, cause = await trips.run(trip)

    assert ledger[3:] == [("cancel", "hotel-booking"), ("cancel", "car-booking")]
    assert isinstance(cause, ApplicationError)
    assert cause.type == COMPENSATION_FAILED
    assert cause.non_retryable
    assert cause.message == (
        "2 of 2 compensations failed: cancel: Stuck: hotel-booking cannot be cancelled; "
        "cancel: Stuck: car-booking cannot be cancelled"
    )
    assert cause.details[0] == [
        {"name": "cancel", "status": "failed", "error": "Stuck: hotel-booking cannot be cancelled"},
        {"name": "cancel", "status": "failed", "error": "Stuck: car-booking cannot be cancelled"},
    ]
    assert root_cause(cause.cause).type == "Unavailable"


async def test_without_continue_on_error_the_rest_is_skipped(
    trips: Trips, ledger: list[tuple[str, str]]
) -> None:
    trip = Trip(fail_at="flight", failing_compensations=["hotel"], continue_on_error=False)

    _, cause = await trips.run(trip)

    assert ledger[3:] == [("cancel", "hotel-booking")]
    assert isinstance(cause, ApplicationError)
    assert [entry["status"] for entry in cause.details[0]] == ["failed", "skipped"]


async def test_parallel_compensations_are_scheduled_together(
    trips: Trips, ledger: list[tuple[str, str]]
) -> None:
    handle, _ = await trips.run(Trip(fail_at="flight", parallel=True))

    assert sorted(ledger[3:]) == [("cancel", "car-booking"), ("cancel", "hotel-booking")]
    events = [event.event_type for event in (await handle.fetch_history()).events]
    failed = events.index(EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    after = events[failed:]
    scheduled = [
        i for i, e in enumerate(after) if e == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    # Both compensations come out of one workflow task: no result separates them.
    assert len(scheduled) == 2
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED not in after[: scheduled[1]]


async def test_an_error_that_only_fails_the_task_undoes_nothing(
    trips: Trips, ledger: list[tuple[str, str]]
) -> None:
    """A bug is retried by Temporal once fixed; the bookings must survive until then."""
    async with trips.worker():
        handle = await trips.start(
            BookTripWorkflow.run,
            Trip(fail_at="bug"),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        async with asyncio.timeout(30):
            while not any(
                event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                for event in (await handle.fetch_history()).events
            ):
                await asyncio.sleep(0.1)
        await handle.terminate()

    assert ledger == [("book", "car"), ("book", "hotel")]


def test_a_compensation_activity_needs_a_timeout() -> None:
    with pytest.raises(ValueError, match="compensation 'cancel' needs start_to_close_timeout"):
        Saga().add_activity(cancel, "car-booking", Trip())

    Saga().add_activity(cancel, "car-booking", Trip(), **QUICK)
