"""Settings are data: parts per concern, and runtime objects built by their own classes."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from shadow_sdk import SettingsError, ShadowSettings
from shadow_sdk._settings._auth import AuthSettings
from shadow_sdk._settings._codec import CodecSettings
from shadow_sdk._settings._connection import ConnectionSettings
from shadow_sdk._settings._ops import OpsSettings
from shadow_sdk._settings._shared_state import SharedStateSettings
from shadow_sdk._settings._versioning import VersioningSettings
from shadow_sdk._settings._worker import WorkerSettings
from shadow_sdk.auth import Authorizer, Policy, TokenVerifier
from shadow_sdk.codec import CompressionCodec, EncryptionCodec, KeyRing

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER = base64.b64encode(bytes(range(32, 64))).decode()
SECRET = "settings-parts-secret-of-32-bytes!"

PART_OF_PREFIX: dict[str, type[BaseModel]] = {
    "temporal_": ConnectionSettings,
    "worker_": WorkerSettings,
    "metrics_": OpsSettings,
    "log_": OpsSettings,
    "otel_": OpsSettings,
    "redis_": SharedStateSettings,
    "codec_": CodecSettings,
    "auth_": AuthSettings,
    # The Temporal Worker Controller's names; the longest prefix decides.
    "temporal_deployment_": VersioningSettings,
    "temporal_worker_build_": VersioningSettings,
    "worker_default_versioning_": VersioningSettings,
}


def test_each_setting_is_declared_by_the_part_of_its_concern() -> None:
    """The flat model is the union of the parts, each variable declared by exactly one."""
    parts = set(PART_OF_PREFIX.values())

    for name in ShadowSettings.model_fields:
        prefix = max((prefix for prefix in PART_OF_PREFIX if name.startswith(prefix)), key=len)
        part = PART_OF_PREFIX[prefix]
        declared_by = [other for other in parts if name in other.model_fields]
        assert declared_by == [part], name
    assert sum(len(part.model_fields) for part in parts) == len(ShadowSettings.model_fields)


def test_reading_settings_imports_neither_auth_nor_codec() -> None:
    """Settings load and validate without shadow_sdk.auth, shadow_sdk.codec and their libraries.

    The package's own ``__init__`` imports everything, so the interpreter gets a bare
    ``shadow_sdk`` package and loads only what the settings import themselves.
    """
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys, types

        package = types.ModuleType("shadow_sdk")
        package.__path__ = list(importlib.util.find_spec("shadow_sdk").submodule_search_locations)
        sys.modules["shadow_sdk"] = package

        from shadow_sdk._settings import ShadowSettings

        settings = ShadowSettings(codec_keys={{"k": {KEY!r}}}, auth_hs256_secret={SECRET!r})
        read = sorted(sys.modules)
        settings.key_ring()
        print(json.dumps([read, sorted(sys.modules)]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )

    read, built = json.loads(result.stdout)
    assert "shadow_sdk._settings" in read
    for module in ("shadow_sdk.auth", "shadow_sdk.codec", "jwt", "aiohttp"):
        assert module not in read
    assert "shadow_sdk.codec" in built


def test_data_problems_of_every_part_are_listed_at_once() -> None:
    """Key ids and keys are checked with the other values, in one error, in field order."""
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(
            temporal_address="no-port",
            worker_tuner="magic",
            codec_keys={"bad id!": KEY, "short": base64.b64encode(b"16 bytes only...").decode()},
        )

    assert excinfo.value.problems == (
        "TEMPORAL_ADDRESS='no-port': expected host:port, for example localhost:7233",
        "WORKER_TUNER='magic': Input should be 'fixed' or 'resource-based'",
        "CODEC_KEYS: key id 'bad id!' is not 1 to 64 letters, digits, dots, dashes or "
        "underscores; key 'short' is 16 bytes; an AES-256 key is 32",
    )
    assert "16 bytes only" not in str(excinfo.value)


def test_combinations_of_every_part_are_listed_at_once(tmp_path: Path) -> None:
    """Cross-field checks of connection, worker, codec and auth report together."""
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(
            temporal_api_key="k",
            temporal_api_key_file=__file__,
            worker_workflow_task_pollers=1,
            codec_keys={"a": KEY, "b": OTHER},
            auth_token="t",
            auth_token_file=__file__,
        )

    assert [problem.split(":")[0].split(" ")[0] for problem in excinfo.value.problems] == [
        "TEMPORAL_API_KEY",
        "WORKER_WORKFLOW_TASK_POLLERS=1",
        "CODEC_ACTIVE_KEY_ID",
        "AUTH_TOKEN",
    ]


def test_settings_read_no_key_directory_policy_or_jwks_until_asked(tmp_path: Path) -> None:
    """Files are read by the classes that use them; each problem still names its variable."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "policy.yaml").write_text("roles: [admin]\n")
    (tmp_path / "jwks.json").write_text("not json")

    settings = ShadowSettings(
        codec_keys_dir=tmp_path / "keys",
        auth_policy_path=tmp_path / "policy.yaml",
        auth_jwks_path=tmp_path / "jwks.json",
    )

    with pytest.raises(SettingsError, match=r"^invalid setting:\n  CODEC_KEYS_DIR="):
        settings.key_ring()
    with pytest.raises(SettingsError, match="AUTH_POLICY_PATH: .*expected a 'roles' mapping"):
        settings.policy()
    with pytest.raises(SettingsError, match="AUTH_JWKS_PATH: not JSON"):
        TokenVerifier.from_settings(settings)


def test_what_settings_build_is_built_once_per_instance() -> None:
    """The key ring, policy and authorizer are kept; every codec uses the one key ring."""
    settings = ShadowSettings(codec_keys={"k": KEY}, auth_hs256_secret=SECRET)

    authorizer = settings.authorizer()
    codec = settings.payload_codec()

    assert settings.key_ring() is settings.key_ring()
    assert authorizer is settings.authorizer()
    assert authorizer is not None
    assert authorizer.policy is settings.policy()
    assert isinstance(codec, EncryptionCodec)
    assert codec.keys is settings.key_ring()
    assert settings.codec_server_key_rings() is settings.codec_server_key_rings()


def test_a_copy_builds_its_own_objects() -> None:
    """model_copy may change the values, so nothing built from the original carries over."""
    settings = ShadowSettings(codec_keys={"k": KEY})
    original = settings.key_ring()

    changed = settings.model_copy(update={"codec_keys": {"k2": SecretStr(KEY)}})
    deep = copy.deepcopy(settings)

    assert original is not None
    assert original.ids == ("k",)
    assert (changed.key_ring() or original).ids == ("k2",)
    assert deep.key_ring() is not original
    assert settings.key_ring() is original


def test_each_class_builds_itself_from_settings(tmp_path: Path) -> None:
    """from_settings gives what the settings describe, and None where they describe nothing."""
    bare = ShadowSettings()
    settings = ShadowSettings(
        codec_keys={"a": KEY, "b": OTHER},
        codec_active_key_id="b",
        codec_compression_threshold=100,
        codec_max_payloads=7,
        auth_hs256_secret=SECRET,
        auth_audience="orders",
    )

    key_ring = KeyRing.from_settings(settings)
    codec = EncryptionCodec.from_settings(settings)
    verifier = TokenVerifier.from_settings(settings)
    authorizer = Authorizer.from_settings(settings)

    assert key_ring is not None
    assert (key_ring.ids, key_ring.active_id) == (("a", "b"), "b")
    assert codec is not None
    assert codec.max_payloads == 7
    assert codec.compression is not None
    assert codec.compression.threshold == 100
    assert CompressionCodec.from_settings(bare).threshold is None
    assert verifier is not None
    assert (verifier.algorithms, verifier.audience) == (("HS256",), "orders")
    assert authorizer is not None
    assert authorizer.policy.roles.keys() == Policy.default().roles.keys()
    assert KeyRing.by_namespace_from_settings(settings).keys() == {"default"}
    for build in (KeyRing.from_settings, EncryptionCodec.from_settings, Authorizer.from_settings):
        assert build(bare) is None
    assert KeyRing.by_namespace_from_settings(bare) == {}


def test_a_service_default_that_requires_keys_is_checked_as_data() -> None:
    """A subclass that turns CODEC_REQUIRED on by default is refused without keys."""

    class Settings(ShadowSettings):
        codec_required: bool = True

    with pytest.raises(SettingsError) as excinfo:
        Settings()

    assert excinfo.value.problems == (
        "CODEC_REQUIRED: set CODEC_KEYS or CODEC_KEYS_DIR, or turn it off",
    )
    assert Settings(codec_keys={"k": KEY}).key_ring() is not None
