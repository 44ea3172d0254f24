"""Encryption and authorization end to end on a dev server, read back with the real Temporal CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.workflows import Greeting, GreetingWorkflow, compose_reply
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from shadow_sdk import ShadowPlugin, ShadowSettings
from shadow_sdk.auth import TokenIssuer
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.testing import (
    TEMPORAL_CLI,
    BackgroundProcess,
    connect_caller,
    find_binary,
    free_port,
)

pytestmark = pytest.mark.slow

SECRET = "e2e-secret-that-is-at-least-32-bytes"
KEYS = {"2026-11": base64.b64encode(bytes(range(32))).decode()}
ISSUER = TokenIssuer(hs256_secret=SECRET)
MARKER = "Ada Lovelace, card 4111-1111"
SETTINGS_ENV = {"CODEC_KEYS": json.dumps(KEYS), "AUTH_HS256_SECRET": SECRET}


def settings(token: str | None, task_queue: str | None = None) -> ShadowSettings:
    return ShadowSettings(
        temporal_task_queue=task_queue,
        codec_keys=KEYS,
        auth_hs256_secret=SECRET,
        auth_token=token,
        codec_required=True,
        auth_required=True,
    )


@pytest.fixture
def shadow_plugin() -> ShadowPlugin:
    """The dev server's own client is the worker's, configured from settings."""
    return ShadowPlugin.from_settings(settings(ISSUER.issue("worker", ["admin"])))


async def connect(env: WorkflowEnvironment, token: str | None) -> Client:
    return await connect_caller(env.client, ShadowPlugin.from_settings(settings(token)))


@pytest.fixture
def codec_server(dev_server_env: WorkflowEnvironment) -> Iterator[str]:
    """`shadow codec-server`, run as operators run it, with the same keys and secret."""
    port = free_port()
    command = [sys.executable, "-c", "from shadow_sdk._cli import main; main()", "codec-server",
               "--port", str(port)]  # fmt: skip
    env = {**os.environ, **SETTINGS_ENV}
    with BackgroundProcess(command, env, name="the codec server").start() as server:
        server.wait_until_listening(port)
        yield f"http://127.0.0.1:{port}"


def temporal_show(
    env: WorkflowEnvironment, workflow_id: str, *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(find_binary(*TEMPORAL_CLI)), "workflow", "show", "--workflow-id", workflow_id,
         "--address", env.client.service_client.config.target_host, "--output", "json", *options],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def started_event(show: subprocess.CompletedProcess[str]) -> dict[str, object]:
    return json.loads(show.stdout)["events"][0]["workflowExecutionStartedEventAttributes"]  # type: ignore[no-any-return]


def decoded(payload: dict[str, dict[str, str] | str]) -> tuple[bytes, bytes]:
    metadata = payload["metadata"]
    assert isinstance(metadata, dict)
    data = payload.get("data", "")
    assert isinstance(data, str)
    return base64.b64decode(metadata["encoding"]), base64.b64decode(data)


async def test_authorized_runs_unauthorized_is_denied_history_holds_no_plaintext(
    dev_server_env: WorkflowEnvironment, task_queue: str, codec_server: str
) -> None:
    """The whole path: tokens decide, the server stores ciphertext, the codec server reveals it."""
    operator_token = ISSUER.issue("alice", ["operator"])
    viewer_token = ISSUER.issue("victor", ["viewer"])
    operator = await connect(dev_server_env, operator_token)
    viewer = await connect(dev_server_env, viewer_token)
    workflow_id = f"secure-{uuid.uuid4()}"
    async with Worker(
        dev_server_env.client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_reply],
    ):
        reply = await operator.execute_workflow(
            GreetingWorkflow.run,
            Greeting(name=MARKER, sent_at=datetime.now(UTC)),
            id=workflow_id,
            task_queue=task_queue,
        )
        denied = await viewer.start_workflow(
            GreetingWorkflow.run,
            Greeting(name="x", sent_at=datetime.now(UTC)),
            id=f"{workflow_id}-denied",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as excinfo:
            await denied.result()

    assert reply.text == f"Hello, {MARKER}!"
    assert isinstance(excinfo.value.cause, ApplicationError)
    assert excinfo.value.cause.type == "PermissionDenied"

    # The server holds ciphertext only: no payload, no token, in any event.
    plain_client = await connect_caller(dev_server_env.client)
    raw = b"".join(
        e.SerializeToString()
        for e in (await plain_client.get_workflow_handle(workflow_id).fetch_history()).events
    )
    assert MARKER.encode() not in raw
    assert b"Hello," not in raw
    assert operator_token.encode() not in raw
    assert operator_token.split(".")[1].encode() not in raw

    # The Temporal CLI alone sees ciphertext...
    raw_show = temporal_show(dev_server_env, workflow_id)
    assert raw_show.returncode == 0, raw_show.stderr
    [raw_input] = started_event(raw_show)["input"]["payloads"]  # type: ignore[index]
    assert decoded(raw_input)[0] == b"binary/encrypted"

    # ...and, through the codec server with a viewer's token, plain JSON without the token.
    endpoint = f"{codec_server}/{{namespace}}"
    plain_show = temporal_show(
        dev_server_env,
        workflow_id,
        "--codec-endpoint",
        endpoint,
        "--codec-auth",
        f"Bearer {viewer_token}",
    )
    assert plain_show.returncode == 0, plain_show.stderr
    started = started_event(plain_show)
    [plain_input] = started["input"]["payloads"]  # type: ignore[index]
    encoding, data = decoded(plain_input)
    assert encoding == b"json/plain"
    assert json.loads(data)["name"] == MARKER
    token_header = started["header"]["fields"]["shadow-auth-token"]  # type: ignore[index]
    assert json.loads(decoded(token_header)[1]) == "<auth token redacted>"
    assert operator_token not in plain_show.stdout

    # Without a valid token the codec server refuses (401), and the CLI shows nothing.
    refused = temporal_show(
        dev_server_env, workflow_id, "--command-timeout", "3s",
        "--codec-endpoint", endpoint, "--codec-auth", "Bearer forged",
    )  # fmt: skip
    assert refused.returncode != 0
    assert refused.stdout == ""


async def test_a_worker_without_the_key_fails_the_task_and_recovers_once_it_has_it(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """An unknown key id never crashes the worker: the task fails visibly and retries."""
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "old").write_text(base64.b64encode(bytes(32)).decode())
    worker_client = await connect_caller(
        dev_server_env.client,
        ShadowPlugin(codec=EncryptionCodec(KeyRing.from_directory(keys_dir, reload_interval=0))),
    )
    new_key = bytes(range(1, 33))
    # The starter already rotated: it encrypts with "new" and still reads "old".
    rotated = KeyRing({"old": bytes(32), "new": new_key}, active="new")
    starter = await connect_caller(
        dev_server_env.client, ShadowPlugin(codec=EncryptionCodec(rotated))
    )
    async with Worker(
        worker_client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_reply],
    ):
        handle = await starter.start_workflow(
            GreetingWorkflow.run,
            Greeting(name="rotated", sent_at=datetime.now(UTC)),
            id=f"rot-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        async with asyncio.timeout(30):
            while True:
                events = (await handle.fetch_history()).events
                failures = [
                    e for e in events if e.HasField("workflow_task_failed_event_attributes")
                ]
                if failures:
                    break
                await asyncio.sleep(0.1)
        failure = failures[0].workflow_task_failed_event_attributes.failure
        assert failure.application_failure_info.type == "UnknownKeyError"
        assert failure.message == "Encoded failure"  # Failure messages are encrypted too.
        error = await worker_client.data_converter.decode_failure(failure)
        assert "cannot decrypt payload encrypted with key 'new': no such key" in str(error)

        (keys_dir / "new").write_text(base64.b64encode(new_key).decode())

        reply = await asyncio.wait_for(handle.result(), timeout=60)

    assert reply.text == "Hello, rotated!"
