"""Activities of the task processing workflow.

Activities are where side effects belong: reading and writing other systems.
Each one is retried by Temporal according to the workflow's retry policy, so
each one must be safe to run more than once.
"""

from __future__ import annotations

import hashlib
import re

from temporalio import activity
from temporalio.exceptions import ApplicationError

from .models import Notification, ProcessedTask, Task

INVALID_TASK = "InvalidTask"
"""Error type of a task that can never succeed; the retry policy does not retry it."""

MAX_TEXT_BYTES = 256 * 1024
"""Largest document accepted, in UTF-8 bytes.

Temporal refuses payloads over 2 MiB and warns above 512 KiB, and the text is
stored in the workflow's history with each activity that receives it; larger
documents belong in object storage, passed to the workflow by reference.
"""

_TASK_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@activity.defn
async def validate_task(task: Task) -> None:
    """Refuse a task that no retry could fix.

    Raises:
        ApplicationError: of type ``InvalidTask``, non-retryable, naming every problem.
    """
    problems = []
    if not _TASK_ID.match(task.task_id):
        problems.append(
            f"task id {task.task_id!r} is not 1 to 100 letters, digits, dots, dashes or underscores"
        )
    if not task.text.strip():
        problems.append("text is empty")
    size = len(task.text.encode())
    if size > MAX_TEXT_BYTES:
        problems.append(f"text is {size} bytes, more than {MAX_TEXT_BYTES}")
    if "@" not in task.notify:
        problems.append(f"notify address {task.notify!r} is not an email address")
    if problems:
        raise ApplicationError(
            f"task {task.task_id} is invalid: {'; '.join(problems)}",
            type=INVALID_TASK,
            non_retryable=True,
        )


@activity.defn
async def process_task(task: Task) -> ProcessedTask:
    """Count the document's words and fingerprint it."""
    return ProcessedTask(
        word_count=len(task.text.split()),
        sha256=hashlib.sha256(task.text.encode()).hexdigest(),
    )


@activity.defn
async def notify(notification: Notification) -> str:
    """Send the notification and return its id.

    This example logs the message; a real service calls its mail or chat API
    here, passing ``idempotency_key`` so that a retried activity sends one
    message, not two.
    """
    activity.logger.info("notifying %s: %s", notification.recipient, notification.subject)
    return notification.idempotency_key
