"""Logging for worker processes: text or JSON, with the Temporal context of each record."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import temporalio.activity
import temporalio.workflow

# What temporalio's workflow.logger and activity.logger attach to each record.
_CONTEXT = {
    "temporal_workflow": (
        "namespace",
        "workflow_id",
        "run_id",
        "workflow_type",
        "attempt",
        "task_queue",
    ),
    "temporal_activity": (
        "namespace",
        "workflow_id",
        "workflow_run_id",
        "workflow_type",
        "activity_id",
        "activity_type",
        "attempt",
        "task_queue",
    ),
}
_RENAMED = {"workflow_run_id": "run_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, Temporal context, exception.

    Records from ``temporalio.workflow.logger`` and ``temporalio.activity.logger``
    carry their workflow and activity as structured fields (``workflow_id``,
    ``run_id``, ``workflow_type``, ``activity_type``, ``attempt``, ...), so that
    logs can be searched by them without parsing messages.
    """

    def format(self, record: logging.LogRecord) -> str:
        """See base class."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context_of(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Time, level, logger and message, then the Temporal context as ``key=value`` pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """See base class."""
        text = super().format(record)
        context = context_of(record)
        if context:
            text += " " + " ".join(f"{key}={value}" for key, value in context.items())
        return text


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The workflow and activity fields temporalio's loggers attached to ``record``."""
    context: dict[str, Any] = {}
    for attribute, keys in _CONTEXT.items():
        details = getattr(record, attribute, None)
        if isinstance(details, dict):
            for key in keys:
                if key in details:
                    context[_RENAMED.get(key, key)] = details[key]
    return context


def configure_logging(*, level: str = "INFO", format: Literal["text", "json"] = "text") -> None:
    """Send all logs to standard error, formatted as text or JSON.

    Replaces the root logger's handlers, so call it once at process start.
    temporalio's loggers then stop appending the context dict to messages,
    since the formatter shows it as fields.

    Args:
        level: Level of the root logger, such as ``INFO``.
        format: ``text`` for people, ``json`` for log pipelines.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    temporalio.workflow.logger.workflow_info_on_message = False
    temporalio.activity.logger.activity_info_on_message = False
