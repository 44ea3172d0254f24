"""Inputs and outputs of the daily report workflow."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ReportRequest(BaseModel):
    """Which period a report covers: the ``window_hours`` up to the run's scheduled time."""

    window_hours: int = Field(default=24, description="Length of the period, in hours")


class Period(BaseModel):
    """A half-open time range [start, end) in UTC."""

    start: datetime
    end: datetime


class Report(BaseModel):
    """A compiled report: its period and what it found."""

    period: Period
    title: str
    line_count: int
