"""What /metrics shows after real workflows ran on a real dev server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from helpers.workflows import (
    OutcomeWorkflow,
    SlowFirstTaskWorkflow,
    SlowStepWorkflow,
    flaky_step,
    slow_step,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Replayer

from shadow_sdk import ShadowPlugin, ShadowSettings, ShadowWorker
from shadow_sdk.auth import AuthInterceptor, Authorizer, Policy, TokenVerifier
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.observability import (
    OpsServer,
    TemporalMetricsCollector,
    create_runtime,
    registry_for,
)
from shadow_sdk.testing import OpsClient, Scrape, connect_caller, start_dev_server

BOUNDED_LABELS = {"namespace", "task_queue", "workflow_type", "activity_type", "outcome"}


@dataclass
class Observed:
    """A dev server whose client reports to a /metrics page of the test's own."""

    client: Client
    ops: OpsClient
    collector: TemporalMetricsCollector

    async def scrape(self) -> Scrape:
        return await self.ops.scrape()


@pytest.fixture
def plugin() -> ShadowPlugin:
    return ShadowPlugin()


@pytest.fixture
async def observed(plugin: ShadowPlugin) -> AsyncIterator[Observed]:
    runtime, buffer = create_runtime()
    collector = TemporalMetricsCollector(buffer)
    async with (
        await start_dev_server(plugin=plugin, runtime=runtime) as env,
        OpsServer(registry=registry_for(collector), host="127.0.0.1", port=0) as ops_server,
    ):
        yield Observed(env.client, OpsClient(f"http://127.0.0.1:{ops_server.port}"), collector)


async def run_to_the_end(handle: WorkflowHandle[OutcomeWorkflow, str]) -> None:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


async def test_counts_each_workflow_outcome_and_activity_attempt_once(
    observed: Observed, task_queue: str
) -> None:
    """Without a workflow cache every task replays the history so far; nothing counts twice."""
    client = observed.client
    settings = ShadowSettings(temporal_task_queue=task_queue, worker_max_cached_workflows=0)
    async with ShadowWorker(client, settings, workflows=[OutcomeWorkflow], activities=[flaky_step]):
        handles = {
            outcome: await client.start_workflow(
                OutcomeWorkflow.run, outcome, id=f"{outcome}-{uuid.uuid4()}", task_queue=task_queue
            )
            for outcome in ("complete", "fail", "cancel", "continue")
        }
        await asyncio.sleep(0.5)
        await handles["cancel"].cancel()
        await asyncio.gather(*(run_to_the_end(handle) for handle in handles.values()))

    metrics = await observed.scrape()

    workflow = {"workflow_type": "OutcomeWorkflow", "task_queue": task_queue}
    # The continued run starts a second run, which completes.
    assert metrics.value("shadow_workflows_started_total", **workflow) == 5
    closed = {
        outcome: metrics.value("shadow_workflows_closed_total", outcome=outcome, **workflow)
        for outcome in ("completed", "failed", "cancelled", "continued_as_new")
    }
    assert closed == {"completed": 2, "failed": 1, "cancelled": 1, "continued_as_new": 1}
    # flaky_step fails its first attempt in each of the two completing runs.
    activity = {"activity_type": "flaky_step", "task_queue": task_queue}
    assert metrics.value("shadow_activities_total", outcome="completed", **activity) == 2
    assert metrics.value("shadow_activities_total", outcome="failed", **activity) == 2
    assert metrics.value("shadow_activity_duration_seconds_count", **activity) == 4
    assert metrics.value("shadow_activity_schedule_to_start_seconds_count", **activity) == 4
    assert metrics.types["shadow_activity_duration_seconds"] == "histogram"
    # The SDK core's view agrees.
    assert metrics.value("temporal_workflow_completed_total", **workflow) == 2
    assert metrics.value("temporal_workflow_failed_total", **workflow) == 1
    for name in ("shadow_workflows_started_total", "shadow_workflows_closed_total",
                 "shadow_activities_total", "shadow_activity_duration_seconds_count"):  # fmt: skip
        for labels in metrics.label_sets(name):
            assert set(labels) <= BOUNDED_LABELS, labels


async def test_a_run_whose_first_task_timed_out_counts_once(
    observed: Observed, task_queue: str
) -> None:
    """The first task outlasts its 1 s timeout; the retried task runs the code again, live."""
    client = observed.client
    async with ShadowWorker(
        client, ShadowSettings(temporal_task_queue=task_queue), workflows=[SlowFirstTaskWorkflow]
    ):
        handle = await client.start_workflow(
            SlowFirstTaskWorkflow.run,
            1.5,
            id=f"slow-first-task-{uuid.uuid4()}",
            task_queue=task_queue,
            task_timeout=timedelta(seconds=1),
        )
        assert await handle.result() == "done"
    events = [event.event_type for event in (await handle.fetch_history()).events]

    metrics = await observed.scrape()

    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT in events
    workflow = {"workflow_type": "SlowFirstTaskWorkflow", "task_queue": task_queue}
    assert metrics.value("shadow_workflows_started_total", **workflow) == 1
    assert metrics.value("shadow_workflows_closed_total", outcome="completed", **workflow) == 1


async def test_the_collector_holds_one_entry_per_exported_series(
    observed: Observed, task_queue: str
) -> None:
    """Many workflows later, the collector holds what /metrics shows and nothing per run."""
    client = observed.client

    async def run(count: int) -> None:
        await asyncio.gather(
            *(
                client.execute_workflow(
                    OutcomeWorkflow.run,
                    "complete",
                    id=f"bounded-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
                for _ in range(count)
            )
        )

    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[OutcomeWorkflow],
        activities=[flaky_step],
    ):
        await run(20)
        observed.collector.drain()
        after_some = observed.collector.entries
        await run(150)
        observed.collector.drain()
        after_many = observed.collector.entries
        metrics = await observed.scrape()

    ours = ("temporal_", "shadow_")
    families = [name for name in metrics.types if name.startswith(ours)]
    # One sample per series: a counter's _total, a gauge, a histogram's _count.
    series = [
        sample
        for sample in metrics.samples
        if sample.name.startswith(ours) and not sample.name.endswith(("_bucket", "_sum"))
    ]
    assert after_many == len(families) + len(series)
    # A loaded machine may add a series late (a failed or retried task's counter); what
    # is kept per workflow would add 150 or more.
    assert after_many - after_some < 20


async def test_replaying_a_history_counts_nothing(observed: Observed, task_queue: str) -> None:
    """A Replayer with the same plugin and runtime leaves every workflow metric unchanged."""
    client = observed.client
    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[OutcomeWorkflow],
        activities=[flaky_step],
    ):
        handle = await client.start_workflow(
            OutcomeWorkflow.run, "complete", id=f"replayed-{uuid.uuid4()}", task_queue=task_queue
        )
        await handle.result()
    before = await observed.scrape()

    replayer = Replayer(
        workflows=[OutcomeWorkflow],
        plugins=[ShadowPlugin()],
        runtime=client.service_client.config.runtime,
    )
    await replayer.replay_workflow(await handle.fetch_history())
    after = await observed.scrape()

    for name in ("shadow_workflows_started_total", "shadow_workflows_closed_total"):
        assert before.value(name) == 1
        assert after.value(name) == before.value(name)


async def test_durations_are_in_seconds(observed: Observed, task_queue: str) -> None:
    """A 0.3 s activity shows as about 0.3 in shadow_sdk's histograms and the SDK core's."""
    client = observed.client
    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[SlowStepWorkflow],
        activities=[slow_step],
    ):
        await client.execute_workflow(
            SlowStepWorkflow.run, 0.3, id=f"timed-{uuid.uuid4()}", task_queue=task_queue
        )

    metrics = await observed.scrape()

    activity = {"activity_type": "slow_step"}
    for name in ("shadow_activity_duration_seconds", "temporal_activity_execution_latency_seconds"):
        assert metrics.value(f"{name}_count", **activity) == 1
        assert 0.3 <= metrics.value(f"{name}_sum", **activity) < 5
        # Buckets are cumulative: the attempt is above 0.25 s and below 1 s.
        assert metrics.value(f"{name}_bucket", le="0.25", **activity) == 0
        assert metrics.value(f"{name}_bucket", le="1.0", **activity) == 1
    assert all(
        name.endswith("_seconds")
        for name, kind in metrics.types.items()
        if kind == "histogram" and "latency" in name
    )


SECRET = "metrics-test-secret-of-at-least-32-bytes"


@pytest.mark.parametrize(
    "plugin",
    [
        ShadowPlugin(
            auth=AuthInterceptor(
                authorizer=Authorizer(TokenVerifier(hs256_secret=SECRET), Policy.default())
            )
        )
    ],
)
async def test_counts_denied_calls(observed: Observed, task_queue: str) -> None:
    """A start without a token is refused and counted; the refused run is no workflow run."""
    client = observed.client
    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[OutcomeWorkflow],
        activities=[flaky_step],
    ):
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                OutcomeWorkflow.run, "complete", id=f"denied-{uuid.uuid4()}", task_queue=task_queue
            )

    metrics = await observed.scrape()

    assert metrics.value("shadow_auth_denials_total", permission="workflow:start") == 1
    assert metrics.value("temporal_workflow_failed_total", workflow_type="OutcomeWorkflow") == 1
    assert metrics.value("shadow_workflows_started_total") == 0
    assert metrics.value("shadow_activities_total") == 0


@pytest.mark.parametrize(
    "plugin", [ShadowPlugin(codec=EncryptionCodec(KeyRing({"worker-key": bytes(32)})))]
)
async def test_counts_payloads_that_cannot_be_decrypted(
    observed: Observed, task_queue: str
) -> None:
    """A workflow started with a key the worker lacks fails its tasks; each failure counts."""
    caller = await connect_caller(
        observed.client,
        ShadowPlugin(codec=EncryptionCodec(KeyRing({"caller-key": bytes(range(32))}))),
    )
    async with ShadowWorker(
        observed.client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[OutcomeWorkflow],
        activities=[flaky_step],
    ):
        handle = await caller.start_workflow(
            OutcomeWorkflow.run, "complete", id=f"unreadable-{uuid.uuid4()}", task_queue=task_queue
        )
        async with asyncio.timeout(30):
            while not (metrics := await observed.scrape()).value("shadow_codec_errors_total"):
                await asyncio.sleep(0.2)
        await handle.terminate()

    assert metrics.label_sets("shadow_codec_errors_total") == [{"error": "UnknownKeyError"}]
    assert metrics.value("shadow_workflows_started_total") == 0
