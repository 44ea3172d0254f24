"""The task processing workflow: validate, process, notify."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from .activities import INVALID_TASK, notify, process_task, validate_task
    from .models import Notification, Task, TaskResult

RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[INVALID_TASK],
)
"""Retry transient failures with backoff for as long as each step's schedule-to-close
timeout allows; never retry a task that is invalid."""


# Pinned: a run lasts seconds, so it finishes on the code that started it.
@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class TaskProcessingWorkflow:
    """Validate a task, process it and notify its owner.

    Every activity has a start-to-close timeout (one attempt), a
    schedule-to-close timeout (all attempts) and the retry policy above: a
    crashed worker or a dependency that is down for a while delays the workflow,
    it does not lose it; a dependency down for longer than the step's
    schedule-to-close timeout fails it. An invalid task fails the workflow at
    once with ``InvalidTask``.
    """

    @workflow.run
    async def run(self, task: Task) -> TaskResult:
        """Process ``task`` and return what was found and sent."""
        await workflow.execute_activity(
            validate_task,
            task,
            start_to_close_timeout=timedelta(seconds=10),
            schedule_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY_POLICY,
        )
        processed = await workflow.execute_activity(
            process_task,
            task,
            start_to_close_timeout=timedelta(minutes=1),
            schedule_to_close_timeout=timedelta(minutes=30),
            retry_policy=RETRY_POLICY,
        )
        notification_id = await workflow.execute_activity(
            notify,
            Notification(
                recipient=task.notify,
                subject=f"Task {task.task_id} processed",
                body=f"{processed.word_count} words, sha256 {processed.sha256}",
                idempotency_key=f"{workflow.info().workflow_id}/notify",
            ),
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=RETRY_POLICY,
        )
        return TaskResult(
            task_id=task.task_id,
            word_count=processed.word_count,
            sha256=processed.sha256,
            notification_id=notification_id,
        )
