"""The log formatters on real records: fixed fields of the process, then Temporal context."""

from __future__ import annotations

import json
import logging

from shadow_sdk.observability import JsonFormatter, TextFormatter

VERSION = {"deployment_name": "orders", "build_id": "2026-12-06.3"}
WORKFLOW = {
    "namespace": "default",
    "workflow_id": "order-42",
    "run_id": "01a214c7",
    "workflow_type": "OrderWorkflow",
    "attempt": 1,
    "task_queue": "orders",
}


def record(message: str = "charging card", **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("app", logging.INFO, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


def test_json_records_carry_the_fixed_fields_and_the_workflow_context() -> None:
    line = JsonFormatter(fields=VERSION).format(record(temporal_workflow=WORKFLOW))

    entry = json.loads(line)
    assert entry.items() >= {**VERSION, **WORKFLOW, "message": "charging card"}.items()
    assert list(entry)[:6] == ["time", "level", "logger", "message", "deployment_name", "build_id"]


def test_json_records_of_an_unversioned_process_have_no_version_fields() -> None:
    for formatter in (JsonFormatter(), JsonFormatter(fields={})):
        entry = json.loads(formatter.format(record()))
        assert set(entry) == {"time", "level", "logger", "message"}


def test_text_records_end_with_the_fixed_fields_then_the_context() -> None:
    line = TextFormatter(fields=VERSION).format(record(temporal_workflow=WORKFLOW))

    assert line.endswith(
        "app: charging card deployment_name=orders build_id=2026-12-06.3 namespace=default "
        "workflow_id=order-42 run_id=01a214c7 workflow_type=OrderWorkflow attempt=1 "
        "task_queue=orders"
    )


def test_text_records_of_an_unversioned_process_end_with_the_message() -> None:
    assert TextFormatter().format(record()).endswith(" INFO app: charging card")
