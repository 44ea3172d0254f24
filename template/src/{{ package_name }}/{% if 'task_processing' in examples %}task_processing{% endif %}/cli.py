"""``start task-processing``: validate, process and notify about a document."""

from __future__ import annotations

import argparse
import uuid

import pydantic

from ..commands import Subcommands, add_start_options, invalid, start_and_report
from ..settings import Settings
from .models import Task
from .workflow import TaskProcessingWorkflow


def add_start_command(start: Subcommands) -> None:
    """Add ``start task-processing TEXT --notify ADDRESS [--task-id ID]``."""
    parser = start.add_parser(
        "task-processing", help="validate, process and notify about a document"
    )
    parser.add_argument("text", help="the document's text")
    parser.add_argument("--notify", required=True, help="email address to notify")
    parser.add_argument(
        "--task-id",
        default=uuid.uuid4().hex[:12],
        help="business id; the workflow id is task-processing-<task id> (default: random)",
    )
    add_start_options(parser)
    parser.set_defaults(command=start_task_processing)


async def start_task_processing(settings: Settings, args: argparse.Namespace) -> int:
    """Start the task processing workflow and, unless --no-wait, report its result."""
    try:
        task = Task(task_id=args.task_id, text=args.text, notify=args.notify)
    except pydantic.ValidationError as error:
        return invalid("task", error)
    return await start_and_report(
        settings, args, TaskProcessingWorkflow.run, task, f"task-processing-{task.task_id}"
    )
