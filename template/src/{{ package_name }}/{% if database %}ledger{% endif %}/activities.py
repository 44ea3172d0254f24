"""Activities of the ledger: a write that is safe to repeat, and a read.

Temporal runs an activity at least once: a worker that crashes after the INSERT but
before it reports completion, or a completion lost on the way, makes Temporal run
the activity again. ``record_entry`` is therefore keyed on the entry's business id,
never on the attempt: ``INSERT ... ON CONFLICT (entry_id) DO NOTHING`` leaves one
row however many attempts run, also concurrently, and a repeated attempt returns the
row the first one wrote.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from .models import Entry, RecordedEntry
from .tables import ledger_entries

CONFLICTING_ENTRY = "ConflictingEntry"
"""Error type of an entry id recorded before with another account or amount."""

DATABASE_NOT_CONFIGURED = "DatabaseNotConfigured"
"""Error type of an activity that needs DATABASE_URL on a worker without it."""


class LedgerActivities:
    """The ledger's activities, sharing one engine (and so one connection pool).

    Args:
        engine: The service's database; ``None`` when DATABASE_URL is not set, and the
            activities then fail at once, saying so, instead of being retried.
    """

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    def _database(self) -> AsyncEngine:
        if self._engine is None:
            raise ApplicationError(
                "DATABASE_URL is not set: the ledger needs the service's PostgreSQL",
                type=DATABASE_NOT_CONFIGURED,
                non_retryable=True,
            )
        return self._engine

    @activity.defn
    async def record_entry(self, entry: Entry) -> RecordedEntry:
        """Record ``entry`` unless it is recorded already, and return the stored row.

        Raises:
            ApplicationError: of type ``ConflictingEntry``, non-retryable, when the entry
                id was recorded with another account or amount: a bug upstream, which
                no retry fixes.
        """
        columns = ledger_entries.c
        write = (
            insert(ledger_entries)
            .values(entry_id=entry.entry_id, account=entry.account, amount_cents=entry.amount_cents)
            .on_conflict_do_nothing(index_elements=[columns.entry_id])
            .returning(columns.recorded_at)
        )
        async with self._database().begin() as connection:
            inserted = (await connection.execute(write)).first()
            if inserted is not None:
                return RecordedEntry(**entry.model_dump(), recorded_at=inserted[0], created=True)
            stored = (
                await connection.execute(
                    select(columns.account, columns.amount_cents, columns.recorded_at).where(
                        columns.entry_id == entry.entry_id
                    )
                )
            ).one()
        if (stored.account, stored.amount_cents) != (entry.account, entry.amount_cents):
            raise ApplicationError(
                f"entry {entry.entry_id} was recorded as {stored.amount_cents} cents to "
                f"{stored.account!r}, not {entry.amount_cents} cents to {entry.account!r}",
                type=CONFLICTING_ENTRY,
                non_retryable=True,
            )
        activity.logger.info("entry %s was recorded by an earlier attempt", entry.entry_id)
        return RecordedEntry(**entry.model_dump(), recorded_at=stored.recorded_at, created=False)

    @activity.defn
    async def account_balance(self, account: str) -> int:
        """The sum of the account's entries, in cents."""
        total = select(func.coalesce(func.sum(ledger_entries.c.amount_cents), 0)).where(
            ledger_entries.c.account == account
        )
        async with self._database().connect() as connection:
            return int((await connection.execute(total)).scalar_one())
