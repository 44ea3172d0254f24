"""Worker settings: the ``WORKER_*`` variables, slots, polls, rates and shutdown."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator

from shadow_sdk._settings._types import Seconds, SettingsPart

SHUTDOWN_MARGIN = timedelta(seconds=10)
"""What the shutdown cap adds to the graceful timeout when WORKER_SHUTDOWN_TIMEOUT is unset."""


class WorkerSettings(SettingsPart):
    """How a worker polls, how much it runs at once, and how it shuts down."""

    worker_max_concurrent_activities: PositiveInt | None = None
    """Activity slots of this worker; unset keeps the Temporal SDK's default."""
    worker_max_concurrent_workflow_tasks: Annotated[int, Field(ge=2)] | None = None
    """Workflow task slots of this worker; unset keeps the SDK's default."""
    worker_max_cached_workflows: Annotated[int, Field(ge=0)] | None = None
    """Workflows kept in the sticky cache; unset keeps the SDK's default."""
    worker_graceful_shutdown_timeout: Seconds = timedelta(seconds=25)
    """How long in-flight activities may run on after shutdown starts.

    25 s fits inside Kubernetes' default ``terminationGracePeriodSeconds`` of 30,
    leaving the process time to exit before it is killed.
    """

    worker_shutdown_timeout: Seconds | None = None
    """Hard cap on the whole shutdown; past it the process exits 1. Unset: the graceful
    timeout plus 10 s."""
    worker_tuner: Literal["fixed", "resource-based"] = "fixed"
    """``fixed`` slot counts, or Temporal's resource-based tuner that adds slots while
    memory and CPU stay under their targets."""
    worker_target_memory_usage: Annotated[float, Field(gt=0, le=1)] = 0.8
    """Memory use (0-1) the resource-based tuner aims for."""
    worker_target_cpu_usage: Annotated[float, Field(gt=0, le=1)] = 0.9
    """CPU use (0-1) the resource-based tuner aims for."""
    worker_workflow_task_pollers: PositiveInt | None = None
    """Most concurrent workflow task polls; unset keeps the SDK's default."""
    worker_activity_task_pollers: PositiveInt | None = None
    """Most concurrent activity task polls; unset keeps the SDK's default."""
    worker_poller_autoscaling: bool = False
    """Scale polls with load, up to the maxima above (or 100)."""
    worker_max_activities_per_second: Annotated[float, Field(gt=0)] | None = None
    """Activities this worker starts per second at most."""
    worker_max_task_queue_activities_per_second: Annotated[float, Field(gt=0)] | None = None
    """Activities all workers of the task queue start per second at most (set on the server)."""
    worker_connect_timeout: Seconds = timedelta(seconds=10)
    """How long one attempt to reach Temporal at start-up may take; attempts repeat, with
    backoff, until one succeeds."""
    worker_poll_failure_grace: Seconds = timedelta(seconds=30)
    """How long a worker's polls may fail before ``/ready`` answers 503; 0: at once."""

    @field_validator("worker_graceful_shutdown_timeout", "worker_connect_timeout")
    @classmethod
    def _check_positive(cls, duration: timedelta) -> timedelta:
        if duration <= timedelta(0):
            raise ValueError("must be more than 0 seconds")
        return duration

    @field_validator("worker_poll_failure_grace")
    @classmethod
    def _check_not_negative(cls, duration: timedelta) -> timedelta:
        if duration < timedelta(0):
            raise ValueError("must not be negative")
        return duration

    def _problems(self) -> list[str]:
        problems = []
        cap = self.worker_shutdown_timeout
        if cap is not None and cap <= self.worker_graceful_shutdown_timeout:
            problems.append(
                "WORKER_SHUTDOWN_TIMEOUT: must be longer than WORKER_GRACEFUL_SHUTDOWN_TIMEOUT "
                f"({self.worker_graceful_shutdown_timeout.total_seconds():g} s), "
                "which it caps"
            )
        if (
            self.worker_workflow_task_pollers == 1
            and not self.worker_poller_autoscaling
            and self.worker_max_cached_workflows != 0
        ):
            problems.append(
                "WORKER_WORKFLOW_TASK_POLLERS=1: a worker that caches workflows polls its "
                "sticky queue too and needs at least 2; set 2 or more, or "
                "WORKER_MAX_CACHED_WORKFLOWS=0"
            )
        if self.worker_tuner == "resource-based":
            problems += [
                f"WORKER_TUNER=resource-based and {name.upper()} are both set; "
                "the tuner decides the slots"
                for name in (
                    "worker_max_concurrent_activities",
                    "worker_max_concurrent_workflow_tasks",
                )
                if getattr(self, name) is not None
            ]
        return [*super()._problems(), *problems]

    def shutdown_cap(self) -> timedelta:
        """The hard cap on a worker's whole shutdown, past which the process exits 1.

        ``WORKER_SHUTDOWN_TIMEOUT``, or the graceful timeout plus 10 s. Size Kubernetes'
        ``terminationGracePeriodSeconds`` above it.
        """
        return self.worker_shutdown_timeout or (
            self.worker_graceful_shutdown_timeout + SHUTDOWN_MARGIN
        )
