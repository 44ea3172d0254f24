"""The ledger workflow: record an entry once, then report its account's balance."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from .activities import CONFLICTING_ENTRY, DATABASE_NOT_CONFIGURED, LedgerActivities
    from .models import Entry, LedgerResult

RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[CONFLICTING_ENTRY, DATABASE_NOT_CONFIGURED],
)
"""Retry a database that is down or restarting; never an entry that conflicts."""


# Pinned: a run lasts seconds, so it finishes on the code that started it.
@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class RecordEntryWorkflow:
    """Record an entry in the service's database and return the account's balance.

    The write may run more than once (a retry after a timeout, a worker that crashed
    before reporting): ``record_entry`` keeps one row per entry id, so the balance
    counts each entry once.
    """

    @workflow.run
    async def run(self, entry: Entry) -> LedgerResult:
        """Record ``entry``; return it as stored and the balance of its account."""
        recorded = await workflow.execute_activity_method(
            LedgerActivities.record_entry,
            entry,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(minutes=30),
            retry_policy=RETRY_POLICY,
        )
        balance = await workflow.execute_activity_method(
            LedgerActivities.account_balance,
            entry.account,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(minutes=30),
            retry_policy=RETRY_POLICY,
        )
        return LedgerResult(entry=recorded, balance_cents=balance)
