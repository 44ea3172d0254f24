"""Authorization of real workflow calls on a real (time-skipping) Temporal server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from helpers.workflows import (
    AuditedWorkflow,
    GuardedWorkflow,
    ShortCronWorkflow,
    WhoCalledChildWorkflow,
    WhoCalledWorkflow,
    who_called,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from shadow_sdk import ShadowPlugin, TokenError
from shadow_sdk.auth import (
    DEFAULT_ROLES,
    AuthInterceptor,
    Authorizer,
    Grant,
    Policy,
    TokenIssuer,
    TokenVerifier,
)
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.testing import connect_caller, start_dev_server

SECRET = "auth-test-secret-of-at-least-32-bytes"
ISSUER = TokenIssuer(hs256_secret=SECRET)
POLICY = Policy(
    {
        **DEFAULT_ROLES,
        "signaller": [Grant("workflow:signal"), Grant("workflow:query")],
        "updater": [Grant("workflow:update")],
    }
)
AUTHORIZER = Authorizer(TokenVerifier(hs256_secret=SECRET, leeway=timedelta(0)), POLICY)
CODEC = EncryptionCodec(KeyRing({"test": bytes(32)}))


def token(subject: str, *roles: str, ttl: timedelta = timedelta(hours=1)) -> str:
    return ISSUER.issue(subject, roles, ttl=ttl)


def plugin(caller_token: str | None, *, worker: bool = False) -> ShadowPlugin:
    authorizer = AUTHORIZER if worker else None
    if caller_token is None and authorizer is None:
        return ShadowPlugin(codec=CODEC)
    return ShadowPlugin(
        codec=CODEC, auth=AuthInterceptor(token=caller_token, authorizer=authorizer)
    )


@pytest.fixture
def shadow_plugin() -> ShadowPlugin:
    """The environment's own client is the worker's, and an admin caller."""
    return plugin(token("worker-admin", "admin"), worker=True)


ConnectWithToken = Callable[[str | None], Awaitable[Client]]


@pytest.fixture
def connect_with_token(temporal_client: Client) -> ConnectWithToken:
    """A caller of the test's server carrying this token: expired, forged or none alike."""

    async def connect(caller_token: str | None) -> Client:
        return await connect_caller(temporal_client, plugin(caller_token))

    return connect


@pytest.fixture
async def worker(temporal_client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[
            GuardedWorkflow,
            WhoCalledWorkflow,
            WhoCalledChildWorkflow,
            AuditedWorkflow,
            ShortCronWorkflow,
        ],
        activities=[who_called],
    ) as running:
        yield running


async def start_guarded(
    client: Client, task_queue: str
) -> WorkflowHandle[GuardedWorkflow, list[str]]:
    return await client.start_workflow(
        GuardedWorkflow.run, id=f"guarded-{uuid.uuid4()}", task_queue=task_queue
    )


@pytest.mark.usefixtures("worker")
async def test_an_operator_may_start_signal_query_and_update(
    connect_with_token: ConnectWithToken, task_queue: str
) -> None:
    """Every call of a caller whose role allows it reaches the workflow."""
    operator = await connect_with_token(token("alice", "operator"))
    handle = await start_guarded(operator, task_queue)

    await handle.signal(GuardedWorkflow.add, "signalled")
    # Temporal does not order a signal before a later update that lands in the same
    # workflow task, so the update waits until the workflow has seen the signal.
    async with asyncio.timeout(10):
        while await handle.query(GuardedWorkflow.current) != ["signalled"]:
            await asyncio.sleep(0.05)
    assert await handle.execute_update(GuardedWorkflow.add_checked, "updated") == 2
    assert await handle.query(GuardedWorkflow.current) == ["signalled", "updated"]
    await handle.signal(GuardedWorkflow.finish)

    assert await handle.result() == ["signalled", "updated"]


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        (
            "viewer",
            "'bob' (viewer) may not workflow:start on GuardedWorkflow in namespace 'default'",
        ),
        ("none", "no token: the call carries no shadow-auth-token header"),
        ("expired", "expired at"),
        ("forged", "bad signature"),
    ],
)
async def test_a_denied_start_fails_the_workflow_at_once(
    connect_with_token: ConnectWithToken, task_queue: str, caller: str, reason: str
) -> None:
    """The workflow fails with a non-retryable PermissionDenied naming the reason."""
    tokens = {
        "viewer": token("bob", "viewer"),
        "none": None,
        "expired": ISSUER.issue("bob", ["admin"], now=datetime.now(UTC) - timedelta(hours=2)),
        "forged": TokenIssuer(hs256_secret="x" * 32).issue("mallory", ["admin"]),
    }
    client = await connect_with_token(tokens[caller])
    handle = await start_guarded(client, task_queue)

    with pytest.raises(WorkflowFailureError) as excinfo:
        await handle.result()

    cause = excinfo.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "PermissionDenied"
    assert cause.non_retryable
    assert cause.message.startswith("workflow:start denied: ")
    assert reason in cause.message
    history = await handle.fetch_history()
    assert (
        sum(1 for e in history.events if e.HasField("workflow_task_started_event_attributes")) == 1
    )


@pytest.mark.usefixtures("worker")
async def test_a_denied_signal_is_dropped_without_failing_the_workflow(
    connect_with_token: ConnectWithToken, task_queue: str
) -> None:
    """A signal without permission never changes state; the workflow goes on."""
    operator = await connect_with_token(token("alice", "operator"))
    stranger = await connect_with_token(token("eve", "viewer"))
    handle = await start_guarded(operator, task_queue)
    await handle.signal(GuardedWorkflow.add, "legit")

    await stranger.get_workflow_handle(handle.id).signal(GuardedWorkflow.add, "injected")
    await stranger.get_workflow_handle(handle.id).signal(GuardedWorkflow.finish)
    await handle.signal(GuardedWorkflow.add, "after")
    assert await handle.query(GuardedWorkflow.current) == ["legit", "after"]
    await handle.signal(GuardedWorkflow.finish)

    assert await handle.result() == ["legit", "after"]


@pytest.mark.usefixtures("worker")
async def test_a_denied_query_fails_for_the_caller(
    connect_with_token: ConnectWithToken, task_queue: str
) -> None:
    """A role without workflow:query gets an error, not the state.

    Failure messages are encrypted by default, and Temporal hands a query's failure
    to the caller as its message only, so the caller reads "Encoded failure".
    """
    operator = await connect_with_token(token("alice", "operator"))
    handle = await start_guarded(operator, task_queue)
    outsider = await connect_with_token(token("carl", "billing"))

    with pytest.raises(WorkflowQueryFailedError, match="^Encoded failure$"):
        await outsider.get_workflow_handle(handle.id).query(GuardedWorkflow.current)
    await handle.signal(GuardedWorkflow.finish)


async def test_with_plain_failures_a_denied_query_says_why(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Without failure encoding the caller reads the reason of the denial."""
    worker_plugin = ShadowPlugin(
        codec=CODEC,
        encode_failures=False,
        auth=AuthInterceptor(token=token("worker-admin", "admin"), authorizer=AUTHORIZER),
    )
    worker_client = await connect_caller(temporal_env.client, worker_plugin)
    outsider = await connect_caller(
        temporal_env.client,
        ShadowPlugin(
            codec=CODEC, encode_failures=False, auth=AuthInterceptor(token=token("carl", "billing"))
        ),
    )
    async with Worker(worker_client, task_queue=task_queue, workflows=[GuardedWorkflow]):
        handle = await start_guarded(worker_client, task_queue)

        with pytest.raises(
            WorkflowQueryFailedError,
            match="'carl' \\(billing\\) may not workflow:query on GuardedWorkflow",
        ):
            await outsider.get_workflow_handle(handle.id).query(GuardedWorkflow.current)
        await handle.signal(GuardedWorkflow.finish)


@pytest.mark.usefixtures("worker")
async def test_a_denied_update_is_rejected_and_changes_nothing(
    connect_with_token: ConnectWithToken, task_queue: str
) -> None:
    """With a validator the update is rejected; without one it fails; state stays as it was."""
    operator = await connect_with_token(token("alice", "operator"))
    handle = await start_guarded(operator, task_queue)
    viewer = (await connect_with_token(token("bob", "viewer"))).get_workflow_handle(handle.id)

    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await viewer.execute_update(GuardedWorkflow.add_checked, "nope")
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await viewer.execute_update(GuardedWorkflow.add_unchecked, "nope")

    for excinfo in (rejected, failed):
        cause = excinfo.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "PermissionDenied"
        assert "workflow:update denied: 'bob' (viewer) may not workflow:update" in cause.message
    assert await handle.query(GuardedWorkflow.current) == []
    accepted = [e for e in (await handle.fetch_history()).events
                if e.HasField("workflow_execution_update_accepted_event_attributes")]  # fmt: skip
    assert len(accepted) == 1  # The unchecked update; the checked one never was.
    await handle.signal(GuardedWorkflow.finish)


@pytest.mark.usefixtures("worker")
async def test_activities_and_child_workflows_inherit_the_identity(
    temporal_client: Client, task_queue: str
) -> None:
    """The starter's identity reaches activities, and a child workflow started days later,
    when the starter's one-hour token has long expired."""
    subjects = await temporal_client.execute_workflow(
        WhoCalledWorkflow.run, 3, id=f"who-{uuid.uuid4()}", task_queue=task_queue
    )

    assert subjects == ["worker-admin", "worker-admin"]


async def test_replay_judges_tokens_by_the_time_of_their_events(
    temporal_env: WorkflowEnvironment,
    connect_with_token: ConnectWithToken,
    worker: Worker,
    task_queue: str,
) -> None:
    """A history replays identically after its tokens expired: time is the event's."""
    short_lived = token("alice", "operator", ttl=timedelta(seconds=2))
    client = await connect_with_token(short_lived)
    handle = await start_guarded(client, task_queue)
    await handle.signal(GuardedWorkflow.add, "in time")
    await handle.signal(GuardedWorkflow.finish)
    await handle.result()
    await asyncio.sleep(3)
    with pytest.raises(TokenError, match="expired"):
        AUTHORIZER.verifier.verify(short_lived)

    result = await Replayer(
        workflows=[GuardedWorkflow], plugins=[plugin(None, worker=True)]
    ).replay_workflow(await handle.fetch_history(), raise_on_replay_failure=False)

    assert result.replay_failure is None


async def test_without_the_codec_a_client_cannot_even_read_the_token(
    temporal_env: WorkflowEnvironment,
    worker: Worker,
    task_queue: str,
    connect_with_token: ConnectWithToken,
) -> None:
    """Headers are encrypted: history holds the token only as ciphertext."""
    secret_token = token("alice", "operator")
    client = await connect_with_token(secret_token)
    handle = await start_guarded(client, task_queue)
    await handle.signal(GuardedWorkflow.finish)
    await handle.result()

    raw = (await handle.fetch_history()).to_json().encode() + b"".join(
        event.SerializeToString() for event in (await handle.fetch_history()).events
    )

    assert secret_token.encode() not in raw
    assert secret_token.split(".")[1].encode() not in raw
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle("no-such-workflow").describe()


@pytest.mark.usefixtures("worker")
async def test_activities_of_a_signal_run_as_the_signaller(
    connect_with_token: ConnectWithToken, temporal_client: Client, task_queue: str
) -> None:
    """Work a signal leads to is attributed to whoever sent the signal, not to the starter."""
    alice = await connect_with_token(token("alice", "operator"))
    bob = await connect_with_token(token("bob", "signaller"))
    handle = await alice.start_workflow(
        AuditedWorkflow.run, id=f"audited-{uuid.uuid4()}", task_queue=task_queue
    )

    await bob.get_workflow_handle(handle.id).signal(AuditedWorkflow.record)
    await handle.signal(AuditedWorkflow.record)
    assert await handle.execute_update(AuditedWorkflow.record_now) == "alice"
    await handle.signal(AuditedWorkflow.finish)

    assert sorted(await temporal_client.get_workflow_handle(handle.id).result()) == [
        "alice",
        "alice",
        "bob",
    ]


@pytest.mark.usefixtures("worker")
async def test_signal_with_start_runs_no_handler_when_the_start_is_denied(
    connect_with_token: ConnectWithToken, task_queue: str
) -> None:
    """A caller allowed to signal but not to start gets no handler to run on a new workflow."""
    bob = await connect_with_token(token("bob", "signaller"))
    handle = await bob.start_workflow(
        AuditedWorkflow.run,
        id=f"audited-{uuid.uuid4()}",
        task_queue=task_queue,
        start_signal="record",
    )

    with pytest.raises(WorkflowFailureError) as excinfo:
        await handle.result()

    assert isinstance(excinfo.value.cause, ApplicationError)
    assert "workflow:start denied: 'bob' (signaller)" in excinfo.value.cause.message
    events = [event.event_type for event in (await handle.fetch_history()).events]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events


@pytest.mark.usefixtures("worker")
async def test_update_with_start_needs_the_right_to_start(
    connect_with_token: ConnectWithToken, task_queue: str
) -> None:
    """A caller allowed to update but not to start cannot create a workflow through an update."""
    carol = await connect_with_token(token("carol", "updater"))
    operation = WithStartWorkflowOperation(
        AuditedWorkflow.run,
        id=f"audited-{uuid.uuid4()}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )

    with pytest.raises(WorkflowUpdateFailedError) as excinfo:
        await carol.execute_update_with_start_workflow(
            AuditedWorkflow.record_now, start_workflow_operation=operation
        )

    assert "workflow:update denied: the workflow's start was denied" in str(excinfo.value.cause)
    events = [
        event.event_type
        for event in (await (await operation.workflow_handle()).fetch_history()).events
    ]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events


async def test_cron_runs_do_not_outlive_an_expired_token(task_queue: str) -> None:
    """Every cron run is judged like a new start: once the token expired, runs are denied."""
    worker_plugin = plugin(token("worker-admin", "admin"), worker=True)
    async with await start_dev_server(plugin=worker_plugin) as env:
        alice = await connect_caller(
            env.client, plugin(ISSUER.issue("alice", ["operator"], ttl=timedelta(seconds=3)))
        )
        workflow_id = f"cron-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=task_queue, workflows=[ShortCronWorkflow]):
            handle = await alice.start_workflow(
                ShortCronWorkflow.run,
                id=workflow_id,
                task_queue=task_queue,
                cron_schedule="@every 1s",
            )
            await asyncio.sleep(7)
            runs = [run async for run in env.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
            await handle.terminate()

    by_start = sorted(runs, key=lambda run: run.start_time)
    statuses = [run.status.name if run.status else "?" for run in by_start]
    assert "COMPLETED" in statuses
    assert statuses[-2] == "FAILED"  # The last closed run, after the token expired.
    assert "COMPLETED" not in statuses[statuses.index("FAILED") :]
