"""The long running job as a part of the service: its workflow, activity and command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..parts import Part
from ..settings import Settings
from . import cli
from .activities import JobActivities
from .services import RecordSource
from .workflow import LongRunningWorkflow


def activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    """The chunk activity, reading the in-memory data set: build a real client here."""
    return [JobActivities(RecordSource()).process_chunk]


PART = Part(
    name="long_running",
    workflows=[LongRunningWorkflow],
    activities=activities,
    start_commands=cli.add_start_command,
)
