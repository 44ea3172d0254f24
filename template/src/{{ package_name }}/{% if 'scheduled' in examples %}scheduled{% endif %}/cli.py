"""``start daily-report`` and ``schedules sync``: the daily report and its schedule."""

from __future__ import annotations

import argparse
import json

import pydantic
from shadow_sdk import connect

from ..commands import Subcommands, add_start_options, invalid, start_and_report
from ..settings import Settings
from .models import ReportRequest
from .schedules import schedules, sync_schedules
from .workflow import DailyReportWorkflow


def add_start_command(start: Subcommands) -> None:
    """Add ``start daily-report [--window-hours N]``: a report now, outside the schedule."""
    parser = start.add_parser("daily-report", help="compile a report now, outside its schedule")
    parser.add_argument(
        "--window-hours", type=int, default=24, help="hours the report covers (default: 24)"
    )
    parser.add_argument(
        "--report-id", required=True, help="business id; the workflow id is daily-report-<id>"
    )
    add_start_options(parser)
    parser.set_defaults(command=start_daily_report)


def add_commands(commands: Subcommands) -> None:
    """Add ``schedules sync``."""
    parser = commands.add_parser("schedules", help="manage the service's Temporal Schedules")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    sync = actions.add_parser(
        "sync", help="create or update every schedule declared in schedules.py"
    )
    sync.add_argument("--json", action="store_true", help="print one JSON object, not text")
    sync.set_defaults(command=sync_command)


async def start_daily_report(settings: Settings, args: argparse.Namespace) -> int:
    """Start the daily report workflow by hand and, unless --no-wait, report its result."""
    try:
        request = ReportRequest(window_hours=args.window_hours)
    except pydantic.ValidationError as error:
        return invalid("report", error)
    return await start_and_report(
        settings, args, DailyReportWorkflow.run, request, f"daily-report-{args.report_id}"
    )


async def sync_command(settings: Settings, args: argparse.Namespace) -> int:
    """Create, update or leave each declared schedule, and say which."""
    outcomes = await sync_schedules(await connect(settings), schedules(settings))
    if args.json:
        print(json.dumps(outcomes))
    else:
        for schedule_id, outcome in outcomes.items():
            print(f"{outcome} schedule {schedule_id}")
    return 0
