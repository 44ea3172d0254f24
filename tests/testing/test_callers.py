"""Other callers of a test's server: connect_caller, and the connect_as fixture built on it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from helpers.workflows import Greeting, GreetingWorkflow, compose_reply
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from shadow_sdk import ShadowPlugin, ShadowSettings, ShadowWorker
from shadow_sdk.testing import ConnectAs, Credentials, connect_caller

GREETING = Greeting(name="Ada", sent_at=datetime(2026, 11, 1, tzinfo=UTC))


@pytest.fixture
def settings(task_queue: str, credentials: Credentials) -> ShadowSettings:
    """The worker's settings: the session's keys and secret, and a token of an admin."""
    return ShadowSettings(
        temporal_task_queue=task_queue,
        codec_keys=credentials.codec_keys,
        auth_hs256_secret=credentials.hs256_secret,
        auth_token=credentials.token("worker", "admin"),
    )


@pytest.fixture
def shadow_plugin(settings: ShadowSettings) -> ShadowPlugin:
    return ShadowPlugin.from_settings(settings)


def greeting_on(settings: ShadowSettings) -> dict[str, str]:
    """Where a greeting runs: an id of its own, on the worker's task queue."""
    return {"id": f"greeting-{uuid.uuid4()}", "task_queue": str(settings.temporal_task_queue)}


async def test_connect_as_gives_callers_the_roles_it_names(
    connect_as: ConnectAs, temporal_client: Client, settings: ShadowSettings
) -> None:
    """An operator's start runs; a viewer's is denied by the worker before any step."""
    operator = await connect_as("olivia", "operator")
    viewer = await connect_as("victor", "viewer")
    async with ShadowWorker(
        temporal_client, settings, workflows=[GreetingWorkflow], activities=[compose_reply]
    ):
        reply = await operator.execute_workflow(
            GreetingWorkflow.run, GREETING, **greeting_on(settings)
        )
        with pytest.raises(WorkflowFailureError) as denied:
            await viewer.execute_workflow(GreetingWorkflow.run, GREETING, **greeting_on(settings))

    assert reply.text == "Hello, Ada!"
    assert isinstance(denied.value.cause, ApplicationError)
    assert denied.value.cause.type == "PermissionDenied"
    assert "'victor' (viewer) may not workflow:start" in denied.value.cause.message


async def test_a_caller_carries_its_own_plugins_only(
    temporal_client: Client, settings: ShadowSettings
) -> None:
    """Same server and namespace; without the client's plugin a caller reads ciphertext."""
    plain = await connect_caller(temporal_client)
    handle = await temporal_client.start_workflow(
        GreetingWorkflow.run, GREETING, **greeting_on(settings)
    )

    history = await plain.get_workflow_handle(handle.id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes

    assert not plain.config()["plugins"]
    assert plain.namespace == temporal_client.namespace
    assert started.input.payloads[0].metadata["encoding"] == b"binary/encrypted"
    await handle.terminate()
