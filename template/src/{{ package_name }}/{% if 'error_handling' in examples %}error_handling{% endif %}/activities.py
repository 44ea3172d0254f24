"""Activities of the order fulfilment workflow: the payment provider and the warehouse.

They are methods of :class:`FulfilmentActivities`, which holds the clients of
the systems they call, so the worker builds it once with real clients and tests
build it with their own. Each activity turns the systems' answers into errors
Temporal understands: a refusal (declined card, no stock, bad address) is a
non-retryable ``ApplicationError`` that fails the workflow at once, while an
outage is an ordinary exception that Temporal retries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from shadow_sdk.resilience import CircuitBreaker, circuit_breaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from .models import Order, Payment, Reservation
from .services import AddressRejected, OutOfStock, PaymentDeclined, PaymentGateway, Warehouse

PAYMENT_DECLINED = "PaymentDeclined"
OUT_OF_STOCK = "OutOfStock"
ADDRESS_REJECTED = "AddressRejected"


def payments_breaker() -> CircuitBreaker:
    """The worker's breaker in front of the payment provider, shared by all its activities.

    Half the calls failing over the last 20 (at least 5) opens it for 30 s:
    attempts in that time fail at once with ``CircuitOpen`` and Temporal retries
    them when the circuit half-opens, instead of piling onto a provider that is
    down. A declined card is the provider working, so it does not count.
    """
    return circuit_breaker(
        "payments",
        window_size=20,
        minimum_calls=5,
        failure_rate_threshold=0.5,
        open_duration=timedelta(seconds=30),
        ignore_exceptions=(PaymentDeclined,),
    )


class FulfilmentActivities:
    """The activities, bound to the systems they call.

    Args:
        payments: The payment provider's client.
        warehouse: The warehouse's client.
        breaker: Guards the payment provider; :func:`payments_breaker` by default.
    """

    def __init__(
        self,
        payments: PaymentGateway,
        warehouse: Warehouse,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.payments = payments
        self.warehouse = warehouse
        self.breaker = breaker or payments_breaker()

    @activity.defn
    async def reserve_stock(self, order: Order) -> Reservation:
        """Set the order's items aside."""
        reservation_id = f"{order.order_id}/stock"
        try:
            await self.warehouse.reserve(reservation_id, order.sku, order.quantity)
        except OutOfStock as error:
            raise ApplicationError(str(error), type=OUT_OF_STOCK, non_retryable=True) from None
        return Reservation(reservation_id=reservation_id, order_id=order.order_id)

    @activity.defn
    async def release_stock(self, reservation: Reservation) -> None:
        """Put the items back: compensates :meth:`reserve_stock`."""
        await self.warehouse.release(reservation.reservation_id)

    @activity.defn
    async def charge_payment(self, order: Order) -> Payment:
        """Charge the order, through the circuit breaker, once per order."""
        try:
            payment_id = await self.breaker.call(
                self.payments.charge, order.order_id, order.amount_cents, order.payment_token
            )
        except PaymentDeclined as error:
            raise ApplicationError(str(error), type=PAYMENT_DECLINED, non_retryable=True) from None
        return Payment(
            payment_id=payment_id, order_id=order.order_id, amount_cents=order.amount_cents
        )

    @activity.defn
    async def refund_payment(self, payment: Payment) -> None:
        """Give the money back: compensates :meth:`charge_payment`."""
        await self.payments.refund(payment.payment_id)

    @activity.defn
    async def ship_order(self, order: Order, reservation: Reservation) -> str:
        """Hand the reserved items to the carrier; returns the tracking number."""
        try:
            return await self.warehouse.ship(reservation.reservation_id, order.address)
        except AddressRejected as error:
            raise ApplicationError(str(error), type=ADDRESS_REJECTED, non_retryable=True) from None

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for the worker."""
        return [
            self.reserve_stock,
            self.release_stock,
            self.charge_payment,
            self.refund_payment,
            self.ship_order,
        ]
