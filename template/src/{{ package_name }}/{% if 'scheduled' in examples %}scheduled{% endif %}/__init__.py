"""Scheduled: reports started by Temporal Schedules declared in code, daily and hourly."""

from .activities import compile_report
from .models import Period, Report, ReportRequest
from .workflow import INVALID_REPORT, SCHEDULED_START_TIME, DailyReportWorkflow

__all__ = [
    "INVALID_REPORT",
    "SCHEDULED_START_TIME",
    "DailyReportWorkflow",
    "Period",
    "Report",
    "ReportRequest",
    "compile_report",
]
