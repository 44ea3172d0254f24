"""Inputs, state and result of the rollout workflow, and the input of its activities.

As in the other examples, the models hold shapes, not rules: a payload that fails
pydantic validation while a worker decodes it fails the workflow *task*, which
Temporal retries until the code changes. The rules live in the workflow, which
checks the rollout when it starts and new targets before it accepts them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

RolloutStatus = Literal["running", "paused", "cancelling", "completed", "cancelled"]
"""Where a rollout is: ``cancelling`` finishes the step in progress, then stops."""


class Rollout(BaseModel):
    """A version to deploy to targets, one step per target, in order."""

    version: str
    targets: list[str] = Field(description="Where to deploy, one step each, in order")
    interval_seconds: float = Field(
        default=30.0, description="Wait between steps, to watch each one before the next"
    )


class Deployment(BaseModel):
    """One step: a version to deploy to a target."""

    target: str
    version: str


class RolloutState(BaseModel):
    """Where a running rollout stands: the answer of the ``state`` query."""

    status: RolloutStatus
    paused: bool
    step: int = Field(description="Steps finished")
    steps: int = Field(description="Steps in the rollout, targets added while it runs included")
    current: str | None = Field(description="The target being deployed now, if any")
    next_step_at: datetime | None = Field(
        description="When the wait after the last step ends, while it lasts"
    )


class RolloutReport(BaseModel):
    """The workflow's result: what was deployed, and what a cancel skipped."""

    version: str
    status: Literal["completed", "cancelled"]
    deployed: list[str]
    skipped: list[str]
    reason: str | None = Field(default=None, description="Why it was cancelled")
