"""The daily report's activity: compile the report of a period.

A stand-in for a query against your own systems. It depends only on the
period, never on the time it runs, so a retried or late attempt compiles the
same report.
"""

from __future__ import annotations

from temporalio import activity

from .models import Period, Report


@activity.defn
async def compile_report(period: Period) -> Report:
    """Compile the report of ``period``."""
    hours = int((period.end - period.start).total_seconds() // 3600)
    activity.logger.info("compiling the report of %s to %s", period.start, period.end)
    return Report(
        period=period,
        title=f"Report of {period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC",
        line_count=hours,
    )
