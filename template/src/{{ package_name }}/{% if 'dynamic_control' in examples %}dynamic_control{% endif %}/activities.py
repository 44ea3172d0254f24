"""Activities of the rollout workflow: the deployment system's side of each step.

This example logs what a real service would ask its deployment system or
inventory to do. Temporal retries each activity, so each must be safe to run
more than once: deploying a version a target already runs changes nothing.
"""

from __future__ import annotations

from temporalio import activity

from .models import Deployment


@activity.defn
async def deploy_target(deployment: Deployment) -> None:
    """Deploy the version to the target and return once the target runs it."""
    activity.logger.info("deploying %s to %s", deployment.version, deployment.target)


@activity.defn
async def check_targets(targets: list[str]) -> None:
    """Make sure new targets exist and answer before they join a running rollout.

    Raise a non-retryable ``ApplicationError`` for a target that does not exist:
    the update that adds it then fails with the reason, and the rollout goes on.
    """
    activity.logger.info("checking %s", ", ".join(targets))
