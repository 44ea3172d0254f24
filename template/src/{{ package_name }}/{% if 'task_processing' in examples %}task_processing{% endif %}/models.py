"""Inputs and outputs of the task processing workflow and its activities.

The models hold shapes, not rules. A payload that fails pydantic validation while
a worker decodes it fails the workflow *task*, which Temporal retries until the
code changes; a task that breaks a business rule must instead fail the *workflow*,
cleanly and once. The rules therefore live in the ``validate_task`` activity.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Task(BaseModel):
    """A document to process, and who to tell when it is done."""

    task_id: str = Field(description="Business id; the workflow id is derived from it")
    text: str
    notify: str = Field(description="Address that receives the summary")


class ProcessedTask(BaseModel):
    """What processing found out about the document."""

    word_count: int
    sha256: str


class Notification(BaseModel):
    """A message to the task's owner."""

    recipient: str
    subject: str
    body: str
    idempotency_key: str = Field(description="Same key, same message: retries send it once")


class TaskResult(BaseModel):
    """The workflow's result."""

    task_id: str
    word_count: int
    sha256: str
    notification_id: str
