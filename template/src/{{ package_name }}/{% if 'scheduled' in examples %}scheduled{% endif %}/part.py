"""The report as a part of the service: its workflow, activity and commands."""

from __future__ import annotations

from ..parts import Part
from . import cli
from .activities import compile_report
from .workflow import DailyReportWorkflow

PART = Part(
    name="scheduled",
    workflows=[DailyReportWorkflow],
    activities=lambda settings: [compile_report],
    start_commands=cli.add_start_command,
    commands=cli.add_commands,
)
