"""A cached activity and a workflow that calls it repeatedly, for tests on a real Temporal server.

They live in a module of their own because the workflow sandbox imports
workflow code from files.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.resilience import cached

CALLS: Counter[str] = Counter()
"""Runs of the body of :func:`lookup_customer`, by customer id."""


class Customer(BaseModel):
    customer_id: str
    name: str
    since: datetime
    balance: Decimal


@activity.defn
@cached(ttl=timedelta(minutes=5))
async def lookup_customer(customer_id: str) -> Customer:
    """Uses the process's default cache, which each test installs."""
    CALLS[customer_id] += 1
    return Customer(
        customer_id=customer_id,
        name=f"Customer {customer_id}",
        since=datetime.fromisoformat("2024-02-29T12:30:00+00:00"),
        balance=Decimal("1234.50"),
    )


@workflow.defn
class LookupRepeatedlyWorkflow:
    @workflow.run
    async def run(self, customer_id: str, times: int) -> list[Customer]:
        return [
            await workflow.execute_activity(
                lookup_customer, customer_id, start_to_close_timeout=timedelta(seconds=10)
            )
            for _ in range(times)
        ]
