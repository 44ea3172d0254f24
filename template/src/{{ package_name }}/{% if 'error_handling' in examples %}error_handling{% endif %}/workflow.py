"""The order fulfilment workflow: reserve, charge, ship, and undo on the way back out."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.resilience import EXTERNAL_API, QUICK, Saga

    from .activities import FulfilmentActivities
    from .models import Fulfilment, Order


# Pinned: its compensations must undo exactly the steps this code took.
@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class OrderFulfilmentWorkflow:
    """Reserve stock, charge the card, ship; if a step fails, undo the ones before it.

    Each step runs with a preset of timeouts and retries: ``QUICK`` for the
    warehouse, ``EXTERNAL_API`` for the payment provider and the carrier. An
    outage is retried (the payment provider sits behind a circuit breaker, so
    while it is down attempts wait for the circuit instead of hammering it); a
    refusal (no stock, declined card, rejected address) fails the step at once.
    Then the saga undoes what was done, newest first: a rejected address refunds
    the payment and releases the stock; a declined card only releases the stock.
    Cancelling the workflow undoes the same way.
    """

    @workflow.run
    async def run(self, order: Order) -> Fulfilment:
        """Fulfil ``order``, or leave nothing half done."""
        async with Saga() as saga:
            reservation = await workflow.execute_activity_method(
                FulfilmentActivities.reserve_stock, order, **QUICK
            )
            saga.add_activity(FulfilmentActivities.release_stock, reservation, **QUICK)
            payment = await workflow.execute_activity_method(
                FulfilmentActivities.charge_payment, order, **EXTERNAL_API
            )
            saga.add_activity(FulfilmentActivities.refund_payment, payment, **EXTERNAL_API)
            tracking_number = await workflow.execute_activity_method(
                FulfilmentActivities.ship_order, args=[order, reservation], **EXTERNAL_API
            )
        return Fulfilment(
            order_id=order.order_id,
            payment_id=payment.payment_id,
            tracking_number=tracking_number,
        )
