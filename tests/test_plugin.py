from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import temporalio.converter
from helpers.workflows import Greeting, GreetingWorkflow, Reply, TotalWorkflow, compose_reply
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.worker import Replayer, Worker

from shadow_sdk import ShadowPlugin
from shadow_sdk._payload_converter import _TYPE_ADAPTERS


async def test_pydantic_models_round_trip_through_a_real_server(
    temporal_client: Client, task_queue: str
) -> None:
    """Workflow and activity arguments and results keep their pydantic types end to end."""
    greeting = Greeting(name="Ada", sent_at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_reply],
    ):
        reply = await temporal_client.execute_workflow(
            GreetingWorkflow.run, greeting, id=f"greet-{uuid.uuid4()}", task_queue=task_queue
        )

    assert reply == Reply(
        text="Hello, Ada!", greeting_sent_at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    )
    assert isinstance(reply.greeting_sent_at, datetime)


async def test_a_replayer_needs_the_plugin_to_replay_what_workers_wrote(
    temporal_client: Client, task_queue: str
) -> None:
    """A real history replays with ShadowPlugin, and fails to without it."""
    async with Worker(temporal_client, task_queue=task_queue, workflows=[TotalWorkflow]):
        handle = await temporal_client.start_workflow(
            TotalWorkflow.run,
            [Decimal("0.10"), Decimal("0.20")],
            id=f"total-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        total = await handle.result()
    history = await handle.fetch_history()

    with_plugin = await Replayer(
        workflows=[TotalWorkflow], plugins=[ShadowPlugin()]
    ).replay_workflow(history, raise_on_replay_failure=False)
    without_plugin = await Replayer(workflows=[TotalWorkflow]).replay_workflow(
        history, raise_on_replay_failure=False
    )

    assert total == Decimal("0.30")
    assert with_plugin.replay_failure is None
    assert without_plugin.replay_failure is not None


def test_installs_the_pydantic_payload_converter() -> None:
    """A client configured by the plugin converts payloads with temporalio.contrib.pydantic."""
    config = ShadowPlugin().configure_client({})

    assert issubclass(config["data_converter"].payload_converter_class, PydanticPayloadConverter)


def test_payload_converters_share_their_type_adapters() -> None:
    """temporalio makes a converter per workflow run; each used to build its adapters anew."""
    converter_class = ShadowPlugin().configure_client({})["data_converter"].payload_converter_class
    reply = Reply(text="Hi", greeting_sent_at=datetime(2026, 12, 6, tzinfo=UTC))
    [payload] = converter_class().to_payloads([reply])
    _TYPE_ADAPTERS.cache_clear()

    decoded = [converter_class().from_payloads([payload], [Reply]) for _ in range(3)]

    assert decoded == [[reply]] * 3
    assert _TYPE_ADAPTERS.cache_info()[:2] == (2, 1)  # (hits, misses): built once.


def test_type_adapters_of_classes_made_per_run_stay_bounded() -> None:
    """A type defined in a workflow module is a new class every run: the cache must not grow."""
    converter_class = ShadowPlugin().configure_client({})["data_converter"].payload_converter_class
    [payload] = converter_class().to_payloads([{"text": "Hi"}])
    _TYPE_ADAPTERS.cache_clear()
    classes = [dataclasses.make_dataclass(f"Run{index}", [("text", str)]) for index in range(2000)]

    for run in classes:
        assert converter_class().from_payloads([payload], [run])[0].text == "Hi"

    assert _TYPE_ADAPTERS.cache_info().currsize == _TYPE_ADAPTERS.cache_info().maxsize == 128


def test_keeps_a_payload_converter_chosen_explicitly() -> None:
    """The plugin does not override a converter a service picked on purpose."""

    class OwnConverter(temporalio.converter.DefaultPayloadConverter):
        pass

    chosen = dataclasses.replace(
        temporalio.converter.DataConverter.default, payload_converter_class=OwnConverter
    )

    config = ShadowPlugin().configure_client({"data_converter": chosen})

    assert config["data_converter"].payload_converter_class is OwnConverter
