"""Task processing as a part of the service: its workflow, activities and command."""

from __future__ import annotations

from ..parts import Part
from . import cli
from .activities import notify, process_task, validate_task
from .workflow import TaskProcessingWorkflow

PART = Part(
    name="task_processing",
    workflows=[TaskProcessingWorkflow],
    activities=lambda settings: [validate_task, process_task, notify],
    start_commands=cli.add_start_command,
)
