"""``start rollout`` and ``control``: deploy a version step by step, and steer it while it runs."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Awaitable, Callable

from shadow_sdk import connect
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from ..commands import Subcommands, add_start_options, root_cause, start_and_report
from ..settings import Settings
from .models import Rollout, RolloutReport, RolloutState
from .workflow import RolloutWorkflow, rollout_problems

RolloutHandle = WorkflowHandle[RolloutWorkflow, RolloutReport]
Action = Callable[[RolloutHandle, argparse.Namespace], Awaitable[int]]
"""What a ``control`` subcommand does to the rollout: exit status out."""


def add_start_command(start: Subcommands) -> None:
    """Add ``start rollout TARGET... --version VERSION [--interval SECONDS] [...]``."""
    parser = start.add_parser("rollout", help="deploy a version to targets, one step at a time")
    parser.add_argument("targets", nargs="+", metavar="TARGET", help="where to deploy, in order")
    parser.add_argument("--version", required=True, help="the version to deploy")
    parser.add_argument(
        "--interval", type=float, default=30.0, help="seconds between two steps (default: 30)"
    )
    parser.add_argument(
        "--rollout-id",
        default=uuid.uuid4().hex[:12],
        help="business id; the workflow id is rollout-<rollout id> (default: random)",
    )
    add_start_options(parser)
    parser.set_defaults(command=start_rollout)


def add_commands(commands: Subcommands) -> None:
    """Add ``control pause|resume|cancel|status|add-targets WORKFLOW_ID``."""
    control = commands.add_parser("control", help="steer a running rollout")
    actions = control.add_subparsers(required=True, metavar="ACTION")
    _add_action(actions, "pause", _pause, "hold the rollout before its next step")
    _add_action(actions, "resume", _resume, "let a paused rollout go on")
    _add_action(actions, "cancel", _cancel, "stop after the step in progress").add_argument(
        "--reason", default="cancelled from the command line", help="why, for the report"
    )
    _add_action(actions, "status", _status, "show where the rollout stands").add_argument(
        "--json", action="store_true", help="print one JSON object, not text"
    )
    _add_action(actions, "add-targets", _add_targets, "add targets at the end").add_argument(
        "targets", nargs="+", metavar="TARGET", help="the targets to add, in order"
    )


async def start_rollout(settings: Settings, args: argparse.Namespace) -> int:
    """Start a rollout and, unless --no-wait, report its result."""
    rollout = Rollout(version=args.version, targets=args.targets, interval_seconds=args.interval)
    if problems := rollout_problems(rollout):
        print(f"invalid rollout: {'; '.join(problems)}", file=sys.stderr)
        return 2
    return await start_and_report(
        settings, args, RolloutWorkflow.run, rollout, f"rollout-{args.rollout_id}"
    )


async def control(settings: Settings, args: argparse.Namespace) -> int:
    """Run a ``control`` action on the rollout ``args.workflow_id``; 1 if it refused."""
    client = await connect(settings)
    handle = client.get_workflow_handle_for(RolloutWorkflow.run, args.workflow_id)
    action: Action = args.action
    try:
        return await action(handle, args)
    except RPCError as error:
        # No such workflow, or it has closed.
        print(f"{handle.id}: {error.message}", file=sys.stderr)
    except WorkflowQueryFailedError as error:
        print(f"{handle.id}: query failed: {error.message}", file=sys.stderr)
    except WorkflowUpdateFailedError as error:
        print(f"{handle.id}: targets not added: {root_cause(error)}", file=sys.stderr)
    return 1


def describe(state: RolloutState) -> str:
    """The rollout's state in one line, for people."""
    text = f"{state.status}, {state.step} of {state.steps} steps done"
    if state.current is not None:
        text += f", deploying {state.current}"
    if state.next_step_at is not None:
        text += f", next step at {state.next_step_at.isoformat(timespec='seconds')}"
    return text


def _add_action(
    actions: Subcommands, name: str, action: Action, help: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help)
    parser.add_argument("workflow_id", metavar="WORKFLOW_ID", help="rollout-<rollout id>")
    parser.set_defaults(command=control, action=action)
    return parser


# Signals are only delivered: the rollout acts on them in its next workflow task,
# which `control status` shows.
async def _pause(handle: RolloutHandle, args: argparse.Namespace) -> int:
    await handle.signal(RolloutWorkflow.pause)
    print(f"{handle.id}: pause sent; the rollout holds before its next step")
    return 0


async def _resume(handle: RolloutHandle, args: argparse.Namespace) -> int:
    await handle.signal(RolloutWorkflow.resume)
    print(f"{handle.id}: resume sent")
    return 0


async def _cancel(handle: RolloutHandle, args: argparse.Namespace) -> int:
    await handle.signal(RolloutWorkflow.cancel, args.reason)
    print(f"{handle.id}: cancel sent; the rollout stops after the step in progress")
    return 0


async def _status(handle: RolloutHandle, args: argparse.Namespace) -> int:
    state = await handle.query(RolloutWorkflow.state)
    print(state.model_dump_json() if args.json else f"{handle.id}: {describe(state)}")
    return 0


async def _add_targets(handle: RolloutHandle, args: argparse.Namespace) -> int:
    state = await handle.execute_update(RolloutWorkflow.add_targets, args.targets)
    print(f"{handle.id}: added {', '.join(args.targets)}; {describe(state)}")
    return 0
