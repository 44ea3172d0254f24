"""Workflow instances that answer context questions once per command answer them rightly.

A codec that tags every payload it encodes with the serialization context it was given
shows, in a real history, which context each payload got: a worker whose instances
remember the answer per command (as ShadowPlugin's do) must give each the context plain
temporalio gives it, also for two commands of the same workflow task.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

import temporalio.converter
from helpers.workflows import PairWorkflow, echo
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from shadow_sdk._runner_wrappers import ContextCachingRunner
from shadow_sdk.testing import connect_caller


@dataclasses.dataclass(frozen=True)
class ContextTaggingCodec(
    temporalio.converter.PayloadCodec, temporalio.converter.WithSerializationContext
):
    """Writes into each payload's metadata the context it was encoded with."""

    context: temporalio.converter.SerializationContext | None = None

    def with_context(
        self, context: temporalio.converter.SerializationContext
    ) -> ContextTaggingCodec:
        return ContextTaggingCodec(context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        tagged = []
        for payload in payloads:
            copy = Payload()
            copy.CopyFrom(payload)
            copy.metadata["context"] = describe(self.context).encode()
            tagged.append(copy)
        return tagged

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def describe(context: temporalio.converter.SerializationContext | None) -> str:
    if isinstance(context, temporalio.converter.ActivitySerializationContext):
        return f"activity {context.activity_id} of {context.workflow_id}"
    if isinstance(context, temporalio.converter.WorkflowSerializationContext):
        return f"workflow {context.workflow_id}"
    return "none"


async def contexts_seen(client: Client, task_queue: str, **worker_options: object) -> list[str]:
    """Run PairWorkflow; the contexts its scheduled inputs and its result were encoded with."""
    workflow_id = f"pair-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[PairWorkflow],
        activities=[echo],
        **worker_options,  # type: ignore[arg-type]
    ):
        handle = await client.start_workflow(
            PairWorkflow.run, "hello", id=workflow_id, task_queue=task_queue
        )
        assert await handle.result() == ["hello", "hello!"]
    seen = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            payload = event.activity_task_scheduled_event_attributes.input.payloads[0]
            seen.append(payload.metadata["context"].decode())
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            payload = event.workflow_execution_completed_event_attributes.result.payloads[0]
            seen.append(payload.metadata["context"].decode())
    return [line.replace(workflow_id, "<run>") for line in seen]


async def test_each_command_gets_its_own_context_as_without_the_cache(
    temporal_client: Client, task_queue: str
) -> None:
    caller = await connect_caller(temporal_client)
    client = Client(
        caller.service_client,
        namespace=caller.namespace,
        data_converter=temporalio.converter.DataConverter(payload_codec=ContextTaggingCodec()),
    )

    plain = await contexts_seen(client, f"{task_queue}-plain")
    cached = await contexts_seen(
        client,
        f"{task_queue}-cached",
        workflow_runner=ContextCachingRunner(SandboxedWorkflowRunner()),
    )

    assert plain == [
        "activity first of <run>",
        "activity second of <run>",
        "workflow <run>",
    ]
    assert cached == plain
