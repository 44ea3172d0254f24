"""Logging for worker processes: text or JSON, with the Temporal context of each record."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
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

    Args:
        fields: Fixed fields of the process, added to every record after the message:
            the Worker Deployment Version (``deployment_name``, ``build_id``), so
            that a log search tells the versions of a rollout apart. A record's own
            Temporal context never overrides them, nor they it: the names differ.
    """

    def __init__(self, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.fields: dict[str, str] = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        """See base class."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.fields,
        }
        entry.update(context_of(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Time, level, logger and message, then fixed fields and Temporal context as ``key=value``.

    Args:
        fields: Fixed fields of the process, shown on every record before its
            Temporal context, as :class:`JsonFormatter` adds them.
    """

    def __init__(self, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.fields: dict[str, str] = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        """See base class."""
        text = super().format(record)
        pairs = {**self.fields, **context_of(record)}
        if pairs:
            text += " " + " ".join(f"{key}={value}" for key, value in pairs.items())
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


def configure_logging(
    *,
    level: str = "INFO",
    format: Literal["text", "json"] = "text",
    fields: Mapping[str, str] | None = None,
) -> None:
    """Send all logs to standard error, formatted as text or JSON.

    Replaces the root logger's handlers, so call it once at process start.
    temporalio's loggers then stop appending the context dict to messages,
    since the formatter shows it as fields.

    Args:
        level: Level of the root logger, such as ``INFO``.
        format: ``text`` for people, ``json`` for log pipelines.
        fields: Fixed fields added to every record, such as the process's Worker
            Deployment Version; none by default.
    """
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(fields=fields) if format == "json" else TextFormatter(fields=fields)
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    temporalio.workflow.logger.workflow_info_on_message = False
    temporalio.activity.logger.activity_info_on_message = False
