from __future__ import annotations

import uuid
from datetime import UTC, datetime

from helpers.workflows import Greeting, GreetingWorkflow, Reply, compose_reply
from temporalio.worker import Worker

from shadow_sdk import ShadowSettings, connect
from shadow_sdk.testing import start_dev_server


async def test_connects_to_the_namespace_the_settings_name(task_queue: str) -> None:
    """connect() reaches the configured server and namespace, plugin included."""
    async with await start_dev_server(dev_server_extra_args=["--namespace", "orders"]) as env:
        settings = ShadowSettings(
            temporal_address=env.client.service_client.config.target_host,
            temporal_namespace="orders",
            temporal_task_queue=task_queue,
        )

        client = await connect(settings)
        async with Worker(
            client, task_queue=task_queue, workflows=[GreetingWorkflow], activities=[compose_reply]
        ):
            reply = await client.execute_workflow(
                GreetingWorkflow.run,
                Greeting(name="Grace", sent_at=datetime(2026, 1, 2, tzinfo=UTC)),
                id=f"greet-{uuid.uuid4()}",
                task_queue=task_queue,
            )

    assert client.namespace == "orders"
    assert reply == Reply(text="Hello, Grace!", greeting_sent_at=datetime(2026, 1, 2, tzinfo=UTC))
