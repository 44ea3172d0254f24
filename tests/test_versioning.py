"""Worker Deployment Versioning on a real dev server: a rollout from v1 to v2, step by step."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import temporalio.service
from helpers.versioned_workflows import JobV1, JobV2, OrderV1, OrderV2, Undeclared
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.client import Client, WorkflowHandle

from shadow_sdk import (
    DeploymentStatus,
    SettingsError,
    ShadowPlugin,
    ShadowSettings,
    ShadowWorker,
    VersionStatus,
    WorkerDeployment,
)
from shadow_sdk.testing import DevServer, run_command

pytestmark = pytest.mark.slow

T = TypeVar("T")

# The server looks at a draining version's open workflows every few minutes by default.
QUICK_DRAINAGE = [
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
]  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(arguments=["--headless", *QUICK_DRAINAGE]) as server:
        yield server


@pytest.fixture
async def client(server: DevServer) -> Client:
    """A client as services connect it: its ShadowPlugin configures the workers too."""
    return await Client.connect(server.address, plugins=[ShadowPlugin()])


@pytest.fixture
def deployment_name() -> str:
    return f"orders-{uuid.uuid4().hex[:8]}"


def versioned(task_queue: str, deployment_name: str, build_id: str, **more: Any) -> ShadowSettings:
    return ShadowSettings(
        temporal_task_queue=task_queue,
        temporal_deployment_name=deployment_name,
        temporal_worker_build_id=build_id,
        metrics_port=None,
        **more,
    )


@contextlib.asynccontextmanager
async def worker(
    client: Client, settings: ShadowSettings, workflows: list[type]
) -> AsyncIterator[ShadowWorker]:
    async with ShadowWorker(client, settings, workflows=workflows) as running:
        yield running


async def eventually(attempt: Callable[[], Awaitable[T]], within: float = 30) -> T:
    """``attempt()``'s answer once it stops failing: a version exists once its workers poll."""
    async with asyncio.timeout(within):
        while True:
            with contextlib.suppress(temporalio.service.RPCError):
                return await attempt()
            await asyncio.sleep(0.2)


async def until(check: Callable[[], Awaitable[bool]], within: float = 60) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.5)


async def routed(rollout: WorkerDeployment) -> None:
    async with asyncio.timeout(60):
        await rollout.wait_until_routed()


def running_on(handle: WorkflowHandle[Any, str], build_id: str) -> Callable[[], Awaitable[bool]]:
    """Whether the run's first task completed on ``build_id``: only then is it that version's."""

    async def check() -> bool:
        described = await handle.describe()
        versioning = described.raw_description.workflow_execution_info.versioning_info
        return bool(versioning.deployment_version.build_id == build_id)

    return check


def draining(rollout: WorkerDeployment, build_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await rollout.describe()).version(build_id).status is VersionStatus.DRAINING

    return check


async def start(client: Client, workflow: str, task_queue: str) -> WorkflowHandle[Any, str]:
    return await client.start_workflow(
        workflow, id=f"{workflow}-{uuid.uuid4()}", task_queue=task_queue, result_type=str
    )


async def finish(handles: list[WorkflowHandle[Any, str]]) -> list[str]:
    for handle in handles:
        await handle.signal("proceed")
    async with asyncio.timeout(60):
        return list(await asyncio.gather(*(handle.result() for handle in handles)))


async def test_a_rollout_keeps_pinned_runs_on_their_version_and_moves_the_others(
    client: Client, task_queue: str, deployment_name: str
) -> None:
    """v2 current: new runs and auto-upgrading ones run v2; a pinned run finishes on v1."""
    rollout = WorkerDeployment(client, deployment_name)
    v1 = versioned(task_queue, deployment_name, "v1")
    v2 = versioned(task_queue, deployment_name, "v2")
    async with worker(client, v1, [OrderV1, JobV1]):
        await eventually(lambda: rollout.set_current("v1"))
        pinned = await start(client, "Order", task_queue)
        upgrading = await start(client, "Job", task_queue)
        await until(running_on(pinned, "v1"))
        await until(running_on(upgrading, "v1"))
        async with worker(client, v2, [OrderV2, JobV2]):
            await eventually(lambda: rollout.set_current("v2"))
            await routed(rollout)
            new = await start(client, "Order", task_queue)
            await until(draining(rollout, "v1"))  # Its pinned run is still open.
            results = await finish([pinned, upgrading, new])
            await until(lambda: rollout.drained("v1"))  # Its workers may go now.
            status = await rollout.describe()

    assert results == ["v1", "v2", "v2"]
    assert status.current_build_id == "v2"
    assert status.version("v1").status is VersionStatus.DRAINED
    assert status.version("v2").status is VersionStatus.CURRENT


async def test_an_unversioned_worker_runs_workflows_that_declare_a_behavior(
    client: Client, task_queue: str
) -> None:
    """Local work: the server refuses a behavior from an unversioned worker, so none is sent.

    temporalio would report the declared behavior with every workflow task, and each
    completion would be refused, leaving the runs stuck.
    """
    unversioned = ShadowSettings(temporal_task_queue=task_queue, metrics_port=None)
    async with worker(client, unversioned, [OrderV1, JobV1]):
        handles = [await start(client, name, task_queue) for name in ("Order", "Job")]
        results = await finish(handles)
        described = [await handle.describe() for handle in handles]

    assert results == ["v1", "v1"]
    assert [run.raw_description.workflow_execution_info.versioning_info.behavior
            for run in described] == [VersioningBehavior.VERSIONING_BEHAVIOR_UNSPECIFIED] * 2  # fmt: skip


async def test_a_ramp_sends_its_share_of_new_runs_to_the_new_version(
    client: Client, task_queue: str, deployment_name: str
) -> None:
    """30 % ramping to v2: of 60 new runs, roughly that share runs v2, the rest v1."""
    rollout = WorkerDeployment(client, deployment_name)
    async with (
        worker(client, versioned(task_queue, deployment_name, "v1"), [OrderV1]),
        worker(client, versioned(task_queue, deployment_name, "v2"), [OrderV2]),
    ):
        await eventually(lambda: rollout.set_current("v1"))
        await eventually(lambda: rollout.set_ramping("v2", 30))
        await routed(rollout)
        status: DeploymentStatus = await rollout.describe()
        handles = [await start(client, "Order", task_queue) for _ in range(60)]
        results = await finish(handles)

    assert (status.ramping_build_id, status.ramping_percentage) == ("v2", 30)
    assert results.count("v1") + results.count("v2") == 60
    assert 6 <= results.count("v2") <= 36, results.count("v2")  # Routing hashes the ids.


async def test_a_ramp_beyond_100_is_refused(client: Client, deployment_name: str) -> None:
    with pytest.raises(ValueError, match="percentage=101: must be between 0 and 100"):
        await WorkerDeployment(client, deployment_name).set_ramping("v2", 101)


async def test_a_workflow_without_a_behavior_is_refused_when_there_is_no_default(
    client: Client, task_queue: str, deployment_name: str
) -> None:
    """WORKER_DEFAULT_VERSIONING_BEHAVIOR=none: every workflow must declare its own."""
    settings = versioned(
        task_queue, deployment_name, "v1", worker_default_versioning_behavior="none"
    )

    with pytest.raises(SettingsError, match="WORKER_DEFAULT_VERSIONING_BEHAVIOR=none") as info:
        ShadowWorker(client, settings, workflows=[Undeclared])

    assert "Workflow Undeclared must specify a versioning behavior" in str(info.value)


async def test_the_default_behavior_pins_a_workflow_that_declares_none(
    client: Client, task_queue: str, deployment_name: str
) -> None:
    """Pinned by default: a run of an undeclared workflow stays on the version it began on."""
    rollout = WorkerDeployment(client, deployment_name)
    async with worker(client, versioned(task_queue, deployment_name, "v1"), [Undeclared]):
        await eventually(lambda: rollout.set_current("v1"))
        handle = await start(client, "Undeclared", task_queue)
        result = await handle.result()
        described = await handle.describe()

    versioning = described.raw_description.workflow_execution_info.versioning_info
    assert result == "no behavior"
    assert versioning.deployment_version.build_id == "v1"
    assert versioning.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED


async def shadow(server: DevServer, *args: str) -> tuple[int, str, str]:
    """The ``shadow`` command line as a process, connected to ``server`` by its environment."""
    command = [sys.executable, "-c", "from shadow_sdk._cli import main; main()", *args]
    env = {**os.environ, "TEMPORAL_ADDRESS": server.address}
    async with asyncio.timeout(60):
        return await run_command(command, env=env)


async def test_the_command_line_rolls_a_deployment_out(
    server: DevServer, client: Client, task_queue: str, deployment_name: str
) -> None:
    """`shadow deployment`: set-current, ramp, describe, drained; a wrong name is refused."""
    async with (
        worker(client, versioned(task_queue, deployment_name, "v1"), [OrderV1]),
        worker(client, versioned(task_queue, deployment_name, "v2"), [OrderV2]),
    ):
        await eventually(lambda: WorkerDeployment(client, deployment_name).describe())
        current = await shadow(server, "deployment", "set-current", deployment_name, "v1")
        ramp = await shadow(server, "deployment", "ramp", deployment_name, "v2", "25")
        described = await shadow(server, "deployment", "describe", deployment_name)
        drained = await shadow(server, "deployment", "drained", deployment_name, "v2")
    unknown = await shadow(server, "deployment", "set-current", deployment_name, "v9")

    assert current == (0, f"{deployment_name}: new workflows now run v1\n", "")
    assert ramp == (0, f"{deployment_name}: 25 % of new workflows now run v2\n", "")
    assert described[0] == 0, described
    assert f"{deployment_name}: current v1, 25 % ramping to v2\n" in described[1]
    assert "  v2  ramping\n" in described[1]
    assert drained == (1, f"{deployment_name} v2: not drained\n", "")
    assert unknown[0] == 1
    assert unknown[2].startswith("shadow deployment: Temporal refused: ")
