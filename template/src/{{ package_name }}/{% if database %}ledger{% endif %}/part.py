"""The ledger as a part of the service: its workflow, activities and command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..database import create_engine
from ..parts import Part
from ..settings import Settings
from . import cli
from .activities import LedgerActivities
from .workflow import RecordEntryWorkflow


def activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    """The ledger's activities on one engine of DATABASE_URL (which connects lazily)."""
    url = settings.database_url
    ledger = LedgerActivities(create_engine(url) if url is not None else None)
    return [ledger.record_entry, ledger.account_balance]


PART = Part(
    name="ledger",
    workflows=[RecordEntryWorkflow],
    activities=activities,
    start_commands=cli.add_start_command,
)
