"""Inputs and outputs of the order fulfilment workflow and its activities."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Order(BaseModel):
    """An order to fulfil: what, how many, how it is paid and where it goes."""

    order_id: str = Field(description="Business id; the workflow id is derived from it")
    sku: str
    quantity: int
    amount_cents: int
    payment_token: str = Field(description="The payment provider's token for the card")
    address: str


class Reservation(BaseModel):
    """Stock set aside for an order."""

    reservation_id: str
    order_id: str


class Payment(BaseModel):
    """A charge made for an order."""

    payment_id: str
    order_id: str
    amount_cents: int


class Fulfilment(BaseModel):
    """What a fulfilled order got: its payment and its parcel."""

    order_id: str
    payment_id: str
    tracking_number: str
