"""The service's Temporal Schedules, declared in code and synced with ``schedules sync``.

Declaring schedules here, rather than creating them by hand in the Web UI, keeps
them reviewed and versioned with the workflows they start, and lets every
environment converge on the same set: ``schedules sync`` creates the ones
missing, updates those that differ from their declaration and leaves the others
alone, however often it runs.

Two schedules start the report workflow, one per kind of spec:

* ``daily-report``, a calendar: at given times of day in a time zone, as cron
  says them. Temporal stores a cron expression as a calendar, so the calendar is
  written here directly, with the cron expression as its comment: what the server
  holds is then what this file says, and sync can tell when they differ.
* ``hourly-report``, an interval: every fixed period counted from the Unix epoch,
  shifted by an offset, whatever the time zone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from shadow_sdk import CodecError
from shadow_sdk.auth import HEADER, AuthInterceptor
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleAction,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from ..settings import Settings
from .models import ReportRequest
from .workflow import DailyReportWorkflow

DAILY_REPORT = "daily-report"
HOURLY_REPORT = "hourly-report"

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
"""What ``schedules sync`` did to a schedule."""

MANAGED_IN_CODE = "Managed in code: change schedules.py, then schedules sync"
"""The note a schedule is created with, until an operator pauses it with one of theirs."""


def schedules(settings: Settings) -> dict[str, Schedule]:
    """Every schedule of the service, by schedule id."""
    return {
        DAILY_REPORT: Schedule(
            action=ScheduleActionStartWorkflow(
                DailyReportWorkflow.run,
                ReportRequest(window_hours=24),
                # Temporal appends each run's scheduled time to this id.
                id=DAILY_REPORT,
                task_queue=settings.temporal_task_queue,
                execution_timeout=timedelta(hours=1),
            ),
            spec=ScheduleSpec(
                # Every day at 06:00:00; unset fields mean every day, month and weekday.
                calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(6)], comment="0 6 * * *")],
                time_zone_name="UTC",
                # Spreads the start over 5 minutes, so services that share a time of day
                # do not all hit their dependencies at 06:00:00.
                jitter=timedelta(minutes=5),
            ),
            policy=SchedulePolicy(
                # A report still running when the next is due is left to finish;
                # the next one is skipped rather than run twice at once.
                overlap=ScheduleOverlapPolicy.SKIP,
                # After an outage, runs missed within the last day are caught up.
                catchup_window=timedelta(days=1),
            ),
            state=ScheduleState(note=MANAGED_IN_CODE),
        ),
        HOURLY_REPORT: Schedule(
            action=ScheduleActionStartWorkflow(
                DailyReportWorkflow.run,
                ReportRequest(window_hours=1),
                id=HOURLY_REPORT,
                task_queue=settings.temporal_task_queue,
                execution_timeout=timedelta(minutes=15),
            ),
            spec=ScheduleSpec(
                # At 00:05, 01:05, 02:05 UTC...: each hour's report once its last
                # minutes of data have landed.
                intervals=[
                    ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=5))
                ],
                jitter=timedelta(minutes=1),
            ),
            policy=SchedulePolicy(
                overlap=ScheduleOverlapPolicy.SKIP,
                # An hour's report missed for longer than this is left to a backfill.
                catchup_window=timedelta(hours=6),
            ),
            state=ScheduleState(note=MANAGED_IN_CODE),
        ),
    }


async def sync_schedules(client: Client, declared: Mapping[str, Schedule]) -> dict[str, str]:
    """Make the server's schedules match ``declared`` (usually :func:`schedules`).

    A schedule that is missing is created; one whose spec, policy or action differs
    from its declaration is updated; the others are left alone. The state of a
    schedule, paused or not and its note, belongs to its operators (``schedules
    pause``) and is kept as it is, so a sync never resumes a paused schedule.
    Schedules that were removed from the declarations are not deleted.

    Returns:
        What happened to each schedule id: :data:`CREATED`, :data:`UPDATED` or
        :data:`UNCHANGED`.
    """
    return {
        schedule_id: await sync_schedule(client, schedule_id, schedule)
        for schedule_id, schedule in declared.items()
    }


async def sync_schedule(client: Client, schedule_id: str, declared: Schedule) -> str:
    """Create the schedule ``schedule_id``, or update it if it differs from ``declared``."""
    try:
        await client.create_schedule(schedule_id, declared)
    except ScheduleAlreadyRunningError:
        pass
    else:
        return CREATED
    changed = False

    async def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal changed
        stored = current.description.schedule
        changed = bool(await differences(client, declared, stored))
        if not changed:
            return None
        return ScheduleUpdate(schedule=dataclasses.replace(declared, state=stored.state))

    # The server hands the update the schedule as it is now and refuses it if the
    # schedule changed meanwhile; temporalio then calls it again.
    await client.get_schedule_handle(schedule_id).update(update)
    return UPDATED if changed else UNCHANGED


async def differences(client: Client, declared: Schedule, stored: Schedule) -> list[str]:
    """Which parts of ``declared`` the server holds otherwise: ``spec``, ``policy``, ``action``.

    The state is not compared (see :func:`sync_schedules`). The action's input and
    the token its runs carry are compared decrypted: the server holds them encrypted,
    with a new ciphertext at every write. What no key at hand decrypts (a key retired
    since) counts as changed, so the update encrypts it again with the current key.
    """
    changed = []
    if _comparable(declared.spec) != _comparable(stored.spec):
        changed.append("spec")
    if _comparable(declared.policy) != _comparable(stored.policy):
        changed.append("policy")
    if not await _same_action(client, declared.action, stored.action):
        changed.append("action")
    return changed


async def trigger(handle: ScheduleHandle) -> str | None:
    """Run the schedule's action now, even while it is paused, as its overlap policy allows.

    It waits until the schedule acted: bound the wait with :func:`asyncio.timeout`.

    Returns:
        The id of the workflow it started, or ``None`` if its overlap policy skipped
        the run because an earlier one still runs.
    """
    before = (await handle.describe()).info
    await handle.trigger()
    # The schedule acts on the trigger a moment later; the server tells of it when asked.
    while True:
        info = (await handle.describe()).info
        if info.num_actions > before.num_actions:
            started = info.recent_actions[-1].action
            if isinstance(started, ScheduleActionExecutionStartWorkflow):
                return started.workflow_id
        if info.num_actions_skipped_overlap > before.num_actions_skipped_overlap:
            return None
        await asyncio.sleep(0.2)


def _comparable(value: ScheduleSpec | SchedulePolicy) -> str:
    """A spec or a policy as text, alike whether declared here or read from the server."""
    return json.dumps(dataclasses.asdict(value), sort_keys=True, default=_plain)


def _plain(value: object) -> object:
    # The server's lists are protobuf containers; durations and times are written out.
    return list(value) if isinstance(value, Iterable) else str(value)


_COMPARED_FIELDS = (
    "workflow",
    "id",
    "task_queue",
    "execution_timeout",
    "run_timeout",
    "task_timeout",
    "retry_policy",
    "priority",
)
"""The fields of a start-workflow action that are compared as they are."""


async def _same_action(client: Client, declared: ScheduleAction, stored: ScheduleAction) -> bool:
    """Whether two actions start the same workflow with the same input, as the same caller."""
    if not (
        isinstance(declared, ScheduleActionStartWorkflow)
        and isinstance(stored, ScheduleActionStartWorkflow)
    ):
        return declared == stored
    if any(getattr(declared, name) != getattr(stored, name) for name in _COMPARED_FIELDS):
        return False
    token = _token_header(client)
    stored_token = (stored.headers or {}).get(HEADER)
    if (token is None) != (stored_token is None):
        return False
    expected = client.data_converter.payload_converter.to_payloads(declared.args)
    try:
        if await _decoded(client, stored.args) != expected:
            return False
        return stored_token is None or await _decoded(client, [stored_token]) == [token]
    except CodecError:
        return False


async def _decoded(client: Client, payloads: Sequence[Payload]) -> list[Payload]:
    """``payloads`` as the payload converter wrote them, before any encryption."""
    codec = client.data_converter.payload_codec
    return list(await codec.decode(payloads)) if codec is not None else list(payloads)


def _token_header(client: Client) -> Payload | None:
    """The token header this client gives the schedules it writes, if it sends a token.

    Scheduled runs act as whoever wrote the schedule last: a sync by another caller,
    or with a renewed token, updates the schedule so that its runs carry that token.
    """
    for interceptor in client.config(active_config=True)["interceptors"]:
        if isinstance(interceptor, AuthInterceptor):
            return interceptor.token_payload()
    return None
