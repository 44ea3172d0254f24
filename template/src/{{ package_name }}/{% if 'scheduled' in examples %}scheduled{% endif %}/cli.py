"""``start daily-report`` and ``schedules``: the report by hand, and its schedules."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pydantic
from shadow_sdk import connect
from temporalio.client import ScheduleHandle
from temporalio.service import RPCError, RPCStatusCode

from ..commands import Subcommands, add_start_options, invalid, start_and_report
from ..settings import Settings
from .models import ReportRequest
from .schedules import DAILY_REPORT, HOURLY_REPORT, schedules, sync_schedules, trigger
from .workflow import DailyReportWorkflow

Action = Callable[[ScheduleHandle, argparse.Namespace], Awaitable[int]]
"""What a ``schedules`` subcommand does to one schedule: exit status out."""

TRIGGER_TIMEOUT = timedelta(seconds=30)
"""How long ``schedules trigger`` waits for the schedule to start the run."""


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
    """Add ``schedules sync``, and ``schedules pause|unpause|trigger SCHEDULE_ID``."""
    parser = commands.add_parser("schedules", help="manage the service's Temporal Schedules")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    sync = actions.add_parser(
        "sync", help="create, update or leave alone each schedule declared in schedules.py"
    )
    sync.add_argument("--json", action="store_true", help="print one JSON object, not text")
    sync.set_defaults(command=sync_command)
    _add_action(actions, "pause", _pause, "start no more runs until unpaused").add_argument(
        "--note", default="paused from the command line", help="why, shown with the schedule"
    )
    _add_action(actions, "unpause", _unpause, "start runs again when due").add_argument(
        "--note", default="unpaused from the command line", help="shown with the schedule"
    )
    _add_action(actions, "trigger", _trigger, "start a run now, paused or not").add_argument(
        "--json", action="store_true", help="print one JSON object, not text"
    )


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


async def on_schedule(settings: Settings, args: argparse.Namespace) -> int:
    """Run a ``schedules`` action on the schedule ``args.schedule_id``; 1 if it failed."""
    client = await connect(settings)
    handle = client.get_schedule_handle(args.schedule_id)
    action: Action = args.action
    try:
        return await action(handle, args)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            print(
                f"schedule {handle.id!r} not found in namespace {client.namespace!r}: "
                "`schedules sync` creates the declared ones",
                file=sys.stderr,
            )
        else:
            print(f"schedule {handle.id!r}: {error.message}", file=sys.stderr)
    except TimeoutError:
        seconds = TRIGGER_TIMEOUT.total_seconds()
        print(f"schedule {handle.id!r} started no run within {seconds:g} s", file=sys.stderr)
    return 1


def _add_action(
    actions: Subcommands, name: str, action: Action, help: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help)
    parser.add_argument(
        "schedule_id", metavar="SCHEDULE_ID", help=f"such as {DAILY_REPORT} or {HOURLY_REPORT}"
    )
    parser.set_defaults(command=on_schedule, action=action)
    return parser


async def _pause(handle: ScheduleHandle, args: argparse.Namespace) -> int:
    await handle.pause(note=args.note)
    print(f"paused schedule {handle.id}: {args.note}")
    return 0


async def _unpause(handle: ScheduleHandle, args: argparse.Namespace) -> int:
    await handle.unpause(note=args.note)
    print(f"unpaused schedule {handle.id}")
    return 0


async def _trigger(handle: ScheduleHandle, args: argparse.Namespace) -> int:
    async with asyncio.timeout(TRIGGER_TIMEOUT.total_seconds()):
        workflow_id = await trigger(handle)
    if args.json:
        print(json.dumps({"schedule_id": handle.id, "workflow_id": workflow_id}))
    elif workflow_id is None:
        print(f"schedule {handle.id} skipped the run: its last run is still running")
    else:
        print(f"schedule {handle.id} started workflow {workflow_id}")
    return 0
