"""The report workflow, which Temporal Schedules start (see ``schedules.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey, VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.resilience import QUICK

    from .activities import compile_report
    from .models import Period, Report, ReportRequest

INVALID_REPORT = "InvalidReport"

SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
"""Set by Temporal on runs a schedule starts: the time the run was due, before jitter."""


# Pinned: each run covers one period and ends; the next starts on the current code.
@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class DailyReportWorkflow:
    """Compile the report of the period that ends when the run was due.

    A run started by the schedule covers the hours up to its scheduled time, not
    up to when it happened to start: a run delayed by jitter, by a busy worker
    or by catch-up after an outage reports the same period it would have on
    time. A run started by hand covers the hours up to its start.
    """

    @workflow.run
    async def run(self, request: ReportRequest) -> Report:
        """Compile and return the report of the period ``request`` describes."""
        if request.window_hours < 1:
            raise ApplicationError(
                f"window_hours must be at least 1, not {request.window_hours}",
                type=INVALID_REPORT,
                non_retryable=True,
            )
        end = self.due_time()
        period = Period(start=end - timedelta(hours=request.window_hours), end=end)
        return await workflow.execute_activity(compile_report, period, **QUICK)

    @staticmethod
    def due_time() -> datetime:
        """When this run was due: its scheduled time, or now when started by hand."""
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
        return scheduled if scheduled is not None else workflow.now()
