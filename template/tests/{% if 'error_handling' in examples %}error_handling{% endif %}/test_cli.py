"""`start order-fulfilment` as a process, against a worker process on a dev server."""

from __future__ import annotations

import json

from shadow_sdk.testing import Cli, WorkerProcess


async def test_an_order_is_fulfilled_or_undone(worker: WorkerProcess, cli: Cli) -> None:
    """`start order-fulfilment` ships a paid order; a declined card fails it with the refusal."""
    order = ["start", "order-fulfilment", "book", "--address=1 Main St", "--json"]

    shipped = await cli(*order)
    declined = await cli(*order, "--payment-token=tok_declined")

    assert shipped[0] == 0, shipped
    assert json.loads(shipped[1])["result"]["tracking_number"].startswith("track-")
    assert declined[0] == 1, declined
    assert json.loads(declined[1])["error"].startswith("PaymentDeclined: card tok_declined")
