"""Create the ledger's entries, one row per entry id.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``ledger_entries`` and its index on the account."""
    op.create_table(
        "ledger_entries",
        sa.Column("entry_id", sa.String(100), primary_key=True),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_index("ix_ledger_entries_account", "ledger_entries", ["account"])


def downgrade() -> None:
    """Drop ``ledger_entries``."""
    op.drop_index("ix_ledger_entries_account", table_name="ledger_entries")
    op.drop_table("ledger_entries")
