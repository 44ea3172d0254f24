"""Error handling: an order fulfilment with retries, a circuit breaker and saga compensation."""

from .activities import (
    ADDRESS_REJECTED,
    OUT_OF_STOCK,
    PAYMENT_DECLINED,
    FulfilmentActivities,
    payments_breaker,
)
from .models import Fulfilment, Order, Payment, Reservation
from .services import AddressRejected, OutOfStock, PaymentDeclined, PaymentGateway, Warehouse
from .workflow import OrderFulfilmentWorkflow

__all__ = [
    "ADDRESS_REJECTED",
    "OUT_OF_STOCK",
    "PAYMENT_DECLINED",
    "AddressRejected",
    "Fulfilment",
    "FulfilmentActivities",
    "Order",
    "OrderFulfilmentWorkflow",
    "OutOfStock",
    "Payment",
    "PaymentDeclined",
    "PaymentGateway",
    "Reservation",
    "Warehouse",
    "payments_breaker",
]
