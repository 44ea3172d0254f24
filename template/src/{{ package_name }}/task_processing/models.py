"""Inputs and outputs of the task processing workflow and its activities."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Task(BaseModel):
    """A document to process, and who to tell when it is done."""

    task_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
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
