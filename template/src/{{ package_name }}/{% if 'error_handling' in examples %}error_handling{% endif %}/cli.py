"""``start order-fulfilment``: reserve, charge and ship an order, undoing on failure."""

from __future__ import annotations

import argparse
import uuid

import pydantic

from ..commands import Subcommands, add_start_options, invalid, start_and_report
from ..settings import Settings
from .models import Order
from .workflow import OrderFulfilmentWorkflow


def add_start_command(start: Subcommands) -> None:
    """Add ``start order-fulfilment SKU --address ADDRESS [...]``."""
    parser = start.add_parser(
        "order-fulfilment", help="reserve, charge and ship an order, undoing on failure"
    )
    parser.add_argument("sku", help="the item, for example book or lamp")
    parser.add_argument("--quantity", type=int, default=1, help="how many (default: 1)")
    parser.add_argument(
        "--amount-cents", type=int, default=2500, help="price to charge (default: 2500)"
    )
    parser.add_argument(
        "--payment-token",
        default="tok_visa",
        help="the card's token at the payment provider; tok_declined is declined "
        "(default: tok_visa)",
    )
    parser.add_argument("--address", required=True, help="where to ship")
    parser.add_argument(
        "--order-id",
        default=uuid.uuid4().hex[:12],
        help="business id; the workflow id is order-fulfilment-<order id> (default: random)",
    )
    add_start_options(parser)
    parser.set_defaults(command=start_order_fulfilment)


async def start_order_fulfilment(settings: Settings, args: argparse.Namespace) -> int:
    """Start the order fulfilment workflow and, unless --no-wait, report its result."""
    try:
        order = Order(
            order_id=args.order_id,
            sku=args.sku,
            quantity=args.quantity,
            amount_cents=args.amount_cents,
            payment_token=args.payment_token,
            address=args.address,
        )
    except pydantic.ValidationError as error:
        return invalid("order", error)
    return await start_and_report(
        settings, args, OrderFulfilmentWorkflow.run, order, f"order-fulfilment-{order.order_id}"
    )
