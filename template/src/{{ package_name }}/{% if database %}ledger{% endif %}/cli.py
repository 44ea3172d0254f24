"""``start record-entry``: book an amount to an account, once per entry id."""

from __future__ import annotations

import argparse
import uuid

import pydantic

from ..commands import Subcommands, add_start_options, invalid, start_and_report
from ..settings import Settings
from .models import Entry
from .workflow import RecordEntryWorkflow


def add_start_command(start: Subcommands) -> None:
    """Add ``start record-entry ACCOUNT AMOUNT_CENTS [--entry-id ID]``."""
    parser = start.add_parser(
        "record-entry", help="record an amount in the ledger once, and print the balance"
    )
    parser.add_argument("account", help="the account to book to")
    parser.add_argument("amount_cents", help="cents: positive credits, negative debits")
    parser.add_argument(
        "--entry-id",
        default=uuid.uuid4().hex[:12],
        help="business id; the workflow id is ledger-<entry id> (default: random)",
    )
    add_start_options(parser)
    parser.set_defaults(command=start_record_entry)


async def start_record_entry(settings: Settings, args: argparse.Namespace) -> int:
    """Start the ledger workflow and, unless --no-wait, report its result."""
    try:
        entry = Entry(entry_id=args.entry_id, account=args.account, amount_cents=args.amount_cents)
    except pydantic.ValidationError as error:
        return invalid("entry", error)
    return await start_and_report(
        settings, args, RecordEntryWorkflow.run, entry, f"ledger-{entry.entry_id}"
    )
