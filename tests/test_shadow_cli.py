"""The `shadow` command line: keys, tokens and offline decoding, run as a process."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import json_format
from helpers.workflows import Greeting, GreetingWorkflow, compose_reply
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from shadow_sdk import ShadowPlugin
from shadow_sdk.auth import AuthInterceptor, TokenVerifier
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.testing import connect_caller

SECRET = "shadow-cli-test-secret-of-32-bytes"


def shadow(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shadow_sdk._cli import main; main()", *args],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_keygen_prints_a_key_for_codec_keys() -> None:
    """The output is a CODEC_KEYS value: one id, one base64 key of 32 bytes."""
    result = shadow("keygen", "--id", "2026-11")

    assert result.returncode == 0, result.stderr
    keys = json.loads(result.stdout)
    assert list(keys) == ["2026-11"]
    assert len(base64.b64decode(keys["2026-11"])) == 32


def test_commands_other_than_the_codec_server_start_without_its_web_server() -> None:
    """aiohttp is imported by ``codec-server`` alone, so every other command starts sooner."""
    check = (
        "import sys\n"
        "from shadow_sdk._cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(sorted(name for name in sys.modules if name.split('.')[0] == 'aiohttp'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check, "keygen", "--id", "k1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_keygen_writes_a_private_key_file(tmp_path: Path) -> None:
    """--dir writes a key file only its owner can read, and never overwrites one."""
    first = shadow("keygen", "--id", "k1", "--dir", str(tmp_path))
    again = shadow("keygen", "--id", "k1", "--dir", str(tmp_path))

    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE((tmp_path / "k1").stat().st_mode) == 0o600
    assert KeyRing.from_directory(tmp_path).ids == ("k1",)
    assert again.returncode == 2
    assert "exists; choose another --id" in again.stderr


def test_token_issues_what_the_verifier_accepts() -> None:
    """A token from the CLI carries subject, roles and namespaces, signed with the secret."""
    result = shadow(
        "token", "--subject", "ci", "--role", "operator", "--namespace", "orders", "--ttl", "PT10M",
        env={"AUTH_HS256_SECRET": SECRET},
    )  # fmt: skip

    identity = TokenVerifier(hs256_secret=SECRET).verify(result.stdout.strip())
    assert identity.subject == "ci"
    assert identity.roles == {"operator"}
    assert identity.namespaces == {"orders"}
    assert identity.claims["exp"] - identity.claims["iat"] == 600


def test_token_without_a_signing_key_says_what_to_set() -> None:
    """No secret or private key: a clear message, exit 2."""
    result = shadow("token", "--subject", "ci", "--role", "operator")

    assert result.returncode == 2
    assert "AUTH_HS256_SECRET or AUTH_PRIVATE_KEY_PATH: needed to sign tokens" in result.stderr


async def test_decode_reads_an_encrypted_history_offline(
    dev_server_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """A history saved as JSON decodes with the keys; tokens in it are redacted."""
    key = bytes(range(32))
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJl"
    client = await connect_caller(
        dev_server_env.client,
        ShadowPlugin(
            codec=EncryptionCodec(KeyRing({"k1": key})), auth=AuthInterceptor(token=token)
        ),
    )
    async with Worker(
        client, task_queue=task_queue, workflows=[GreetingWorkflow], activities=[compose_reply]
    ):
        handle = await client.start_workflow(
            GreetingWorkflow.run,
            Greeting(name="Ada Lovelace", sent_at=datetime(2026, 1, 1, tzinfo=UTC)),
            id=f"greet-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await handle.result()
    history_file = tmp_path / "history.json"
    history_file.write_text((await handle.fetch_history()).to_json())
    assert "Ada Lovelace" not in base64.b64decode(
        json.loads(history_file.read_text())["events"][0][
            "workflowExecutionStartedEventAttributes"
        ]["input"]["payloads"][0]["data"]
    ).decode(errors="replace")

    result = shadow(
        "decode",
        str(history_file),
        env={"CODEC_KEYS": json.dumps({"k1": base64.b64encode(key).decode()})},
    )

    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)["events"][0]["workflowExecutionStartedEventAttributes"]
    assert started["input"]["payloads"][0]["data"]["name"] == "Ada Lovelace"
    assert started["header"]["fields"]["shadow-auth-token"]["data"] == "<auth token redacted>"
    assert token not in result.stdout


def test_decode_with_the_wrong_keys_fails_with_the_key_id(tmp_path: Path) -> None:
    """Missing keys give the codec's reason and exit 1, not partial output."""
    [sealed] = EncryptionCodec(KeyRing({"k1": bytes(32)})).encode_sync([Payload(data=b"x")])
    started = {"input": {"payloads": [json_format.MessageToDict(sealed)]}}
    history = {"events": [{"eventId": "1", "workflowExecutionStartedEventAttributes": started}]}
    (tmp_path / "h.json").write_text(json.dumps(history))

    result = shadow(
        "decode", str(tmp_path / "h.json"),
        env={"CODEC_KEYS": json.dumps({"k2": base64.b64encode(bytes(32)).decode()})},
    )  # fmt: skip

    assert result.returncode == 1
    assert "cannot decrypt payload encrypted with key 'k1': no such key" in result.stderr


@pytest.mark.parametrize("history", ["not json", '{"events": "x"}'])
def test_decode_names_a_file_that_is_not_a_history(tmp_path: Path, history: str) -> None:
    """A file that is not a history is refused with its name."""
    (tmp_path / "h.json").write_text(history)

    result = shadow(
        "decode", str(tmp_path / "h.json"),
        env={"CODEC_KEYS": json.dumps({"k1": base64.b64encode(bytes(32)).decode()})},
    )  # fmt: skip

    assert result.returncode == 2
    assert f"{tmp_path / 'h.json'}: not a workflow history in JSON" in result.stderr
