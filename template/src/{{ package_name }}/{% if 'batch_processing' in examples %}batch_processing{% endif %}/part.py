"""Batch processing as a part of the service: its workflow, activity and command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..parts import Part
from ..settings import Settings
from . import cli
from .activities import BatchActivities
from .services import SearchIndex
from .workflow import BatchProcessingWorkflow


def activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    """The indexing activity, with the in-memory search index: build a real client here."""
    return [BatchActivities(SearchIndex()).index_document]


PART = Part(
    name="batch_processing",
    workflows=[BatchProcessingWorkflow],
    activities=activities,
    start_commands=cli.add_start_command,
)
