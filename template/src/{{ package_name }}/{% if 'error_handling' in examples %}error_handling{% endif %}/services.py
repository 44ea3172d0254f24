"""The systems an order touches: a payment provider and a warehouse.

These in-memory versions behave like the real ones where it matters to the
workflow: each operation is idempotent by key, a declined card and a rejected
address are answers rather than outages, and a payment provider can be down.
Replace them with clients of your real systems; the activities only depend on
the methods used here.
"""

from __future__ import annotations

import itertools


class PaymentDeclined(Exception):
    """The provider answered and refused the charge; retrying will not change its mind."""


class OutOfStock(Exception):
    """The warehouse does not have the quantity asked for."""


class AddressRejected(Exception):
    """The carrier cannot deliver to the address."""


class PaymentGateway:
    """A payment provider: charges and refunds, idempotent by key.

    Attributes:
        declined_tokens: Payment tokens whose charges are declined.
        outage: How many of the next calls fail with :class:`ConnectionError`, as
            when the provider is down.
        charge_calls: Every charge request that reached the provider.
        refunded: Ids of refunded payments.
    """

    def __init__(self, *, declined_tokens: frozenset[str] = frozenset({"tok_declined"})) -> None:
        self.declined_tokens = declined_tokens
        self.outage = 0
        self.charge_calls = 0
        self.refunded: set[str] = set()
        self._charges: dict[str, str] = {}
        self._ids = itertools.count(1)

    async def charge(self, idempotency_key: str, amount_cents: int, payment_token: str) -> str:
        """Charge once per key and return the payment id."""
        self.charge_calls += 1
        if self.outage > 0:
            self.outage -= 1
            raise ConnectionError("payment provider unreachable")
        if payment_token in self.declined_tokens:
            raise PaymentDeclined(f"card {payment_token} declined for {amount_cents} cents")
        if idempotency_key not in self._charges:
            self._charges[idempotency_key] = f"pay-{next(self._ids)}"
        return self._charges[idempotency_key]

    async def refund(self, payment_id: str) -> None:
        """Refund a payment; refunding it again changes nothing."""
        self.refunded.add(payment_id)


class Warehouse:
    """A warehouse: reservations, releases and shipments, idempotent by key.

    Attributes:
        stock: Units available per SKU.
        undeliverable: Addresses the carrier rejects.
        released: Ids of released reservations.
    """

    def __init__(
        self, stock: dict[str, int] | None = None, *, undeliverable: frozenset[str] = frozenset()
    ) -> None:
        self.stock = dict(stock) if stock is not None else {"book": 100, "lamp": 20}
        self.undeliverable = undeliverable
        self.released: set[str] = set()
        self._reservations: dict[str, tuple[str, int]] = {}
        self._shipments: dict[str, str] = {}

    async def reserve(self, reservation_id: str, sku: str, quantity: int) -> None:
        """Set ``quantity`` of ``sku`` aside under ``reservation_id``, once."""
        if reservation_id in self._reservations:
            return
        if self.stock.get(sku, 0) < quantity:
            raise OutOfStock(f"{quantity} x {sku} asked, {self.stock.get(sku, 0)} in stock")
        self.stock[sku] -= quantity
        self._reservations[reservation_id] = (sku, quantity)

    async def release(self, reservation_id: str) -> None:
        """Put reserved stock back; releasing twice changes nothing."""
        if reservation_id in self._reservations and reservation_id not in self.released:
            sku, quantity = self._reservations[reservation_id]
            self.stock[sku] += quantity
            self.released.add(reservation_id)

    async def ship(self, reservation_id: str, address: str) -> str:
        """Ship the reserved stock and return the tracking number, once."""
        if address in self.undeliverable:
            raise AddressRejected(f"no delivery to {address!r}")
        return self._shipments.setdefault(reservation_id, f"track-{reservation_id}")
