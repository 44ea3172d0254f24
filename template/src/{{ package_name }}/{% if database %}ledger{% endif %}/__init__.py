"""Ledger: record each entry exactly once in the service's PostgreSQL, then read a balance."""

from .activities import CONFLICTING_ENTRY, DATABASE_NOT_CONFIGURED, LedgerActivities
from .models import Entry, LedgerResult, RecordedEntry
from .tables import ledger_entries, metadata
from .workflow import RecordEntryWorkflow

__all__ = [
    "CONFLICTING_ENTRY",
    "DATABASE_NOT_CONFIGURED",
    "Entry",
    "LedgerActivities",
    "LedgerResult",
    "RecordEntryWorkflow",
    "RecordedEntry",
    "ledger_entries",
    "metadata",
]
