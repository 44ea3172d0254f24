"""The rollout as a part of the service: its workflow, activities and commands."""

from __future__ import annotations

from ..parts import Part
from . import cli
from .activities import check_targets, deploy_target
from .workflow import RolloutWorkflow

PART = Part(
    name="dynamic_control",
    workflows=[RolloutWorkflow],
    activities=lambda settings: [deploy_target, check_targets],
    start_commands=cli.add_start_command,
    commands=cli.add_commands,
)
