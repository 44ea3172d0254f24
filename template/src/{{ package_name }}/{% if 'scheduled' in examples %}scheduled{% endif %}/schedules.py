"""The service's Temporal Schedules, declared in code and synced with ``schedules sync``.

Declaring schedules here, rather than creating them by hand in the Web UI, keeps
them reviewed and versioned with the workflows they start, and lets every
environment converge on the same set: ``schedules sync`` creates the ones
missing and updates the others to match, however often it runs.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from ..settings import Settings
from .models import ReportRequest
from .workflow import DailyReportWorkflow

DAILY_REPORT = "daily-report"


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
                cron_expressions=["0 6 * * *"],
                time_zone_name="UTC",
                # Spreads the start over 5 minutes, so services that share a cron
                # expression do not all hit their dependencies at 06:00:00.
                jitter=timedelta(minutes=5),
            ),
            policy=SchedulePolicy(
                # A report still running when the next is due is left to finish;
                # the next one is skipped rather than run twice at once.
                overlap=ScheduleOverlapPolicy.SKIP,
                # After an outage, runs missed within the last day are caught up.
                catchup_window=timedelta(days=1),
            ),
            state=ScheduleState(note="Managed in code: change schedules.py, then schedules sync"),
        ),
    }


async def sync_schedules(client: Client, settings: Settings) -> dict[str, str]:
    """Create or update every schedule to match :func:`schedules`.

    Returns:
        What happened to each schedule id: ``"created"`` or ``"updated"``.
    """
    outcomes: dict[str, str] = {}
    for schedule_id, schedule in schedules(settings).items():
        try:
            await client.create_schedule(schedule_id, schedule)
            outcomes[schedule_id] = "created"
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput, schedule: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await client.get_schedule_handle(schedule_id).update(replace)
            outcomes[schedule_id] = "updated"
    return outcomes
