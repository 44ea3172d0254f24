from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import temporalio.converter
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from workflows import Greeting, GreetingWorkflow, Reply, compose_reply

from shadow_sdk import ShadowPlugin


async def greet(client: Client, task_queue: str) -> tuple[Reply, WorkflowHistory]:
    greeting = Greeting(name="Ada", sent_at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    async with Worker(
        client, task_queue=task_queue, workflows=[GreetingWorkflow], activities=[compose_reply]
    ):
        handle = await client.start_workflow(
            GreetingWorkflow.run, greeting, id=f"greet-{uuid.uuid4()}", task_queue=task_queue
        )
        reply = await handle.result()
        history = await handle.fetch_history()
    return reply, history


async def test_pydantic_models_round_trip_through_a_real_server(
    temporal_client: Client, task_queue: str
) -> None:
    """Workflow and activity arguments and results keep their pydantic types end to end."""
    reply, _ = await greet(temporal_client, task_queue)

    assert reply == Reply(
        text="Hello, Ada!", greeting_sent_at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    )
    assert isinstance(reply.greeting_sent_at, datetime)


async def test_a_replayer_with_the_plugin_replays_what_workers_wrote(
    temporal_client: Client, task_queue: str
) -> None:
    """Replaying a real history with ShadowPlugin decodes it exactly as the worker did."""
    _, history = await greet(temporal_client, task_queue)

    result = await Replayer(workflows=[GreetingWorkflow], plugins=[ShadowPlugin()]).replay_workflow(
        history, raise_on_replay_failure=False
    )

    assert result.replay_failure is None


def test_installs_the_pydantic_payload_converter() -> None:
    """A client configured by the plugin converts payloads with temporalio.contrib.pydantic."""
    config = ShadowPlugin().configure_client({})

    assert config["data_converter"].payload_converter_class is PydanticPayloadConverter


def test_keeps_a_payload_converter_chosen_explicitly() -> None:
    """The plugin does not override a converter a service picked on purpose."""

    class OwnConverter(temporalio.converter.DefaultPayloadConverter):
        pass

    chosen = dataclasses.replace(
        temporalio.converter.DataConverter.default, payload_converter_class=OwnConverter
    )

    config = ShadowPlugin().configure_client({"data_converter": chosen})

    assert config["data_converter"].payload_converter_class is OwnConverter


async def test_passes_shadow_sdk_through_the_workflow_sandbox(temporal_client: Client) -> None:
    """Workers import shadow_sdk once instead of once per workflow run."""
    worker = Worker(temporal_client, task_queue="unused", workflows=[GreetingWorkflow])

    runner = worker.config(active_config=True)["workflow_runner"]

    assert isinstance(runner, SandboxedWorkflowRunner)
    assert "shadow_sdk" in runner.restrictions.passthrough_modules
