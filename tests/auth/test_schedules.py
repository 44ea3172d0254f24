"""Runs started by a Temporal Schedule carry the token of whoever set the schedule's action.

Schedules need the dev server: the time-skipping test server does not implement them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from helpers.workflows import WhoCalledChildWorkflow, WhoCalledWorkflow, who_called
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from shadow_sdk import ShadowPlugin
from shadow_sdk.auth import AuthInterceptor, Authorizer, Policy, TokenIssuer, TokenVerifier
from shadow_sdk.auth._interceptor import HEADER
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.testing import connect_caller, start_dev_server

SECRET = "schedule-test-secret-of-32-bytes!!"
ISSUER = TokenIssuer(hs256_secret=SECRET)
CODEC = EncryptionCodec(KeyRing({"test": bytes(32)}))


def plugin(token: str | None = None, *, worker: bool = False) -> ShadowPlugin:
    authorizer = (
        Authorizer(TokenVerifier(hs256_secret=SECRET), Policy.default()) if worker else None
    )
    auth = AuthInterceptor(token=token, authorizer=authorizer) if token or authorizer else None
    return ShadowPlugin(codec=CODEC, auth=auth)


@pytest.fixture
async def env(task_queue: str) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server whose worker authorizes every call."""
    async with (
        await start_dev_server(plugin=plugin(worker=True)) as env,
        Worker(
            env.client,
            task_queue=task_queue,
            workflows=[WhoCalledWorkflow, WhoCalledChildWorkflow],
            activities=[who_called],
        ),
    ):
        yield env


async def connect(env: WorkflowEnvironment, token: str | None) -> Client:
    return await connect_caller(env.client, plugin(token))


def action(task_queue: str) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(
        WhoCalledWorkflow.run, 0, id=f"scheduled-{uuid.uuid4()}", task_queue=task_queue
    )


async def schedule(client: Client, task_queue: str) -> ScheduleHandle:
    return await client.create_schedule(
        f"schedule-{uuid.uuid4()}",
        Schedule(action=action(task_queue), spec=ScheduleSpec()),
    )


async def run_once(env: WorkflowEnvironment, handle: ScheduleHandle) -> list[str]:
    """Trigger the schedule and return what its run reports (or raise its failure)."""
    await handle.trigger()
    async with asyncio.timeout(30):
        while not (description := await handle.describe()).info.recent_actions:
            await asyncio.sleep(0.1)
    started = description.info.recent_actions[-1].action
    run = env.client.get_workflow_handle(started.workflow_id, run_id=started.first_execution_run_id)
    result: list[str] = await run.result()
    return result


async def test_scheduled_runs_act_as_whoever_created_the_schedule(
    env: WorkflowEnvironment, task_queue: str
) -> None:
    alice = await connect(env, ISSUER.issue("alice", ["operator"]))

    assert await run_once(env, await schedule(alice, task_queue)) == ["alice", "alice"]


async def test_the_token_is_stored_in_the_schedule_encrypted(
    env: WorkflowEnvironment, task_queue: str
) -> None:
    token = ISSUER.issue("alice", ["operator"])
    handle = await schedule(await connect(env, token), task_queue)

    stored = (await handle.describe()).raw_description.schedule.action.start_workflow.header
    assert stored.fields[HEADER].metadata["encoding"] == b"binary/encrypted"
    assert token.encode() not in stored.SerializeToString()


async def test_a_schedule_set_without_a_token_starts_nothing_that_runs(
    env: WorkflowEnvironment, task_queue: str
) -> None:
    anonymous = await connect(env, None)

    with pytest.raises(WorkflowFailureError) as excinfo:
        await run_once(env, await schedule(anonymous, task_queue))

    assert isinstance(excinfo.value.cause, ApplicationError)
    assert excinfo.value.cause.type == "PermissionDenied"


async def test_an_update_that_sets_the_action_signs_it_with_the_updaters_token(
    env: WorkflowEnvironment, task_queue: str
) -> None:
    alice = await connect(env, ISSUER.issue("alice", ["operator"]))
    bob = await connect(env, ISSUER.issue("bob", ["operator"]))
    created = await schedule(alice, task_queue)

    def replace_action(current: ScheduleUpdateInput) -> ScheduleUpdate:
        current.description.schedule.action = action(task_queue)
        return ScheduleUpdate(schedule=current.description.schedule)

    await bob.get_schedule_handle(created.id).update(replace_action)

    assert await run_once(env, created) == ["bob", "bob"]


async def test_an_update_that_keeps_the_action_keeps_its_token(
    env: WorkflowEnvironment, task_queue: str
) -> None:
    alice = await connect(env, ISSUER.issue("alice", ["operator"]))
    bob = await connect(env, ISSUER.issue("bob", ["operator"]))
    created = await schedule(alice, task_queue)

    def pause_note(current: ScheduleUpdateInput) -> ScheduleUpdate:
        current.description.schedule.state.note = "kept"
        return ScheduleUpdate(schedule=current.description.schedule)

    await bob.get_schedule_handle(created.id).update(pause_note)

    assert await run_once(env, created) == ["alice", "alice"]
    assert (await created.describe()).schedule.state.note == "kept"
