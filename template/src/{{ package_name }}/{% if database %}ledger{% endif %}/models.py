"""Inputs and outputs of the ledger workflow and its activities."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Entry(BaseModel):
    """An amount booked to an account, once."""

    entry_id: str = Field(description="Business id: the row's key and the workflow id's suffix")
    account: str
    amount_cents: int = Field(description="Positive credits the account, negative debits it")


class RecordedEntry(BaseModel):
    """An entry as the database holds it."""

    entry_id: str
    account: str
    amount_cents: int
    recorded_at: datetime
    created: bool = Field(description="False when an earlier attempt had recorded it already")


class LedgerResult(BaseModel):
    """The workflow's result: the entry, and its account's balance afterwards."""

    entry: RecordedEntry
    balance_cents: int
