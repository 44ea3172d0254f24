"""``start batch-processing``: index many documents, a bounded number at once."""

from __future__ import annotations

import argparse
import uuid

import pydantic

from ..commands import Subcommands, add_start_options, invalid, start_and_report
from ..settings import Settings
from .models import Batch
from .workflow import BatchProcessingWorkflow


def add_start_command(start: Subcommands) -> None:
    """Add ``start batch-processing DOCUMENT_ID... [--max-concurrency N] [--batch-id ID]``."""
    parser = start.add_parser(
        "batch-processing", help="index many documents, a bounded number at once"
    )
    parser.add_argument("document_ids", nargs="+", metavar="DOCUMENT_ID", help="documents to index")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=10,
        help="most documents indexed at once (default: 10)",
    )
    parser.add_argument(
        "--batch-id",
        default=uuid.uuid4().hex[:12],
        help="business id; the workflow id is batch-processing-<batch id> (default: random)",
    )
    add_start_options(parser)
    parser.set_defaults(command=start_batch_processing)


async def start_batch_processing(settings: Settings, args: argparse.Namespace) -> int:
    """Start the batch processing workflow and, unless --no-wait, report its result."""
    try:
        batch = Batch(
            batch_id=args.batch_id,
            document_ids=args.document_ids,
            max_concurrency=args.max_concurrency,
        )
    except pydantic.ValidationError as error:
        return invalid("batch", error)
    return await start_and_report(
        settings, args, BatchProcessingWorkflow.run, batch, f"batch-processing-{batch.batch_id}"
    )
