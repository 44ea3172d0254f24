"""`schedules sync` and `start daily-report` as processes, against a dev server."""

from __future__ import annotations

import json
import uuid

from shadow_sdk.testing import Cli, WorkerProcess


async def test_schedules_sync_creates_then_leaves_alone(cli: Cli) -> None:
    first = await cli("schedules", "sync")
    again = await cli("schedules", "sync", "--json")

    assert first[0] == 0, first
    assert first[1] == "created schedule daily-report\ncreated schedule hourly-report\n"
    assert again[0] == 0, again
    assert json.loads(again[1]) == {"daily-report": "unchanged", "hourly-report": "unchanged"}


async def test_start_daily_report_runs_it_by_hand(worker: WorkerProcess, cli: Cli) -> None:
    code, stdout, _ = await cli(
        "start", "daily-report", f"--report-id={uuid.uuid4().hex[:8]}", "--window-hours=2", "--json"
    )

    assert code == 0
    assert json.loads(stdout)["result"]["line_count"] == 2
