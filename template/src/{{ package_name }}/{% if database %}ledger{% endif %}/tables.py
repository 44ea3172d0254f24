"""The ledger's table, as SQLAlchemy Core describes it; ``migrations/`` creates it.

A change here needs a migration too: ``uv run alembic revision -m "..."``, then write
its ``upgrade`` and ``downgrade`` (see the service guide).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, func

metadata = MetaData()
"""Every table of the service, for the migrations' autogenerate to compare against."""

ledger_entries = Table(
    "ledger_entries",
    metadata,
    # The business id is the key: a second attempt to insert the same entry conflicts
    # with the first instead of adding a row.
    Column("entry_id", String(100), primary_key=True),
    Column("account", String(100), nullable=False, index=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
