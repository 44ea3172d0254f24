"""The workflow and activity that ``worker.py`` runs, in a module of their own.

The workflow sandbox executes a workflow's module again for every workflow run.
Were they defined in ``worker.py``, each run would also compile and execute the
benchmark's harness, which would weigh on both variants alike and hide part of
what the plugin costs; here the sandbox loads only what a service's workflow
module holds. Running this file does nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow


@dataclass
class Order:
    """What the workflow carries: a few fields and a note, about 1 KiB of JSON.

    A dataclass, not a pydantic model, because the bare variant's default data
    converter cannot decode pydantic models; ShadowPlugin's converter handles both.
    """

    order_id: str
    customer: str
    amount_cents: int
    currency: str
    status: str
    note: str


@activity.defn
async def confirm_order(order: Order) -> Order:
    """Return the order confirmed: as trivial as an activity gets, with a payload each way."""
    return dataclasses.replace(order, status="confirmed")


@workflow.defn
class OrderWorkflow:
    """Runs one activity and returns its result."""

    @workflow.run
    async def run(self, order: Order) -> Order:
        """Confirm ``order``."""
        return await workflow.execute_activity(
            confirm_order, order, start_to_close_timeout=timedelta(seconds=60)
        )
