"""``start long-running``: add up a large data set in chunks, across several workflow runs."""

from __future__ import annotations

import argparse
import uuid

import pydantic

from ..commands import Subcommands, add_start_options, invalid, start_and_report
from ..settings import Settings
from .models import Job, JobInput
from .workflow import LongRunningWorkflow


def add_start_command(start: Subcommands) -> None:
    """Add ``start long-running RECORDS [--chunk-size N] [--chunks-per-run N] [--job-id ID]``."""
    parser = start.add_parser(
        "long-running", help="process a large job in heartbeating chunks, continuing as new"
    )
    parser.add_argument("records", type=int, help="how many records the job has")
    parser.add_argument(
        "--chunk-size", type=int, default=1000, help="records per activity (default: 1000)"
    )
    parser.add_argument(
        "--chunks-per-run",
        type=int,
        default=500,
        help="chunks per workflow run before it continues as new (default: 500)",
    )
    parser.add_argument(
        "--job-id",
        default=uuid.uuid4().hex[:12],
        help="business id; the workflow id is long-running-<job id> (default: random)",
    )
    add_start_options(parser)
    parser.set_defaults(command=start_long_running)


async def start_long_running(settings: Settings, args: argparse.Namespace) -> int:
    """Start the long running workflow and, unless --no-wait, report its result."""
    try:
        job = Job(
            job_id=args.job_id,
            records=args.records,
            chunk_size=args.chunk_size,
            chunks_per_run=args.chunks_per_run,
        )
    except pydantic.ValidationError as error:
        return invalid("job", error)
    return await start_and_report(
        settings, args, LongRunningWorkflow.run, JobInput(job=job), f"long-running-{job.job_id}"
    )
