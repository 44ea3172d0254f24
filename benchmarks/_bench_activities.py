"""The type and activity the benchmark workflow uses, in a module of their own.

A service keeps the types its workflows take and return outside the workflow
module and imports them through ``workflow.unsafe.imports_passed_through()``, as
the generated examples do: the sandbox then shares one class across runs. A type
defined in the workflow module is a new class in every run, and a pydantic data
converter builds its validator again for each. Running this file does nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from temporalio import activity


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
