"""`schedules` and `start daily-report` as processes, against a dev server."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from shadow_sdk.testing import Cli, WorkerProcess
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError

SCHEDULES = ("daily-report", "hourly-report")


@pytest.fixture(autouse=True)
async def no_schedule_left(service_client: Client) -> AsyncIterator[None]:
    """Each test starts without the schedules: the session's dev server outlives it."""
    yield
    for schedule_id in SCHEDULES:
        with contextlib.suppress(RPCError):
            await service_client.get_schedule_handle(schedule_id).delete()


async def test_schedules_sync_creates_updates_or_leaves_each_schedule(
    cli: Cli, service_env: dict[str, str], service_client: Client
) -> None:
    created = await cli("schedules", "sync")
    unchanged = await cli("schedules", "sync", "--json")
    moved = {**service_env, "TEMPORAL_TASK_QUEUE": f"moved-{uuid.uuid4().hex[:8]}"}
    updated = await cli("schedules", "sync", env=moved)

    assert created[:2] == (0, "created schedule daily-report\ncreated schedule hourly-report\n")
    assert unchanged[0] == 0, unchanged
    assert json.loads(unchanged[1]) == {"daily-report": "unchanged", "hourly-report": "unchanged"}
    assert updated[0] == 0, updated
    assert updated[1] == "updated schedule daily-report\nupdated schedule hourly-report\n"
    for schedule_id in SCHEDULES:
        action = (await service_client.get_schedule_handle(schedule_id).describe()).schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.task_queue == moved["TEMPORAL_TASK_QUEUE"]


async def test_pause_and_unpause_set_the_state_and_sync_keeps_it(
    cli: Cli, service_client: Client
) -> None:
    handle = service_client.get_schedule_handle("daily-report")
    await cli("schedules", "sync")

    paused = await cli("schedules", "pause", "daily-report", "--note", "warehouse migration")
    after_pause = (await handle.describe()).schedule.state
    synced = await cli("schedules", "sync", "--json")
    after_sync = (await handle.describe()).schedule.state
    unpaused = await cli("schedules", "unpause", "daily-report")
    after_unpause = (await handle.describe()).schedule.state

    assert paused[:2] == (0, "paused schedule daily-report: warehouse migration\n")
    assert (after_pause.paused, after_pause.note) == (True, "warehouse migration")
    assert json.loads(synced[1])["daily-report"] == "unchanged"
    assert (after_sync.paused, after_sync.note) == (True, "warehouse migration")
    assert unpaused[:2] == (0, "unpaused schedule daily-report\n")
    assert (after_unpause.paused, after_unpause.note) == (False, "unpaused from the command line")


async def test_trigger_starts_a_run_now_even_while_paused(
    worker: WorkerProcess, cli: Cli, service_client: Client
) -> None:
    await cli("schedules", "sync")
    await cli("schedules", "pause", "daily-report")

    hourly = await cli("schedules", "trigger", "hourly-report", "--json")
    daily = await cli("schedules", "trigger", "daily-report")

    assert hourly[0] == 0, hourly
    hourly_run = json.loads(hourly[1])
    assert hourly_run["schedule_id"] == "hourly-report"
    assert hourly_run["workflow_id"].startswith("hourly-report-")
    hourly_report = await service_client.get_workflow_handle(hourly_run["workflow_id"]).result()
    assert hourly_report["line_count"] == 1
    assert daily[0] == 0, daily
    assert daily[1].startswith("schedule daily-report started workflow daily-report-"), daily
    daily_id = daily[1].split()[-1]
    daily_report = await service_client.get_workflow_handle(daily_id).result()
    assert daily_report["line_count"] == 24
    paused = (await service_client.get_schedule_handle("daily-report").describe()).schedule.state
    assert paused.paused


async def test_an_unknown_schedule_is_named(cli: Cli) -> None:
    code, stdout, stderr = await cli("schedules", "trigger", "no-such-schedule")

    assert code == 1
    assert stdout == ""
    assert "schedule 'no-such-schedule' not found in namespace" in stderr


async def test_start_daily_report_runs_it_by_hand(worker: WorkerProcess, cli: Cli) -> None:
    code, stdout, _ = await cli(
        "start", "daily-report", f"--report-id={uuid.uuid4().hex[:8]}", "--window-hours=2", "--json"
    )

    assert code == 0
    assert json.loads(stdout)["result"]["line_count"] == 2
