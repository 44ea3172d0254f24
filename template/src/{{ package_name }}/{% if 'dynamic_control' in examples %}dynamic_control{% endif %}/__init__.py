"""Dynamic control: a rollout paused, resumed, cancelled, queried and extended while it runs."""

from .activities import check_targets, deploy_target
from .models import Deployment, Rollout, RolloutReport, RolloutState, RolloutStatus
from .workflow import (
    INVALID_INPUT,
    MAX_TARGETS,
    RolloutWorkflow,
    rollout_problems,
    target_problems,
)

__all__ = [
    "INVALID_INPUT",
    "MAX_TARGETS",
    "Deployment",
    "Rollout",
    "RolloutReport",
    "RolloutState",
    "RolloutStatus",
    "RolloutWorkflow",
    "check_targets",
    "deploy_target",
    "rollout_problems",
    "target_problems",
]
