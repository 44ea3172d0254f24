"""A trip booking: three steps, each undone by a compensation, failing where it is told to.

The activities write to :data:`LEDGER`, so tests see what really ran, in which order.
shadow_sdk is imported without passing it through the sandbox, which workflow
modules should not do (docs/plugin.md): ShadowPlugin's passthrough list makes even
that load.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from shadow_sdk.resilience import QUICK, Saga

LEDGER: list[tuple[str, str]] = []
STEPS = ("car", "hotel", "flight")


class Trip(BaseModel):
    fail_at: str | None = None
    """A step that fails; ``wait`` waits forever after the second step (to be cancelled);
    ``bug`` raises an error that fails only the workflow task."""
    failing_compensations: list[str] = []
    parallel: bool = False
    continue_on_error: bool = True


@activity.defn
async def book(step: str, trip: Trip) -> str:
    LEDGER.append(("book", step))
    if step == trip.fail_at:
        raise ApplicationError(f"no {step} available", type="Unavailable", non_retryable=True)
    return f"{step}-booking"


@activity.defn
async def cancel(booking: str, trip: Trip) -> None:
    LEDGER.append(("cancel", booking))
    await asyncio.sleep(0.05)
    if booking.removesuffix("-booking") in trip.failing_compensations:
        raise ApplicationError(f"{booking} cannot be cancelled", type="Stuck", non_retryable=True)


@activity.defn
async def notify(message: str) -> None:
    LEDGER.append(("notify", message))


@workflow.defn
class BookTripWorkflow:
    def __init__(self) -> None:
        self._bookings: list[str] = []

    @workflow.run
    async def run(self, trip: Trip) -> list[str]:
        bookings = self._bookings
        async with Saga(parallel=trip.parallel, continue_on_error=trip.continue_on_error) as saga:
            for step in STEPS:
                if step == "flight" and trip.fail_at == "wait":
                    await workflow.wait_condition(lambda: False)
                if step == "flight" and trip.fail_at == "bug":
                    raise RuntimeError("a bug in workflow code")
                booking = await workflow.execute_activity(book, args=[step, trip], **QUICK)
                bookings.append(booking)
                saga.add_activity(cancel, booking, trip, **QUICK)
            saga.add(self._tell_the_traveller, "trip booked, then undone", name="notify traveller")
            if trip.fail_at == "after-booking":
                raise ApplicationError("payment declined", type="Declined", non_retryable=True)
        return bookings

    @workflow.query
    def bookings(self) -> list[str]:
        """What is booked so far, each with its compensation registered."""
        return self._bookings

    async def _tell_the_traveller(self, message: str) -> None:
        await workflow.execute_activity(
            notify, message, start_to_close_timeout=timedelta(seconds=5)
        )
