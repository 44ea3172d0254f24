"""Settings of encryption, authentication and the codec server: validated, never leaked."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from shadow_sdk import SettingsError, ShadowPlugin, ShadowSettings
from shadow_sdk._client import api_key_watch
from shadow_sdk.auth import Policy
from shadow_sdk.codec import EncryptionCodec

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER = base64.b64encode(bytes(range(32, 64))).decode()
SECRET = "settings-test-secret-of-32-bytes!!"


def problems(**values: object) -> str:
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(**values)
    return "\n".join(excinfo.value.problems)


def test_codec_keys_from_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """CODEC_KEYS is a JSON object of base64 keys; the active key is named or the only one."""
    monkeypatch.setenv("CODEC_KEYS", json.dumps({"2026-10": KEY, "2026-11": OTHER}))
    monkeypatch.setenv("CODEC_ACTIVE_KEY_ID", "2026-11")

    key_ring = ShadowSettings().key_ring()

    assert key_ring is not None
    assert key_ring.ids == ("2026-10", "2026-11")
    assert key_ring.active_id == "2026-11"
    assert isinstance(ShadowSettings().payload_codec(), EncryptionCodec)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"codec_keys": {"k1": "not base64!"}}, "CODEC_KEYS: key 'k1' is not base64"),
        ({"codec_keys": {"k1": base64.b64encode(b"16 bytes only...").decode()}},
         "CODEC_KEYS: key 'k1' is 16 bytes; an AES-256 key is 32"),
        ({"codec_keys": {"bad id!": KEY}}, "CODEC_KEYS: key id 'bad id!' is not 1 to 64 letters"),
        ({"codec_keys": {"a": KEY, "b": OTHER}}, "CODEC_ACTIVE_KEY_ID: required with 2 keys in CODEC_KEYS"),
        ({"codec_keys": {"a": KEY}, "codec_active_key_id": "b"},
         "CODEC_ACTIVE_KEY_ID='b': not one of the keys in CODEC_KEYS (a)"),
        ({"codec_required": True}, "CODEC_REQUIRED: set CODEC_KEYS or CODEC_KEYS_DIR, or turn it off"),
        ({"temporal_api_key": "k", "temporal_api_key_file": __file__},
         "TEMPORAL_API_KEY and TEMPORAL_API_KEY_FILE are both set; keep one"),
        ({"auth_token": "t", "auth_token_file": __file__}, "AUTH_TOKEN and AUTH_TOKEN_FILE are both set"),
    ],
)  # fmt: skip
def test_bad_security_settings_are_named(values: dict[str, object], problem: str) -> None:
    """Each mistake stops start-up with the variable and the reason, never the key."""
    text = problems(**values)

    assert problem in text
    assert KEY not in text
    assert "16 bytes only" not in text


def test_a_short_hs256_secret_is_named_when_the_verifier_is_built() -> None:
    """The verifier judges its key: the settings hold it, the authorizer refuses it."""
    settings = ShadowSettings(auth_hs256_secret="short")

    with pytest.raises(SettingsError) as excinfo:
        settings.authorizer()

    assert excinfo.value.problems == (
        "AUTH_HS256_SECRET: hs256_secret: 5 bytes; HS256 needs at least 32",
    )


def test_two_ways_to_verify_tokens_are_refused(tmp_path: Path) -> None:
    """Tokens are verified one way; two configured verifiers is a mistake."""
    (tmp_path / "jwks.json").write_text('{"keys": []}')

    assert "AUTH_HS256_SECRET and AUTH_JWKS_PATH are all set" in problems(
        auth_hs256_secret=SECRET, auth_jwks_path=tmp_path / "jwks.json"
    )


def test_a_bad_policy_file_is_named(tmp_path: Path) -> None:
    """A typo in the policy stops what reads it, pointing at the file and role."""
    (tmp_path / "policy.yaml").write_text("roles:\n  ops: [workflow:strat]\n")

    settings = ShadowSettings(auth_hs256_secret=SECRET, auth_policy_path=tmp_path / "policy.yaml")

    for build in (settings.policy, settings.authorizer):
        with pytest.raises(SettingsError) as excinfo:
            build()
        assert "\n".join(excinfo.value.problems).startswith(
            f"AUTH_POLICY_PATH: {tmp_path / 'policy.yaml'}: role 'ops': unknown permission"
        )


def test_the_policy_file_replaces_the_default_roles(tmp_path: Path) -> None:
    """A policy file defines exactly its roles."""
    (tmp_path / "policy.yaml").write_text("roles:\n  ops: [workflow:start]\n")

    authorizer = ShadowSettings(
        auth_hs256_secret=SECRET, auth_policy_path=tmp_path / "policy.yaml"
    ).authorizer()

    assert authorizer is not None
    assert set(authorizer.policy.roles) == {"ops"}
    assert Policy.default().roles.keys() == {"admin", "operator", "viewer"}


def test_the_token_file_is_read_on_every_call(tmp_path: Path) -> None:
    """A client's token file may be replaced while it runs."""
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    source = ShadowSettings(auth_token_file=token_file).auth_token_source()
    assert callable(source)

    first = source()
    token_file.write_text("second")

    assert (first, source()) == ("first", "second")


def test_cors_origins_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operators write origins comma-separated; JSON lists work too."""
    monkeypatch.setenv("CODEC_SERVER_CORS_ORIGINS", "http://localhost:8233, https://ui.example.com")

    assert ShadowSettings().codec_server_cors_origins == [
        "http://localhost:8233",
        "https://ui.example.com",
    ]


def test_from_settings_installs_what_is_configured() -> None:
    """Keys switch on the codec, header encoding and failure encoding; a secret the auth."""
    configured = ShadowPlugin.from_settings(
        ShadowSettings(codec_keys={"k": KEY}, auth_hs256_secret=SECRET, auth_token="t")
    )
    bare = ShadowPlugin.from_settings(ShadowSettings())

    assert configured.codec is not None
    assert configured.encode_failures
    assert configured.auth is not None
    assert configured.auth.authorizer is not None
    assert configured.configure_client({})["header_codec_behavior"].name == "CODEC"  # type: ignore[typeddict-item]
    assert (bare.codec, bare.auth) == (None, None)


async def test_a_rotated_api_key_file_is_used_without_restart(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The worker picks up a new key from TEMPORAL_API_KEY_FILE and keeps running."""
    key_file = tmp_path / "api-key"
    key_file.write_text("key-one\n")
    settings = ShadowSettings(
        temporal_address=dev_server_env.client.service_client.config.target_host,
        temporal_api_key_file=key_file,
        temporal_tls=False,
    )
    client = await Client.connect(**settings.client_connect_config())
    assert client.api_key == "key-one"

    async with api_key_watch(client, settings, interval=0.05):
        key_file.write_text("key-two\n")
        async with asyncio.timeout(10):
            while client.api_key != "key-two":
                await asyncio.sleep(0.05)
        await client.count_workflows()

    assert client.service_client.config.api_key == "key-two"
